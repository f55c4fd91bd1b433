"""Error tracking: off by default; with SENTRY_DSN, errors arrive without secrets.

The error tracker is a stand-in HTTP server here (the real one is on the
internet); the agent is a real process started with the DSN in its
environment, as a school would set it.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from clms_updates import errortracking

ROOT = Path(__file__).resolve().parent.parent
VENDOR_KEY = "school-vendor-key-7f3a9c1e55"
FAILING = """
import django, logging
django.setup()
from sentry_sdk import capture_exception, flush
def poll(api_key):
    raise RuntimeError("vendor refused key " + api_key)
try:
    poll({key!r})
except RuntimeError as e:
    capture_exception(e)
flush(timeout=10)
"""


def _tracker() -> tuple[ThreadingHTTPServer, list[bytes]]:
    received: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            encoding = self.headers.get("Content-Encoding", "")
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            elif encoding == "br":
                import brotli  # type: ignore[import-not-found]

                body = brotli.decompress(body)
            received.append(body)
            self.send_response(200)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, received


def test_an_error_reaches_the_tracker_with_every_secret_scrubbed(tmp_path) -> None:
    server, received = _tracker()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "clms_updates.settings",
        "SENTRY_DSN": f"http://publickey@127.0.0.1:{server.server_port}/1",
        "UPDATES_VENDOR_API_KEY": VENDOR_KEY,
    }
    try:
        subprocess.run(
            [sys.executable, "-c", FAILING.format(key=VENDOR_KEY)],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=60,
            capture_output=True,
        )
    finally:
        server.shutdown()
    sent = b"".join(received)
    assert b"vendor refused key" in sent, "the error never reached the tracker"
    assert VENDOR_KEY.encode() not in sent
    assert b"publickey" not in sent.split(b"\n", 1)[-1]  # the DSN's key, in the body


def test_without_a_dsn_nothing_is_set_up() -> None:
    answer = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); import sentry_sdk; "
            "print(sentry_sdk.get_client().is_active())",
        ],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "clms_updates.settings"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert answer.stdout.strip() == "False"


def test_scrubbing_replaces_secret_fields_and_secret_values_anywhere() -> None:
    secrets = errortracking.secret_values(
        {"SECRET_KEY": "x" * 50, "METRICS_TOKEN": "metrics-token-1", "DEBUG": "true"}
    )
    assert secrets == {"x" * 50, "metrics-token-1"}
    event = {
        "message": "sent metrics-token-1 to the scraper",
        "extra": {"school_key": "abc", "count": 3},
        "frames": [{"vars": {"password": "hunter22", "n": "1"}}],
    }
    clean = errortracking.scrub(event, secrets)
    assert clean["message"] == "sent [Filtered] to the scraper"
    assert clean["extra"] == {"school_key": "[Filtered]", "count": 3}
    assert clean["frames"][0]["vars"] == {"password": "[Filtered]", "n": "1"}
