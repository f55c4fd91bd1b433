"""The LAN mirror: another agent serves signed metadata and bundles with token auth."""

from __future__ import annotations

import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from django.core.cache import cache

from updates import checking
from updates.mirror import serving as mirroring
from updates.models import AgentState, UpdateCheck
from updates.sources import MirrorSource, SourceRefused
from updates.tests.factories import make_manifest

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "lan-mirror-token"


@pytest.fixture
def mirror(vendor, live_server, settings, tmp_path):  # type: ignore[no-untyped-def]
    """This process serves as the mirror (upstream: the vendor stand-in) and its client."""
    settings.UPDATES_MIRROR_TOKENS = [TOKEN]
    settings.UPDATES_MIRROR_URL = live_server.url
    settings.UPDATES_MIRROR_TOKEN = TOKEN
    settings.UPDATES_CACHE_DIR = tmp_path / "cache"
    settings.UPDATES_CACHE_MAX_MB = 1
    settings.UPDATES_MIRROR_INDEX_MAX_AGE_SECONDS = 300
    settings.UPDATES_SOURCES = ["mirror", "vendor"]
    AgentState.load()
    AgentState.record_installed("1.0.0")
    vendor.publish([make_manifest("1.0.1")])
    cache.clear()
    return live_server.url + "/api/updates/mirror/vendor/api/v1/"


def test_an_agent_checks_through_the_mirror_and_verifies_what_it_gets(mirror, vendor):
    check = checking.run_check(sources=[MirrorSource.from_settings()])
    assert check.outcome == UpdateCheck.Outcome.OK, check.reason
    assert check.source == "mirror"
    assert check.found_version == "1.0.1"
    served = [path for path, _ in vendor.requests]
    assert "index" in served  # the mirror fetched upstream once


def test_the_mirror_needs_a_token(mirror):
    assert requests.get(mirror + "index", timeout=5).status_code == 401
    wrong = requests.get(
        mirror + "index", headers={"Authorization": "Bearer nope"}, timeout=5
    )
    assert wrong.status_code == 401
    assert "mirror token" in wrong.json()["detail"]


def test_the_mirror_is_off_without_tokens(mirror, settings):
    settings.UPDATES_MIRROR_TOKENS = []
    answer = requests.get(
        mirror + "index", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
    )
    assert answer.status_code == 404
    assert answer.json()["code"] == "mirror_off"


def test_a_client_with_a_wrong_token_is_told_so(mirror, settings):
    settings.UPDATES_MIRROR_TOKEN = "wrong"
    with pytest.raises(SourceRefused, match="401"):
        MirrorSource.from_settings().fetch_index()


def test_the_mirror_serves_its_cached_index_when_upstream_is_down(
    mirror, vendor, settings
):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    first = requests.get(mirror + "index", headers=headers, timeout=5)
    assert first.status_code == 200
    settings.UPDATES_MIRROR_INDEX_MAX_AGE_SECONDS = 0
    settings.UPDATES_VENDOR_URL = "http://127.0.0.1:9"
    settings.UPDATES_SOURCE_TIMEOUT_SECONDS = 1
    again = requests.get(mirror + "index", headers=headers, timeout=10)
    assert again.status_code == 200
    assert again.json()["index"] == first.json()["index"]


def test_a_tampered_cache_entry_is_dropped_not_served(mirror, vendor, settings):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    requests.get(mirror + "index", headers=headers, timeout=5)
    cached = settings.UPDATES_CACHE_DIR / "metadata" / "index.json"
    cached.write_text(cached.read_text().replace("1.0.1", "9.9.9"))
    settings.UPDATES_VENDOR_URL = "http://127.0.0.1:9"
    settings.UPDATES_SOURCE_TIMEOUT_SECONDS = 1
    answer = requests.get(mirror + "index", headers=headers, timeout=10)
    assert answer.status_code == 503
    assert not cached.exists()


def test_manifests_come_from_verified_releases(mirror):
    checking.run_check(sources=[MirrorSource.from_settings()])
    answer = requests.get(
        mirror + "releases/1.0.1/manifest",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )
    assert answer.status_code == 200
    assert '"version":"1.0.1"' in answer.json()["manifest"]


