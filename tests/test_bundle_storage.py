"""Bundles served from S3-compatible storage by presigned URL, checked byte for byte.

The object storage is moto's server mode (the ``moto_s3`` fixture); it stands
in for a cloud bucket. The vendor is the real one
(``live_server``); the agent downloads as a mirror hub does
(``fetch_bundle_upstream``): the API answers a redirect, the agent follows it
without its API key, and the bytes must match the signed size and sha256.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from updates.mirror import serving
from vendor_server import bundlestore
from vendor_server.publishing import ReleaseDraft, publish
from vendor_server.schools import create_school

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]

BUCKET = "vendor-bundles"
IMAGE = "registry.invalid/clms/web@sha256:" + "c" * 64


@pytest.fixture
def bucket(settings, moto_s3) -> Iterator[object]:  # type: ignore[no-untyped-def]
    settings.VENDOR_BUNDLE_S3_BUCKET = BUCKET
    settings.VENDOR_BUNDLE_S3_ENDPOINT_URL = moto_s3.meta.endpoint_url
    settings.VENDOR_BUNDLE_S3_ACCESS_KEY_ID = "test-key"
    settings.VENDOR_BUNDLE_S3_SECRET_ACCESS_KEY = "test-secret"
    moto_s3.create_bucket(Bucket=BUCKET)
    yield moto_s3
    bundlestore._client.cache_clear()


@pytest.fixture
def published(live_server, settings, signing_key, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A release with a bundle file on the vendor, and the agent pointed at it."""
    home, fingerprint = signing_key
    settings.VENDOR_GNUPG_HOME = home
    settings.VENDOR_SIGNING_KEY = fingerprint
    settings.VENDOR_REGISTRY_CHECK = False
    settings.VENDOR_BUNDLE_DIR = tmp_path / "bundles"
    release = publish(
        ReleaseDraft(version="1.0.1", images=[{"service": "web", "reference": IMAGE}]),
        published_by="tests",
    )
    data = os.urandom(300_000)
    folder = settings.VENDOR_BUNDLE_DIR / "1.0.1"
    folder.mkdir(parents=True)
    (folder / "clms-1.0.1.zip").write_bytes(data)
    release.bundle_file = "1.0.1/clms-1.0.1.zip"
    release.bundle_sha256 = hashlib.sha256(data).hexdigest()
    release.bundle_size = len(data)
    release.save()
    _, key = create_school("Bucket Primary")
    settings.UPDATES_VENDOR_URL = live_server.url
    settings.UPDATES_VENDOR_API_KEY = key
    settings.UPDATES_CACHE_DIR = tmp_path / "cache"
    settings.UPDATES_CACHE_MAX_MB = 10
    return release, data, key, live_server.url


def test_the_vendor_redirects_to_storage_and_the_agent_checks_every_byte(
    bucket, published, tmp_path
) -> None:
    release, data, key, url = published
    answer = requests.get(
        f"{url}/vendor/api/v1/releases/1.0.1/bundle",
        headers={"Authorization": f"Bearer {key}"},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith(
        bucket.meta.endpoint_url + f"/{BUCKET}/"
    )
    assert "X-Amz-Signature=" in answer.headers["Location"]  # presigned, expires
    (stored,) = bucket.list_objects_v2(Bucket=BUCKET)["Contents"]
    assert stored["Size"] == len(data)

    target = tmp_path / "got.zip"
    serving.fetch_bundle_upstream("1.0.1", release.bundle_sha256, len(data), target)
    assert target.read_bytes() == data

    # Storage that serves other bytes (a swapped object) is caught by the checksum.
    bucket.put_object(Bucket=BUCKET, Key=stored["Key"], Body=os.urandom(len(data)))
    with pytest.raises(serving.MirrorUnavailable, match="does not match the signed"):
        serving.fetch_bundle_upstream(
            "1.0.1", release.bundle_sha256, len(data), tmp_path / "again.zip"
        )
    assert not (tmp_path / "again.zip").exists()


def test_without_storage_the_vendor_streams_the_bundle_itself(published) -> None:
    _, data, key, url = published
    answer = requests.get(
        f"{url}/vendor/api/v1/releases/1.0.1/bundle",
        headers={"Authorization": f"Bearer {key}"},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 200 and answer.content == data


def test_a_redirect_to_plain_http_elsewhere_is_not_followed(settings, tmp_path) -> None:
    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", "http://bundles.example.invalid/clms.zip")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.UPDATES_VENDOR_URL = f"http://127.0.0.1:{server.server_address[1]}"
    settings.UPDATES_CACHE_DIR = tmp_path / "cache"
    settings.DEBUG = False
    try:
        with pytest.raises(serving.MirrorUnavailable, match="redirected the download"):
            serving.fetch_bundle_upstream("1.0.1", "0" * 64, 10, tmp_path / "x.zip")
    finally:
        server.shutdown()
