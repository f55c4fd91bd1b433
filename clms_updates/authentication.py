"""API token authentication whose wrong tokens count as guesses (``guessing``)."""

from __future__ import annotations

import hmac
from typing import Any

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from clms_updates import guessing


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's ``Authorization: Token <key>``; an address sending wrong ones is locked out."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        try:
            guessing.refuse_if_locked(request, guessing.API_TOKEN)
        except guessing.TooManyFailures as e:
            raise exceptions.Throttled(wait=e.minutes * 60, detail=str(e)) from None
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            guessing.failed(request, guessing.API_TOKEN)
            raise


def bearer_token(request: Any) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, or ``""``."""
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.startswith("Bearer ") else ""


def token_is_one_of(given: str, tokens: list[str] | tuple[str, ...]) -> bool:
    """``given`` equals one of ``tokens``, compared in constant time."""
    return bool(given) and any(
        hmac.compare_digest(given.encode(), token.encode()) for token in tokens if token
    )
