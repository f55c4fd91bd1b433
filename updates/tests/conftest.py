"""Fixtures of the updates tests: a real vendor key and a stand-in vendor server.

``vendor`` is a small threaded ``http.server`` on loopback that serves the
vendor school API contract (``GET index``, ``releases/<v>/manifest``, ``keys``)
from metadata signed with a real GnuPG key. It is a stand-in for the HTTP
contract only; the real vendor server is tested against the agent elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import gnupg
import pytest

from clms_updates import manifest as m
from conftest import generate_signing_key
from updates.tests.factories import make_index

AGENT_PRODUCT = "clms-updates"
Handler = Callable[[BaseHTTPRequestHandler], None]


def _short_home() -> Path:
    home = Path(tempfile.mkdtemp(prefix="gpg-", dir="/tmp"))
    home.chmod(0o700)
    return home


def _drop_home(home: Path) -> None:
    subprocess.run(
        ["gpgconf", "--homedir", str(home), "--kill", "all"],
        check=False,
        capture_output=True,
    )
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    """Throttle counters and ETag bodies must not leak between tests (locmem is global)."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(scope="session")
def vendor_key() -> Iterator[tuple[Path, str]]:
    """The vendor's signing key (made once per session): (home, fingerprint)."""
    home = _short_home()
    yield home, generate_signing_key(home)
    _drop_home(home)


@pytest.fixture(scope="session")
def rogue_key() -> Iterator[tuple[Path, str]]:
    """Another real key, never pinned: (home, fingerprint)."""
    home = _short_home()
    yield home, generate_signing_key(home, name="Rogue Signer")
    _drop_home(home)


@pytest.fixture
def agent_gnupg_home() -> Iterator[Path]:
    home = _short_home()
    yield home
    _drop_home(home)


class VendorStandIn:
    """Serves signed metadata per the contract; tests change what it serves."""

    def __init__(self, key_home: Path, fingerprint: str) -> None:
        self.key_home = key_home
        self.fingerprint = fingerprint
        self.index: tuple[str, str] | None = None
        self.manifests: dict[str, tuple[str, str]] = {}
        # The agent's own product (``?product=clms-updates``) has its own.
        self.agent_index: tuple[str, str] | None = None
        self.agent_manifests: dict[str, tuple[str, str]] = {}
        # path -> handler that answers instead of the contract (faults).
        self.overrides: dict[str, Handler] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.url = ""
        # Like the real vendor, every publish without an explicit sequence
        # gets a new one (agents refuse other bytes under a sequence seen).
        self.sequences = {"clms": 0, AGENT_PRODUCT: 0}

    def _next(self, product: str, sequence: int | None) -> int:
        chosen = self.sequences[product] + 1 if sequence is None else sequence
        self.sequences[product] = max(self.sequences[product], chosen)
        return chosen

    def sign(self, data: bytes, home: Path | None = None, fingerprint: str = "") -> str:
        return m.sign_detached(
            data,
            gnupghome=home or self.key_home,
            fingerprint=fingerprint or self.fingerprint,
        )

    def publish(
        self,
        manifests: list[m.ReleaseManifest],
        *,
        sequence: int | None = None,
        index: m.ReleaseIndex | None = None,
        **index_overrides: Any,
    ) -> m.ReleaseIndex:
        """Sign and serve ``manifests`` and an index listing them."""
        for manifest in manifests:
            data = manifest.to_bytes()
            self.manifests[manifest.version] = (data.decode(), self.sign(data))
        index = index or make_index(
            manifests, sequence=self._next("clms", sequence), **index_overrides
        )
        data = index.to_bytes()
        self.index = (data.decode(), self.sign(data))
        return index

    def publish_agent(
        self, manifests: list[m.ReleaseManifest], *, sequence: int | None = None
    ) -> m.ReleaseIndex:
        """Sign and serve agent releases under the agent's own product."""
        for manifest in manifests:
            data = manifest.to_bytes()
            self.agent_manifests[manifest.version] = (data.decode(), self.sign(data))
        index = make_index(
            manifests,
            sequence=self._next(AGENT_PRODUCT, sequence),
            product=AGENT_PRODUCT,
        )
        data = index.to_bytes()
        self.agent_index = (data.decode(), self.sign(data))
        return index

    def public_key(self) -> str:
        return str(
            gnupg.GPG(gnupghome=str(self.key_home)).export_keys(self.fingerprint)
        )


def _make_handler(stand_in: VendorStandIn) -> type[BaseHTTPRequestHandler]:
    class ContractHandler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            path = url.path.removeprefix("/vendor/api/v1/")
            stand_in.requests.append((path, dict(self.headers)))
            agent = parse_qs(url.query).get("product") == [AGENT_PRODUCT]
            index = stand_in.agent_index if agent else stand_in.index
            manifests = stand_in.agent_manifests if agent else stand_in.manifests
            if path in stand_in.overrides:
                stand_in.overrides[path](self)
                return
            if self.headers.get("Authorization") != "Bearer school-key":
                self._json(401, {"detail": "Unknown API key.", "code": "bad_key"})
                return
            if path == "index" and index:
                text, signature = index
                self._signed({"index": text, "signature": signature})
            elif path.startswith("releases/") and path.endswith("/manifest"):
                version = path.split("/")[1]
                if version not in manifests:
                    self._json(404, {"detail": "No such release.", "code": "not_found"})
                    return
                text, signature = manifests[version]
                self._signed({"manifest": text, "signature": signature})
            elif path == "keys":
                body = stand_in.public_key().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self._json(404, {"detail": "Not found.", "code": "not_found"})

        def _signed(self, payload: dict[str, str]) -> None:
            body = json.dumps(payload).encode()
            etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self._json(200, payload, etag=etag)

        def _json(self, status: int, payload: Any, etag: str = "") -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if etag:
                self.send_header("ETag", etag)
            self.end_headers()
            self.wfile.write(body)

    return ContractHandler


@pytest.fixture
def vendor(vendor_key, agent_gnupg_home, settings) -> Iterator[VendorStandIn]:  # type: ignore[no-untyped-def]
    """A running stand-in vendor server, and the agent's settings pointing at it."""
    stand_in = VendorStandIn(*vendor_key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(stand_in))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stand_in.url = f"http://127.0.0.1:{server.server_address[1]}"
    settings.UPDATES_VENDOR_URL = stand_in.url
    settings.UPDATES_VENDOR_API_KEY = "school-key"
    settings.UPDATES_VENDOR_KEY_FINGERPRINTS = [vendor_key[1]]
    settings.UPDATES_VENDOR_PUBLIC_KEY_FILE = ""
    settings.UPDATES_GNUPG_HOME = agent_gnupg_home
    settings.UPDATES_SOURCES = ["vendor"]
    settings.UPDATES_CHANNEL = "stable"
    settings.UPDATES_SOURCE_TIMEOUT_SECONDS = 5
    settings.ADMIN_EMAILS = ["it@school.example"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    yield stand_in
    server.shutdown()
    server.server_close()
