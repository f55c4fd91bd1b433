"""The LAN mirror's HTTP API: the school API contract, token-authenticated.

Mounted at ``/api/updates/mirror/vendor/api/v1/`` so another agent's vendor
client works against it unchanged (``UPDATES_MIRROR_URL`` = this agent's base
URL). The answers are the contract's own (``clms_updates.contract``, the code
the vendor server answers with, ``Range`` included). Tokens are
``UPDATES_MIRROR_TOKENS``; with none set the mirror is off and every route
answers 404.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.urls import path
from django.views.decorators.http import require_GET

from clms_updates import contract, guessing
from clms_updates.authentication import bearer_token, token_is_one_of
from clms_updates.manifest import sha256_hex
from updates.mirror import serving
from updates.sources import SignedDocument


def _authenticate(request: HttpRequest) -> JsonResponse | None:
    """None when the request carries a mirror token; else the error answer."""
    tokens = settings.UPDATES_MIRROR_TOKENS
    if not tokens:
        return contract.error(
            404,
            "This agent does not serve as a mirror (UPDATES_MIRROR_TOKENS is empty).",
            "mirror_off",
        )
    given = bearer_token(request)
    try:
        guessing.refuse_if_locked(request, guessing.MIRROR_TOKEN)
    except guessing.TooManyFailures as e:
        answer = contract.error(429, str(e), "too_many_failures")
        answer["Retry-After"] = str(e.minutes * 60)
        return answer
    if not token_is_one_of(given, tokens):
        guessing.failed(request, guessing.MIRROR_TOKEN)
        return contract.error(
            401,
            "Unknown mirror token; ask the mirror's admin for one "
            "(UPDATES_MIRROR_TOKEN on your agent).",
            "bad_token",
        )
    return None


def _signed_answer(
    request: HttpRequest, document: SignedDocument, field: str
) -> HttpResponse:
    etag = '"' + sha256_hex(document.data + document.signature.encode())[:32] + '"'
    return contract.signed_document(
        request,
        field=field,
        text=document.data.decode("utf-8"),
        signature=document.signature,
        etag=etag,
    )


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """The signed release index, as the vendor serves it."""
    if denied := _authenticate(request):
        return denied
    try:
        document = serving.mirrored_index()
    except serving.MirrorUnavailable as e:
        return contract.error(503, str(e), "unavailable")
    return _signed_answer(request, document, "index")


@require_GET
def manifest(request: HttpRequest, version: str) -> HttpResponse:
    """The signed manifest of one release."""
    if denied := _authenticate(request):
        return denied
    try:
        document = serving.mirrored_manifest(version)
    except serving.MirrorUnavailable as e:
        return contract.error(404, str(e), "not_found")
    return _signed_answer(request, document, "manifest")


@require_GET
def bundle(request: HttpRequest, version: str) -> HttpResponseBase:
    """The offline bundle of one release (from the offline folder or the cache)."""
    if denied := _authenticate(request):
        return denied
    try:
        cached = serving.mirrored_bundle(version)
    except serving.MirrorUnavailable as e:
        return contract.error(404, str(e), "not_found")
    return contract.file_download(
        request,
        cached.path,
        etag=f'"b{cached.sha256[:24]}"',
        filename=f"clms-{version}.zip",
        sha256=cached.sha256,
    )


@require_GET
def keys(request: HttpRequest) -> HttpResponse:
    """The pinned vendor public key(s) this agent holds (trusted only if pinned)."""
    if denied := _authenticate(request):
        return denied
    try:
        armored = serving.mirrored_keys()
    except serving.MirrorUnavailable as e:
        return contract.error(404, str(e), "not_found")
    return HttpResponse(armored, content_type="text/plain")


@require_GET
def roots(request: HttpRequest) -> HttpResponse:
    """The roots of trust this agent accepted after ``?after=`` (clients check them again)."""
    if denied := _authenticate(request):
        return denied
    after = contract.roots_after(request)
    if not isinstance(after, int):
        return after
    return contract.roots(serving.mirrored_roots(after))


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
    path("mirror/vendor/api/v1/roots", roots, name="mirror-roots"),
]
