"""The LAN mirror's HTTP API: the vendor school API's shapes, token-authenticated.

Mounted at ``/api/updates/mirror/vendor/api/v1/`` so another agent's vendor
client works against it unchanged (``UPDATES_MIRROR_URL`` = this agent's base
URL). Tokens are ``UPDATES_MIRROR_TOKENS``; with none set the mirror is off
and every route answers 404.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.urls import path
from django.views.decorators.http import require_GET

from updates import mirroring
from updates.sources import SignedDocument


def _error(status: int, detail: str, code: str) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status)


def _authenticate(request: HttpRequest) -> JsonResponse | None:
    """None when the request carries a mirror token; else the error answer."""
    tokens = settings.UPDATES_MIRROR_TOKENS
    if not tokens:
        return _error(
            404,
            "This agent does not serve as a mirror (UPDATES_MIRROR_TOKENS is empty).",
            "mirror_off",
        )
    header = request.headers.get("Authorization", "")
    given = (
        header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    )
    if not given or not any(
        hmac.compare_digest(given.encode(), t.encode()) for t in tokens
    ):
        return _error(
            401,
            "Unknown mirror token; ask the mirror's admin for one "
            "(UPDATES_MIRROR_TOKEN on your agent).",
            "bad_token",
        )
    return None


def _signed_answer(
    request: HttpRequest, document: SignedDocument, field: str
) -> HttpResponse:
    body = json.dumps(
        {field: document.data.decode("utf-8"), "signature": document.signature}
    ).encode()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    if request.headers.get("If-None-Match") == etag:
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(body, content_type="application/json")
    response["ETag"] = etag
    return response


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """The signed release index, as the vendor serves it."""
    if denied := _authenticate(request):
        return denied
    try:
        document = mirroring.mirrored_index()
    except mirroring.MirrorUnavailable as e:
        return _error(503, str(e), "unavailable")
    return _signed_answer(request, document, "index")


@require_GET
def manifest(request: HttpRequest, version: str) -> HttpResponse:
    """The signed manifest of one release."""
    if denied := _authenticate(request):
        return denied
    try:
        document = mirroring.mirrored_manifest(version)
    except mirroring.MirrorUnavailable as e:
        return _error(404, str(e), "not_found")
    return _signed_answer(request, document, "manifest")


@require_GET
def bundle(request: HttpRequest, version: str) -> HttpResponseBase:
    """The offline bundle of one release (from the offline folder or the cache)."""
    if denied := _authenticate(request):
        return denied
    try:
        cached = mirroring.mirrored_bundle(version)
    except mirroring.MirrorUnavailable as e:
        return _error(404, str(e), "not_found")
    response = FileResponse(
        cached.path.open("rb"),
        as_attachment=True,
        filename=f"clms-{version}.zip",
        content_type="application/zip",
    )
    response["X-Checksum-Sha256"] = cached.sha256
    return response


@require_GET
def keys(request: HttpRequest) -> HttpResponse:
    """The pinned vendor public key(s) this agent holds (trusted only if pinned)."""
    if denied := _authenticate(request):
        return denied
    try:
        armored = mirroring.mirrored_keys()
    except mirroring.MirrorUnavailable as e:
        return _error(404, str(e), "not_found")
    return HttpResponse(armored, content_type="text/plain")


urlpatterns = [
    path("mirror/vendor/api/v1/index", index, name="mirror-index"),
    path(
        "mirror/vendor/api/v1/releases/<str:version>/manifest",
        manifest,
        name="mirror-manifest",
    ),
    path(
        "mirror/vendor/api/v1/releases/<str:version>/bundle",
        bundle,
        name="mirror-bundle",
    ),
    path("mirror/vendor/api/v1/keys", keys, name="mirror-keys"),
]
