"""Authenticated index polls per second, beside a bare Django view, with wrk.

Starts a private Redis (unless REDIS_URL is set) and gunicorn on loopback with a
scratch SQLite database and GnuPG home, publishes one release, then runs wrk
against ``/vendor/api/v1/index`` (key auth, throttle, check-in buffered in Redis,
cached signed index) and ``/bench/bare`` (2 KB of JSON, nothing else).

    .venv/bin/python bench/vendor_poll_bench.py            # best of 2 x 5 s each
    .venv/bin/python bench/vendor_poll_bench.py --full     # best of 2 x 30 s each
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devtools import services as localservices  # noqa: E402

API_KEY = "clms_bench-school-key-0123456789"


def wrk(url: str, seconds: int, connections: int, header: str | None) -> float:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if header:
        command[1:1] = ["-H", header]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        print(output)
        raise SystemExit(f"{url}: {non_2xx.group(1)} error answers; the figure is void")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="30 s runs instead of 5 s")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    seconds = 30 if args.full else 5

    work = Path(tempfile.mkdtemp(prefix="vbench-", dir="/tmp"))
    services = []
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "vendor_bench_settings",
        "PYTHONPATH": f"{ROOT / 'bench'}:{ROOT}",
        "CLMS_VAR_DIR": str(work / "var"),
        "DATABASE_URL": f"sqlite:///{work / 'bench.sqlite3'}",
        "VENDOR_GNUPG_HOME": str(work / "gpg"),
        "VENDOR_REGISTRY_CHECK": "false",
        "VENDOR_API_THROTTLE": "100000000/minute",
        "CLMS_ROLE": "vendor",
        "DEBUG": "false",
        "SECRET_KEY": "bench-" + "x" * 60,
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "warning",
    }
    try:
        if "REDIS_URL" not in os.environ:
            redis = localservices.start_redis(work / "redis")
            services.append(redis)
            env.update(redis.env)
        env.setdefault("CACHE_URL", env["REDIS_URL"])
        manage = [sys.executable, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "-v0"], env=env, check=True)
        subprocess.run(
            [*manage, "vendor_keygen", "-v0"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        subprocess.run(
            [*manage, "shell", "-c", SETUP],
            env={**env, "BENCH_API_KEY": API_KEY},
            check=True,
        )
        port = localservices.free_port()
        server = subprocess.Popen(
            [
                sys.executable, "-m", "gunicorn", "clms_updates.wsgi:application",
                "-b", f"127.0.0.1:{port}", "-w", str(args.workers), "--log-level", "warning",
            ],
            env=env,
            cwd=ROOT,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        request = urllib.request.Request(  # noqa: S310
            f"{base}/vendor/api/v1/index",
            headers={"Authorization": f"Bearer {API_KEY}"},
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(request, timeout=2).read()  # noqa: S310
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("gunicorn did not start") from None
                time.sleep(0.3)
        auth = f"Authorization: Bearer {API_KEY}"
        wrk(
            f"{base}/vendor/api/v1/index", 2, args.connections, auth
        )  # warm every worker
        # Interleaved, best of two each: other load on the machine hits both alike.
        polls, bares = [], []
        for _ in range(2):
            bares.append(wrk(f"{base}/bench/bare", seconds, args.connections, None))
            polls.append(
                wrk(f"{base}/vendor/api/v1/index", seconds, args.connections, auth)
            )
        poll, bare = max(polls), max(bares)
        server.terminate()
        server.wait(timeout=20)
        print(
            f"gunicorn, {args.workers} sync workers, wrk -c{args.connections}, best of 2 x {seconds}s"
        )
        print(f"  bare Django view (2 KB JSON):        {bare:8.0f} req/s")
        print(f"  authenticated index poll + check-in: {poll:8.0f} req/s")
        print(
            f"  poll / bare: {poll / bare:.0%}   target >= 1000 req/s: {'met' if poll >= 1000 else 'NOT met'}"
        )
    finally:
        for service in services:
            service.stop()
        shutil.rmtree(work, ignore_errors=True)


SETUP = """
import os
from vendor_server.publishing import ReleaseDraft, publish
from vendor_server.schools import create_school
create_school("Bench School", api_key=os.environ["BENCH_API_KEY"])
publish(ReleaseDraft(version="1.0.0", images=[{"service": "web", "reference":
    "registry.invalid/clms/web@sha256:" + "a" * 64}], changelog="x" * 500))
"""

if __name__ == "__main__":
    main()