def test_the_cache_is_bounded_and_evicts_the_least_recently_used_bundles(
    mirror, settings
):
    folder = settings.UPDATES_CACHE_DIR / "bundles"
    folder.mkdir(parents=True)
    old, new = folder / "clms-1.0.1.zip", folder / "clms-1.0.2.zip"
    old.write_bytes(b"o" * 600_000)
    new.write_bytes(b"n" * 600_000)
    past = time.time() - 3600
    os.utime(old, (past, past))
    removed = mirroring.prune_cache()
    assert removed == [old]
    assert new.exists()
    assert mirroring.cache_usage() <= 1024 * 1024


def test_the_mirror_serves_a_verified_offline_bundle_with_its_checksum(
    mirror, settings, tmp_path
):
    import hashlib

    from updates.models import OfflineBundle

    data = b"PK-not-really-a-bundle" * 100
    path = tmp_path / "clms-1.0.1.zip"
    path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    OfflineBundle.objects.create(
        file_name=path.name,
        sha256=digest,
        size=len(data),
        state=OfflineBundle.State.VERIFIED,
        version="1.0.1",
        path=str(path),
    )
    answer = requests.get(
        mirror + "releases/1.0.1/bundle",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )
    assert answer.status_code == 200
    assert answer.content == data
    assert answer.headers["X-Checksum-Sha256"] == digest
    # A download resumes where it stopped, as from the vendor (the same contract).
    rest = requests.get(
        mirror + "releases/1.0.1/bundle",
        headers={"Authorization": f"Bearer {TOKEN}", "Range": "bytes=1000-"},
        timeout=5,
    )
    assert rest.status_code == 206 and rest.content == data[1000:]
    assert rest.headers["Content-Range"] == f"bytes 1000-{len(data) - 1}/{len(data)}"
    past = requests.get(
        mirror + "releases/1.0.1/bundle",
        headers={"Authorization": f"Bearer {TOKEN}", "Range": f"bytes={len(data)}-"},
        timeout=5,
    )
    assert past.status_code == 416


def test_an_agent_downloads_a_bundle_from_the_mirror_into_its_offline_folder(
    mirror, settings, tmp_path, admin_api
):
    import hashlib

    from updates.models import OfflineBundle

    data = b"PK-bundle-bytes" * 1000
    served = tmp_path / "served.zip"
    served.write_bytes(data)
    OfflineBundle.objects.create(
        file_name=served.name,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        state=OfflineBundle.State.VERIFIED,
        version="1.0.1",
        path=str(served),
    )
    settings.UPDATES_OFFLINE_DIR = tmp_path / "downstream-offline"
    settings.UPDATES_QUARANTINE_DIR = tmp_path / "downstream-quarantine"
    settings.UPDATES_OFFLINE_WORK_DIR = tmp_path / "downstream-work"
    answer = admin_api.post(
        "/api/updates/bundles/download", {"version": "1.0.1"}, format="json"
    )
    assert answer.status_code == 200, answer.content
    # Not a real bundle: it arrived intact, then the scan refused it.
    assert answer.json()[0]["state"] == "refused"
    quarantined = list((tmp_path / "downstream-quarantine").glob("*clms-1.0.1.zip"))
    assert quarantined and quarantined[0].read_bytes() == data


class _TrickleHandler(BaseHTTPRequestHandler):
    """A mirror that starts a 10 MB bundle, then sends 1 KiB a second."""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(10 * 1024 * 1024))
        self.end_headers()
        # 1 KiB every 0.2 s: 5 KiB/s, far below the test's minimum, yet often
        # enough that no single read waits out the 1 s socket timeout.
        try:
            for _ in range(3000):
                self.wfile.write(b"\0" * 1024)
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:
            pass


def test_a_bundle_download_slower_than_the_minimum_rate_is_cut_off(
    settings, tmp_path
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TrickleHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.UPDATES_MIRROR_URL = f"http://127.0.0.1:{server.server_address[1]}"
    settings.UPDATES_MIRROR_TOKEN = TOKEN
    settings.UPDATES_OFFLINE_DIR = tmp_path / "offline"
    settings.UPDATES_SOURCE_TIMEOUT_SECONDS = 1
    settings.UPDATES_DOWNLOAD_MIN_KIB_PER_SECOND = 32
    started = time.monotonic()
    try:
        with pytest.raises(
            mirroring.MirrorUnavailable, match="slower than the minimum"
        ):
            mirroring.download_bundle("1.0.1")
    finally:
        server.shutdown()
        server.server_close()
    assert time.monotonic() - started < 5  # not the ten minutes of the trickle
    assert not list((tmp_path / "offline").iterdir())  # the partial file is gone
