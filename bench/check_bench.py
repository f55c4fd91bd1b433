"""Benchmark: a check for updates against a local vendor stand-in, signatures included.

Starts a loopback HTTP server that serves the vendor contract (index, manifest,
keys) signed with a fresh GnuPG key, points the agent at it with a scratch
SQLite database, and times ``updates.checking.run_check`` end to end (HTTP,
signature verification of index and manifest, parsing, storing). Prints the
median and p95. Target: median under 200 ms.

    .venv/bin/python bench/check_bench.py            # 50 checks
    .venv/bin/python bench/check_bench.py --cold     # no ETag cache between checks
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_key(home: Path) -> str:
    subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback",
         "--passphrase", "", "--quick-gen-key", "Bench Vendor <bench@example.invalid>",
         "ed25519", "sign", "never"],
        check=True, capture_output=True,
    )  # fmt: skip
    listing = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--with-colons", "--list-secret-keys"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return next(
        ln.split(":")[9] for ln in listing.splitlines() if ln.startswith("fpr:")
    )


def serve(documents: dict[str, bytes]) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path.removeprefix("/vendor/api/v1/")
            body = documents.get(path)
            if body is None:
                self.send_response(404)
                self.end_headers()
                return
            etag = f'"{hash(body)}"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", etag)
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=50)
    parser.add_argument(
        "--cold", action="store_true", help="clear the ETag cache before each check"
    )
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="clms-bench-"))
    vendor_home = Path(tempfile.mkdtemp(prefix="gpg-", dir="/tmp"))
    agent_home = Path(tempfile.mkdtemp(prefix="gpg-", dir="/tmp"))
    for home in (vendor_home, agent_home):
        home.chmod(0o700)
    try:
        os.environ.update(
            DJANGO_SETTINGS_MODULE="clms_updates.settings",
            CLMS_VAR_DIR=str(scratch),
            DATABASE_URL=f"sqlite:///{scratch / 'bench.sqlite3'}",
            CACHE_URL="locmem://",
            EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
            LOG_LEVEL="warning",
        )
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from django.conf import settings
        from django.core.cache import cache
        from django.core.management import call_command

        from clms_updates import manifest as m
        from updates import checking

        call_command("migrate", verbosity=0)
        fingerprint = make_key(vendor_home)
        now = datetime.now(UTC).replace(microsecond=0)
        release = m.ReleaseManifest(
            product="clms", version="1.1.0", channel="stable",
            released_at=now - timedelta(hours=1), expires=now + timedelta(days=30),
            images=(m.Image("app", "127.0.0.1:5000/clms/app@sha256:" + "ab" * 32),),
            changelog="Bench release",
        )  # fmt: skip
        index = m.ReleaseIndex(
            product="clms", sequence=1, generated_at=now - timedelta(minutes=1),
            expires=now + timedelta(days=7), releases=(m.IndexEntry.for_manifest(release),),
        )  # fmt: skip

        def signed(field: str, data: bytes) -> bytes:
            sig = m.sign_detached(data, gnupghome=vendor_home, fingerprint=fingerprint)
            return json.dumps({field: data.decode(), "signature": sig}).encode()

        import gnupg

        documents = {
            "index": signed("index", index.to_bytes()),
            "releases/1.1.0/manifest": signed("manifest", release.to_bytes()),
            "keys": str(
                gnupg.GPG(gnupghome=str(vendor_home)).export_keys(fingerprint)
            ).encode(),
        }
        server, url = serve(documents)
        settings.UPDATES_VENDOR_URL = url
        settings.UPDATES_VENDOR_KEY_FINGERPRINTS = [fingerprint]
        settings.UPDATES_GNUPG_HOME = agent_home
        settings.UPDATES_SOURCES = ["vendor"]

        timings: list[float] = []
        for _ in range(args.checks):
            if args.cold:
                cache.clear()
            started = time.perf_counter()
            check = checking.run_check()
            timings.append((time.perf_counter() - started) * 1000)
            if check.outcome != "ok":
                print(f"check failed: {check.reason}", file=sys.stderr)
                return 1
        server.shutdown()
        timings.sort()
        median = statistics.median(timings)
        p95 = timings[min(len(timings) - 1, round(0.95 * len(timings)) - 1)]
        mode = "cold (no ETag cache)" if args.cold else "warm (ETag cache)"
        print(f"{args.checks} checks, {mode}, signatures verified every time")
        print(f"median {median:.1f} ms   p95 {p95:.1f} ms   (target: median < 200 ms)")
        return 0 if median < 200 else 2
    finally:
        for home in (vendor_home, agent_home):
            subprocess.run(
                ["gpgconf", "--homedir", str(home), "--kill", "all"],
                check=False,
                capture_output=True,
            )
            shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
