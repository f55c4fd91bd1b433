"""The school API contract's answers, written once for both servers of it.

The vendor server (``/vendor/api/v1/``) and a school agent serving as a LAN
mirror (``/api/updates/mirror/vendor/api/v1/``) answer an agent the same way:

- a signed document (index or manifest) as JSON ``{"<field>": text,
  "signature": armored}``, or its raw bytes (``.json``), or its signature
  alone (``.json.asc``), with an ``ETag`` and ``304 Not Modified``;
- a bundle file streamed with ``Range`` support (``206`` for a part a
  download resumes from, ``416`` for a range past the end);
- the root chain after a version as ``{"roots": [{"version", "root",
  "signature"}]}`` (``roots``), at most ``MAX_ROOTS`` at a time;
- errors as JSON ``{"detail", "code"}``.

The agent's client (``updates.sources.vendor``) reads exactly these shapes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from django.http import HttpResponse, JsonResponse, StreamingHttpResponse

RANGE = re.compile(r"^bytes=(\d{0,19})-(\d{0,19})$")
CHUNK = 256 * 1024
FORMS = ("json", "raw", "signature")
MAX_ROOTS = 50
# An agent that reads channel indexes (format 2) says so in this header; one
# that does not gets a format 1 index of its own view.
INDEX_FORMAT_HEADER = "X-CLMS-Index-Format"


def error(status: int, detail: str, code: str) -> JsonResponse:
    """The contract's error answer."""
    return JsonResponse({"detail": detail, "code": code}, status=status)


def roots_after(request: Any) -> int | JsonResponse:
    """``?after=``: the root version the client holds (0: none); else a 400 answer."""
    text = request.GET.get("after", "0")
    if not text.isdigit() or len(text) > 10:
        return error(
            400,
            "after: expected the whole number of the root version you hold (0 for "
            "none)",
            "bad_after",
        )
    return int(text)


def roots(items: Iterable[tuple[int, str, str]]) -> JsonResponse:
    """The root documents ``(version, text, signature)`` in order."""
    return JsonResponse(
        {
            "roots": [
                {"version": version, "root": text, "signature": signature}
                for version, text, signature in list(items)[:MAX_ROOTS]
            ]
        }
    )


def not_modified(request: Any, etag: str) -> HttpResponse | None:
    """A 304 when the client already holds ``etag``, else None."""
    if etag in request.META.get("HTTP_IF_NONE_MATCH", ""):
        response = HttpResponse(status=304)
        response["ETag"] = etag
        return response
    return None


def _cached(request: Any, etag: str, body: bytes, content_type: str) -> HttpResponse:
    response = not_modified(request, etag) or HttpResponse(
        body, content_type=content_type
    )
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-cache"
    return response


def signed_document(
    request: Any,
    *,
    field: str,
    text: str,
    signature: str,
    etag: str,
    form: str = "json",
) -> HttpResponse:
    """A signed index or manifest in one of the contract's three forms."""
    if form == "raw":
        return _cached(request, etag, text.encode("utf-8"), "application/json")
    if form == "signature":
        return _cached(request, etag[:-1] + 's"', signature.encode(), "text/plain")
    body = json.dumps({field: text, "signature": signature}).encode()
    return _cached(request, etag, body, "application/json")


def _read_range(path: Path, start: int, length: int) -> Iterator[bytes]:
    with path.open("rb") as f:
        f.seek(start)
        remaining = length
        while remaining > 0:
            chunk = f.read(min(CHUNK, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk


def file_download(
    request: Any,
    path: Path,
    *,
    etag: str,
    filename: str,
    sha256: str = "",
    content_type: str = "application/zip",
) -> HttpResponse | StreamingHttpResponse:
    """Stream ``path``, the whole file or the ``Range`` asked for (resume)."""
    size = path.stat().st_size
    start, end = 0, size - 1
    status = 200
    # An unparseable Range is ignored (the whole file), as RFC 9110 allows.
    match = RANGE.match(request.META.get("HTTP_RANGE", "").strip())
    if match and (match.group(1) or match.group(2)):
        first, last = match.groups()
        if first:
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
        else:
            start = max(0, size - int(last))
        if start >= size or start > end:
            refused = HttpResponse(status=416)
            refused["Content-Range"] = f"bytes */{size}"
            return refused
        status = 206
    length = end - start + 1
    response = StreamingHttpResponse(
        _read_range(path, start, length), status=status, content_type=content_type
    )
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["ETag"] = etag
    if sha256:
        response["X-Checksum-Sha256"] = sha256
    if status == 206:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    return response
