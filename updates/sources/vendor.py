"""The vendor server over HTTPS, per the school API contract (``/vendor/api/v1/``)."""

from __future__ import annotations

import ipaddress
import json
import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import requests
import urllib3
from django.conf import settings
from django.core.cache import cache

from clms_updates import contract, deadlines
from clms_updates.manifest.schema import CHANNEL_INDEX_FORMAT
from updates.sources.base import (
    SignedDocument,
    Source,
    SourceNotConfigured,
    SourceNotFound,
    SourceRateLimited,
    SourceRefused,
    SourceUnavailable,
)

API_PATH = "/vendor/api/v1/"
# A 429 without a usable Retry-After waits this long; a longer one is capped so
# a wrong header cannot silence the checks for good.
DEFAULT_RETRY_AFTER_SECONDS = 300
MAX_RETRY_AFTER_SECONDS = 86400


def retry_after_seconds(header: str | None, *, now: datetime | None = None) -> int:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date)."""
    value = (header or "").strip()
    if value.isdigit():
        seconds = int(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return DEFAULT_RETRY_AFTER_SECONDS
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = math.ceil((when - (now or datetime.now(UTC))).total_seconds())
    return min(max(seconds, 1), MAX_RETRY_AFTER_SECONDS)


def is_loopback_host(host: str) -> bool:
    """True for localhost and loopback addresses (plain HTTP is fine there)."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url_allowed(url: str) -> None:
    """Refuse a source URL that is not HTTPS, unless loopback or explicitly allowed.

    With ``DEBUG`` off, plain HTTP to another host is refused even when
    ``UPDATES_ALLOW_INSECURE_HTTP`` is set: production traffic is always TLS.
    """
    parts = urlsplit(url)
    if parts.scheme == "https":
        return
    if parts.scheme != "http":
        raise SourceRefused(
            f"{url} is not an http(s) URL; set UPDATES_VENDOR_URL to https://…"
        )
    if is_loopback_host(parts.hostname or ""):
        return
    if settings.UPDATES_ALLOW_INSECURE_HTTP and settings.DEBUG:
        return
    raise SourceRefused(
        f"{url} uses plain HTTP to a host that is not loopback; the agent only talks "
        "to the vendor over HTTPS in production. Set UPDATES_VENDOR_URL to an https:// "
        "address (UPDATES_ALLOW_INSECURE_HTTP=true works only with DEBUG=true, for tests)"
    )


