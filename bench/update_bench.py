"""Update benchmark: check, pull, backup, update, downtime and rollback on the demo stack.

Everything real: the vendor server (this codebase, served over loopback HTTP
in a thread) signs releases naming the demo CLMS images in a real registry;
the agent checks, then the real pipeline updates the demo stack on a real
Docker engine with a real PostgreSQL library database. Prints each figure
beside its target:

- the update check (HTTP + both signature checks), target under 5 s;
- the pull by digest of an image with one random layer (``--pull-mb``,
  default 20 MB; the issue's comparison figure is for 100 MB);
- the verified backup of the library database, target under 2 minutes;
- the total update time with the download excluded, target under 15 s;
- CLMS downtime during a successful update, polling /health every 100 ms,
  target under 3 s; and the downtime users feel: a real read (``GET /students``)
  and a real write (``POST /loans``) every 100 ms, the longest time either was
  refused (maintenance included), target under 2 s for a migration under 1 s;
- rollback time after a failed migration (containers back + health) and the
  database restore beside it, target under 10 s plus the restore; and after a
  crashing release (containers only).

Run it with the services it needs:

    .venv/bin/python -m devtools.services test \\
        --services redis,postgres,dockerd,registry -- .venv/bin/python bench/update_bench.py

``--rows N`` makes the library bigger (default 2 000 extra books; the backup
and restore grow with it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socketserver
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


def _environment(tmp: Path, pg_url: str) -> tuple[str, str]:
    """Scratch databases (agent, library) and the settings the agent reads."""
    import psycopg

    suffix = uuid.uuid4().hex[:8]
    agent_db, library_db = f"bench_agent_{suffix}", f"bench_library_{suffix}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{agent_db}"')
        admin.execute(f'CREATE DATABASE "{library_db}"')
    base = pg_url.rsplit("/", 1)[0]
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "clms_updates.settings",
            "DATABASE_URL": f"{base}/{agent_db}",
            "CLMS_DATABASE_URL": f"{base}/{library_db}",
            "BACKUP_DIR": str(tmp / "backups"),
            "CLMS_VAR_DIR": str(tmp / "var"),
            "VENDOR_GNUPG_HOME": str(tmp / "vendor-gpg"),
            "UPDATES_GNUPG_HOME": str(tmp / "agent-gpg"),
            "UPDATES_SOURCES": "vendor",
            "UPDATES_MIN_FREE_DISK_MB": "10",
            "UPDATES_STOP_TIMEOUT_SECONDS": "5",
            "LOG_LEVEL": "warning",
        }
    )
    return f"{base}/{agent_db}", f"{base}/{library_db}"


def _figure(name: str, seconds: float, target: str, ok: bool | None = None) -> None:
    verdict = "" if ok is None else ("  ok" if ok else "  OVER TARGET")
    print(f"{name:<46} {seconds:8.2f} s   target {target}{verdict}")


def _push_random_image(client: Any, megabytes: int) -> str:
    """Build an image holding ``megabytes`` of random bytes, push it, drop it locally."""
    import io
    import tarfile

    payload = os.urandom(megabytes * 1024 * 1024)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        dockerfile = b"FROM scratch\nCOPY blob /blob\n"
        for name, data in (("Dockerfile", dockerfile), ("blob", payload)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    repository = f"{os.environ['CLMS_TEST_REGISTRY']}/bench/blob"
    tag = uuid.uuid4().hex[:8]
    image, _ = client.images.build(
        fileobj=io.BytesIO(buffer.getvalue()),
        custom_context=True,
        tag=f"{repository}:{tag}",
    )
    digest = ""
    for event in client.api.push(repository, tag=tag, stream=True, decode=True):
        digest = (event.get("aux") or {}).get("Digest", digest)
    client.images.remove(image.id, force=True)
    return f"{repository}@{digest}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2000, help="extra books to add")
    parser.add_argument(
        "--pull-mb", type=int, default=20, help="size of the image pulled (MB)"
    )
    args = parser.parse_args()
    for needed in ("DOCKER_HOST", "CLMS_TEST_REGISTRY", "CLMS_TEST_PG_URL"):
        if not os.environ.get(needed):
            print(f"{needed} is not set: run this under devtools.services")
            return 2
    tmp = Path(tempfile.mkdtemp(prefix="update-bench-"))
    agent_url, library_url = _environment(tmp, os.environ["CLMS_TEST_PG_URL"])

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    import docker
    import psycopg
    from django.core.wsgi import get_wsgi_application

    from clms_updates.actions import Actor
    from conftest import generate_signing_key
    from devtools.demo_stack import (
        build_and_push,
        seed,
        start_stack,
        stop_stack,
        wait_healthy,
    )
    from devtools.demo_stack import health as probe
    from updates import actions, checking, pipeline
    from updates.models import UpdateRun
    from vendor_server import indexing
    from vendor_server.publishing import ReleaseDraft, publish
    from vendor_server.schools import create_school

    client = docker.DockerClient(base_url=os.environ["DOCKER_HOST"])
    print("Building and pushing the demo images…")
    images = build_and_push(client, os.environ["CLMS_TEST_REGISTRY"])

    # The vendor server, over HTTP on loopback, signing with a fresh key.
    home = Path(settings.VENDOR_GNUPG_HOME)
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    fingerprint = generate_signing_key(home)
    settings.VENDOR_SIGNING_KEY = fingerprint
    server = make_server(
        "127.0.0.1",
        0,
        get_wsgi_application(),
        server_class=_ThreadingServer,
        handler_class=_QuietHandler,
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _, api_key = create_school("Bench School")
    settings.UPDATES_VENDOR_URL = f"http://127.0.0.1:{server.server_port}"
    settings.UPDATES_VENDOR_API_KEY = api_key
    settings.UPDATES_VENDOR_KEY_FINGERPRINTS = [fingerprint]
    Path(settings.UPDATES_GNUPG_HOME).mkdir(mode=0o700, parents=True, exist_ok=True)

    def release(version: str, tag: str) -> None:
        reference = images[tag]
        publish(
            ReleaseDraft(
                version=version,
                images=[
                    {"service": "app", "reference": reference},
                    {"service": "worker", "reference": reference},
                ],
                migration={"service": "app", "command": ["migrate"]},
                health_check={
                    "path": "/health",
                    "body_field": "status",
                    "body_value": "ok",
                    "successes": 3,
                    "interval_ms": 100,
                    "timeout_seconds": 10,
                },
            ),
            published_by="bench",
        )
        indexing.forget_local_caches()

    # The demo stack at 1.0.0 with a library in it.
    from devtools.services import free_port

    port = free_port()
    project = f"bench-{uuid.uuid4().hex[:6]}"
    stack = start_stack(
        client,
        image_ref=images["1.0.0"],
        project=project,
        database_url=library_url,
        http_port=port,
        state_dir=tmp / "state",
        env_file=tmp / "clms.env",
    )
    seed(client, image_ref=images["1.0.0"], database_url=library_url)
    with psycopg.connect(library_url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO books (title, author) SELECT 'Book ' || g, 'Author ' || g "
            "FROM generate_series(1, %s) g",
            (args.rows,),
        )
    wait_healthy(stack.health_url, version="1.0.0")
    settings.CLMS_COMPOSE_PROJECT = project
    settings.CLMS_COMPOSE_ENV_FILE = str(stack.env_file)
    settings.CLMS_STATE_DIR = stack.state_dir
    settings.CLMS_APP_URL = stack.url

    def run_to(version: str) -> UpdateRun:
        run = actions.update_now(
            version, actor=Actor.command(), force=True, background=False
        )
        pipeline.execute_run(run.pk)
        run.refresh_from_db()
        return run

    def seconds_of(run: UpdateRun, *names: str) -> float:
        return sum(s["seconds"] or 0 for s in run.steps if s["name"] in names)

    print(f"\nUpdate benchmark ({args.rows} extra books; demo stack, this machine)\n")
    try:
        # 1. The check.
        release("1.0.1", "1.0.1")
        checks = []
        for _ in range(5):
            started = time.perf_counter()
            check = checking.run_check()
            checks.append(time.perf_counter() - started)
        assert check.found_version == "1.0.1", check.reason
        first = checks[0]
        median = statistics.median(checks[1:])
        _figure("check (first, keys imported)", first, "< 5 s", first < 5)
        _figure("check (median of next 4)", median, "< 5 s", median < 5)

        # 2. The pull: an image with one random layer of --pull-mb MB, pushed,
        #    removed from the engine, then pulled by digest.
        from updates import runtime

        reference = _push_random_image(client, args.pull_mb)
        transferred = [0]

        def bytes_seen(done: int, total: int) -> None:
            transferred[0] = max(transferred[0], done)

        started = time.perf_counter()
        runtime.pull_by_digest(client, reference, progress=bytes_seen)
        pull = time.perf_counter() - started
        _figure(
            f"pull by digest ({transferred[0] / 1e6:.0f} MB)",
            pull,
            "< 10 min (plan)",
            pull < 600,
        )

        # 3-5. A successful update, with /health polled every 100 ms.
        outages: list[float] = []
        polling = threading.Event()

        def poll() -> None:
            down_since: float | None = None
            while not polling.is_set():
                status, _ = probe(stack.health_url, timeout=1)
                now = time.perf_counter()
                if status != 200 and down_since is None:
                    down_since = now
                elif status == 200 and down_since is not None:
                    outages.append(now - down_since)
                    down_since = None
                time.sleep(0.1)
            if down_since is not None:
                outages.append(time.perf_counter() - down_since)

        refused: dict[str, list[float]] = {"read": [], "write": []}

        def operate(kind: str) -> None:
            """A real CLMS operation every 100 ms; note each stretch it was refused."""
            down_since: float | None = None
            session = requests.Session()
            while not polling.is_set():
                try:
                    if kind == "read":
                        answer = session.get(f"{stack.url}/students", timeout=2)
                    else:
                        answer = session.post(
                            f"{stack.url}/loans",
                            json={"book_id": 1, "student_id": 1},
                            timeout=2,
                        )
                    ok = answer.status_code < 300
                except requests.RequestException:
                    ok = False
                now = time.perf_counter()
                if not ok and down_since is None:
                    down_since = now
                elif ok and down_since is not None:
                    refused[kind].append(now - down_since)
                    down_since = None
                time.sleep(0.1)
            if down_since is not None:
                refused[kind].append(time.perf_counter() - down_since)

        pollers = [
            threading.Thread(target=poll, daemon=True),
            threading.Thread(target=operate, args=("read",), daemon=True),
            threading.Thread(target=operate, args=("write",), daemon=True),
        ]
        for poller in pollers:
            poller.start()
        run = run_to("1.0.1")
        polling.set()
        for poller in pollers:
            poller.join()
        assert run.state == UpdateRun.State.SUCCEEDED, run.log
        backup = seconds_of(run, "backup")
        total = (run.finished_at - run.started_at).total_seconds()
        without_download = total - seconds_of(run, "fetch")
        _figure("backup (dump + verify by restore)", backup, "< 2 min", backup < 120)
        _figure(
            "total update, download excluded",
            without_download,
            "< 15 s",
            without_download < 15,
        )
        downtime = max(outages, default=0.0)
        _figure(
            f"downtime (longest /health outage; {len(outages)} outage(s))",
            downtime,
            "< 3 s",
            downtime < 3,
        )
        felt = max((max(v, default=0.0) for v in refused.values()), default=0.0)
        _figure(
            "downtime users feel (longest refusal of a real read or write, "
            f"maintenance included; {len(refused['read'])} read and "
            f"{len(refused['write'])} write refusal(s))",
            felt,
            "< 2 s",
            felt < 2,
        )
        migration = seconds_of(run, "migrate")
        steps = ", ".join(f"{s['name']} {s['seconds']:.2f}" for s in run.steps)
        longest = max(run.steps, key=lambda s: s.get("seconds") or 0)
        print(f"    steps: {steps}")
        print(
            f"    the migration took {migration:.2f} s; the longest step was "
            f"{longest['name']} ({longest.get('seconds') or 0:.2f} s)"
        )

        # 6. Rollback after a failed migration (database restored) …
        release("1.1.0", "1.1.0-badmigration")
        checking.run_check()
        run = run_to("1.1.0")
        assert run.state == UpdateRun.State.ROLLED_BACK, run.log
        restore = seconds_of(run, "rollback_database")
        rollback = seconds_of(run, "rollback_containers", "rollback_health")
        _figure(
            "rollback after failed migration (no restore)",
            rollback,
            "< 10 s",
            rollback < 10,
        )
        _figure("  + database restore from the backup", restore, "(beside it)")
        # … and after a release whose containers crash (images only).
        release("1.1.1", "1.1.0-crash")
        checking.run_check()
        run = run_to("1.1.1")
        assert run.state == UpdateRun.State.ROLLED_BACK, run.log
        rollback = seconds_of(run, "rollback_containers", "rollback_health")
        detect = seconds_of(run, "health")
        _figure("rollback after crashing containers", rollback, "< 10 s", rollback < 10)
        _figure("  crash detected after", detect, "(health step)")
    finally:
        server.shutdown()
        stop_stack(client, project)
        from django.db import connections

        connections.close_all()
        with psycopg.connect(os.environ["CLMS_TEST_PG_URL"], autocommit=True) as admin:
            for url in (agent_url, library_url):
                name = url.rsplit("/", 1)[1]
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
