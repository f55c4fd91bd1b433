"""Backup benchmark: raw pg_dump/pg_restore against our backup and verify.

Builds a library-like database (bench/make_library_data.py) at ``--scale``
(default 0.02 of the issue's 1.06 GB; ``--scale 1.0`` for the full size), then
runs, alternately for ``--rounds`` rounds: raw ``pg_dump -Fc``, our backup,
raw ``pg_restore`` into a scratch database, our verify. Prints each figure
with its ratio to the target, and the agent process's peak RSS.

Run it against a real PostgreSQL (the service runner provides one):

    .venv/bin/python -m devtools.services test --services postgres,redis -- \
        .venv/bin/python bench/backup_bench.py [--scale 1.0]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

TARGETS = {"backup_time": 0.35, "backup_size": 1.2, "verify_time": 1.0, "rss_mb": 150}


def _bin(tool: str) -> str:
    bindir = os.environ.get("CLMS_PG_BINDIR", "")
    return str(Path(bindir) / tool) if bindir else tool


def _db_url(admin_url: str, db: str) -> str:
    return admin_url.rsplit("/", 1)[0] + "/" + db


def _recreate(admin_url: str, db: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(db)
            )
        )
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))


def _drop(admin_url: str, db: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(db)
            )
        )


def _timed(command: list[str], env: dict[str, str] | None = None) -> float:
    started = time.monotonic()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def _child(mode: str, env: dict[str, str], backup_id: int = 0) -> dict[str, float]:
    """Run our backup or verify in a fresh agent process; its own timing and RSS."""
    result = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--backup-id", str(backup_id)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"our {mode} failed:\n{result.stderr[-3000:]}")
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def child(mode: str, backup_id: int) -> None:
    """Inside the agent process: do the work, print seconds and peak RSS as JSON."""
    import resource

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clms_updates.settings")
    django.setup()
    # The agent is a long-running worker: time the work, not first imports.
    from channels.layers import get_channel_layer

    from backups import creating, verifying
    from backups.engines import engine_for
    from backups.models import Backup

    get_channel_layer()
    engine_for()

    started = time.monotonic()
    if mode == "create":
        backup = creating.new_backup(reason="benchmark")
        creating.run_backup(backup.pk, clms_version="bench")
        backup.refresh_from_db()
        out = {"id": backup.pk, "size": backup.size or 0}
    else:
        verifying.verify_backup(backup_id)
        out = {"id": backup_id, "size": Backup.objects.get(pk=backup_id).size or 0}
    out["seconds"] = time.monotonic() - started
    out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description="Backup benchmark")
    parser.add_argument("--scale", type=float, default=0.02)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pg-url", default=os.environ.get("CLMS_TEST_PG_URL", ""))
    parser.add_argument(
        "--reuse-data", action="store_true", help="keep an existing bench_library"
    )
    parser.add_argument("--child", choices=["create", "verify"], help=argparse.SUPPRESS)
    parser.add_argument("--backup-id", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.backup_id)
        return
    if not args.pg_url:
        raise SystemExit(
            "Give --pg-url (a superuser URL) or run under devtools.services."
        )

    from make_library_data import build

    library = _db_url(args.pg_url, "bench_library")
    if not args.reuse_data:
        started = time.monotonic()
        build(args.pg_url, "bench_library", args.scale)
        print(f"generated scale {args.scale} in {time.monotonic() - started:.1f}s")
    with psycopg.connect(library) as conn:
        size_row = conn.execute(
            "SELECT pg_database_size(current_database())"
        ).fetchone()
    print(f"database size: {size_row[0] / 1e6 if size_row else 0:.1f} MB")

    work = Path(tempfile.mkdtemp(prefix="backup-bench-"))
    _recreate(args.pg_url, "bench_agent")
    env = {
        **os.environ,
        "DATABASE_URL": _db_url(args.pg_url, "bench_agent"),
        "CLMS_DATABASE_URL": library,
        "BACKUP_DIR": str(work / "backups"),
        "CACHE_URL": "locmem://",
        "LOG_LEVEL": "warning",
    }
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"], env=env, check=True
    )
    pg_env = {**os.environ}
    raw_dump = work / "raw.dump"
    figures: dict[str, list[float]] = {
        k: []
        for k in (
            "raw_dump",
            "raw_dump_z0",
            "ours_backup",
            "raw_restore",
            "ours_verify",
            "rss_backup",
            "rss_verify",
        )
    }
    raw_size = ours_size = 0
    for round_no in range(1, args.rounds + 1):
        figures["raw_dump"].append(
            _timed(
                [_bin("pg_dump"), "-Fc", "-f", str(raw_dump), "--dbname", library],
                pg_env,
            )
        )
        raw_size = raw_dump.stat().st_size
        # The floor for any design built on one pg_dump: no compression at all.
        figures["raw_dump_z0"].append(
            _timed(
                [
                    _bin("pg_dump"),
                    "-Fc",
                    "-Z0",
                    "-f",
                    str(work / "z0.dump"),
                    "--dbname",
                    library,
                ],
                pg_env,
            )
        )
        (work / "z0.dump").unlink()
        made = _child("create", env)
        figures["ours_backup"].append(made["seconds"])
        figures["rss_backup"].append(made["rss_mb"])
        ours_size = int(made["size"])
        _recreate(args.pg_url, "bench_scratch")
        figures["raw_restore"].append(
            _timed(
                [
                    _bin("pg_restore"),
                    "--no-owner",
                    "-d",
                    _db_url(args.pg_url, "bench_scratch"),
                    str(raw_dump),
                ],
                pg_env,
            )
        )
        _drop(args.pg_url, "bench_scratch")
        checked = _child("verify", env, int(made["id"]))
        figures["ours_verify"].append(checked["seconds"])
        figures["rss_verify"].append(checked["rss_mb"])
        print(
            f"round {round_no}: "
            + ", ".join(f"{k}={v[-1]:.2f}" for k, v in figures.items())
        )

    med = {k: statistics.median(v) for k, v in figures.items()}
    rows = [
        (
            "backup time (ours / raw pg_dump -Fc)",
            med["ours_backup"],
            med["raw_dump"],
            TARGETS["backup_time"],
        ),
        (
            "backup time (raw pg_dump -Fc -Z0 / -Fc), the one-pg_dump floor",
            med["raw_dump_z0"],
            med["raw_dump"],
            TARGETS["backup_time"],
        ),
        (
            "backup size (ours / pg_dump -Fc file)",
            ours_size,
            raw_size,
            TARGETS["backup_size"],
        ),
        (
            "verify time (ours / raw pg_restore)",
            med["ours_verify"],
            med["raw_restore"],
            TARGETS["verify_time"],
        ),
    ]
    print(f"\nscale {args.scale}, {args.rounds} rounds, medians:")
    for label, ours, raw, target in rows:
        ratio = ours / raw if raw else float("inf")
        verdict = "ok" if ratio <= target else "MISSED"
        print(
            f"  {label}: {ours:.2f} / {raw:.2f} = {ratio:.2f} (target <= {target}) {verdict}"
        )
    peak = max(figures["rss_backup"])
    print(
        f"  peak RSS of the agent during backup: {peak:.0f} MB (target < {TARGETS['rss_mb']}) "
        f"{'ok' if peak < TARGETS['rss_mb'] else 'MISSED'}"
    )
    print(f"  peak RSS of the agent during verify: {max(figures['rss_verify']):.0f} MB")
    _drop(args.pg_url, "bench_agent")
    subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main()