class VendorSource(Source):
    """The vendor server: signed index and manifests, with ETag caching."""

    name = "vendor"

    def __init__(
        self,
        base_url: str,
        api_key: str,
        installed_version: str,
        *,
        product: str = "",
    ) -> None:
        self.base_url = base_url.rstrip("/") + API_PATH
        self.api_key = api_key
        self.installed_version = installed_version
        # Empty: the vendor's default product (CLMS); else e.g. the agent's own.
        self.product = product
        self.session = deadlines.session()

    @classmethod
    def from_settings(cls, *, product: str = "") -> VendorSource:
        """The vendor source as configured, or ``SourceNotConfigured``."""
        from updates.models import AgentState

        if not settings.UPDATES_VENDOR_URL:
            raise SourceNotConfigured("UPDATES_VENDOR_URL is empty")
        return cls(
            settings.UPDATES_VENDOR_URL,
            settings.UPDATES_VENDOR_API_KEY,
            AgentState.load().installed_version,
            product=product,
        )

    def _for_product(self, path: str) -> str:
        return (
            f"{path}?{urlencode({'product': self.product})}" if self.product else path
        )

    # -- the contract -----------------------------------------------------

    def fetch_index(self) -> SignedDocument:
        body = self._get_json(self._for_product("index"))
        return self._signed(body, "index")

    def fetch_manifest(self, version: str) -> SignedDocument:
        body = self._get_json(self._for_product(f"releases/{version}/manifest"))
        return self._signed(body, "manifest")

    def fetch_keys(self) -> str:
        data, _ = self._get("keys", use_etag=False)
        return data.decode("utf-8", "replace")

    def fetch_roots(self, after: int) -> list[SignedDocument]:
        try:
            body = self._get_json(f"roots?{urlencode({'after': after})}")
        except SourceNotFound:
            return []  # a server from before roots: the agent keeps its root
        roots = body.get("roots") if isinstance(body, dict) else None
        if not isinstance(roots, list):
            raise SourceRefused(
                "the vendor's roots answer is malformed: expected JSON with a list "
                "'roots'"
            )
        return [self._signed(item, "root") for item in roots]

    # -- HTTP -------------------------------------------------------------

    def _signed(self, body: Any, field: str) -> SignedDocument:
        if (
            not isinstance(body, dict)
            or not isinstance(body.get(field), str)
            or not isinstance(body.get("signature"), str)
        ):
            raise SourceRefused(
                f"the vendor's {field} answer is malformed: expected JSON with the "
                f"strings {field!r} and 'signature'"
            )
        return SignedDocument(body[field].encode("utf-8"), body["signature"])

    def _get_json(self, path: str) -> Any:
        data, _ = self._get(path, use_etag=True)
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise SourceRefused(
                f"the vendor's answer to {path} is malformed JSON ({e}); nothing was stored"
            ) from None

    def _get(self, path: str, *, use_etag: bool) -> tuple[bytes, int]:
        """GET ``path`` within the time budget and size limit; returns (body, status).

        ``requests`` timeouts apply per socket operation, so a source trickling a
        byte a second would never time out: the whole answer, headers included,
        has one overall deadline (``clms_updates.deadlines``) and a byte cap.
        """
        url = urljoin(self.base_url, path)
        check_url_allowed(url)
        budget = settings.UPDATES_SOURCE_TIMEOUT_SECONDS
        limit = settings.UPDATES_MAX_RESPONSE_BYTES
        cache_key = f"updates:etag:{url}"
        cached = cache.get(cache_key) if use_etag else None
        headers = {
            "Authorization": f"Bearer {self.api_key}",
            "X-CLMS-Version": self.installed_version,
            "X-Agent-Version": settings.AGENT_VERSION,
            contract.INDEX_FORMAT_HEADER: str(CHANNEL_INDEX_FORMAT),
            "Accept": "application/json",
        }
        if cached:
            headers["If-None-Match"] = cached["etag"]
        with deadlines.watch(budget, total=True) as deadline:
            try:
                response = self.session.get(
                    url, headers=headers, timeout=(budget, budget), stream=True
                )
            except requests.RequestException as e:
                if deadline.why or isinstance(e, requests.Timeout):
                    raise SourceUnavailable(
                        f"{url} did not answer within {budget:g} s"
                        + (f" ({deadline.why})" if deadline.why else "")
                    ) from None
                raise SourceUnavailable(
                    f"{url} could not be reached: {_short(e)}"
                ) from None
            with response:
                if response.status_code == 304 and cached:
                    return cached["body"], 200
                if response.status_code != 200:
                    raise self._status_error(url, response)
                declared = response.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > limit:
                    raise SourceRefused(
                        f"{url} answered with {int(declared)} bytes, over the limit "
                        f"of {limit} (UPDATES_MAX_RESPONSE_BYTES); it was cut off and "
                        "refused"
                    )
                chunks: list[bytes] = []
                size = 0
                try:
                    while True:
                        # read1 returns whatever has arrived; the watchdog cuts a
                        # read that waits past the deadline.
                        chunk = response.raw.read1(16384, decode_content=True)
                        if not chunk:
                            break
                        size += len(chunk)
                        deadline.received(len(chunk))
                        if size > limit:
                            raise SourceRefused(
                                f"{url} sent more than {limit} bytes "
                                "(UPDATES_MAX_RESPONSE_BYTES); the response was cut "
                                "off and refused"
                            )
                        chunks.append(chunk)
                except (
                    requests.RequestException,
                    urllib3.exceptions.HTTPError,
                    OSError,
                ) as e:
                    if deadline.why:
                        raise SourceRefused(
                            f"{url} was still sending after {budget:g} s; the slow "
                            "response was cut off and refused"
                        ) from None
                    raise SourceUnavailable(
                        f"{url} stopped answering mid-response: {_short(e)}"
                    ) from None
                if deadline.why:
                    raise SourceRefused(
                        f"{url} was still sending after {budget:g} s; the slow "
                        "response was cut off and refused"
                    )
        body = b"".join(chunks)
        etag = response.headers.get("ETag")
        if use_etag and etag:
            cache.set(cache_key, {"etag": etag, "body": body}, timeout=7 * 86400)
        return body, response.status_code

    def _status_error(self, url: str, response: requests.Response) -> Exception:
        detail = ""
        try:
            body = json.loads(response.raw.read(4096, decode_content=True) or b"{}")
            if isinstance(body, dict):
                detail = str(body.get("detail", ""))[:300]
        except (ValueError, requests.RequestException, OSError):
            detail = ""
        status = response.status_code
        suffix = f": {detail}" if detail else ""
        if status == 401:
            return SourceRefused(
                f"the vendor did not accept this school's API key (401){suffix}; "
                "check UPDATES_VENDOR_API_KEY"
            )
        if status == 403:
            return SourceRefused(
                f"the vendor refused this school's API key (403, revoked?){suffix}; "
                "ask the vendor for a new key"
            )
        if status == 404:
            return SourceNotFound(f"{url} was not found (404){suffix}")
        if status == 429:
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            return SourceRateLimited(
                f"the {self.name} server asked us to slow down (429); next try "
                f"after {wait} s",
                wait,
            )
        if status >= 500:
            return SourceUnavailable(f"the vendor server failed ({status}){suffix}")
        return SourceRefused(f"{url} answered {status}{suffix}")


def _short(error: Exception) -> str:
    text = str(error)
    return text if len(text) < 300 else text[:300] + "…"
