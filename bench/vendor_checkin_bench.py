"""How long the vendor takes to write a minute of check-ins to the database.

Every poll of a school agent only overwrites its entry in one Redis hash; the
beat task ``flush_checkins`` moves the whole hash into PostgreSQL each minute.
This seeds N schools (default 100,000) into a PostgreSQL server and buffers one
check-in per school in a Redis server, both started here (or DATABASE_URL /
REDIS_URL when given), then times one flush against its target (5 s).
``--baseline`` also times the earlier way (one UPDATE per school) on the same data.

    .venv/bin/python bench/vendor_checkin_bench.py [--schools 100000] [--baseline]

Without PostgreSQL or Redis on this machine it says so and exits.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devtools import services as local  # noqa: E402

TARGET_SECONDS = 5.0
VERSIONS = ["1.0.0", "1.1.0", "1.2.0", "1.3.0"]


def seed(schools: int) -> list[int]:
    from vendor_server.models import School, hash_api_key

    School.objects.bulk_create(
        [
            School(
                name=f"Bench school {i}",
                api_key_hash=hash_api_key(f"bench-{i}"),
                current_version=VERSIONS[i % len(VERSIONS)],
            )
            for i in range(schools)
        ],
        batch_size=5000,
    )
    return list(School.objects.values_list("id", flat=True))


def buffer_polls(ids: list[int]) -> None:
    """One check-in per school, as a minute of polls leaves it in Redis."""
    from vendor_server import fastpath

    client = fastpath.redis_client()
    assert client is not None, "the cache is not Redis"
    now = time.time()
    for start in range(0, len(ids), 10_000):
        client.hset(
            fastpath.CHECKINS_KEY,
            mapping={
                str(school_id): f"{now:.3f}|{VERSIONS[school_id % 4]}|1.0.0"
                for school_id in ids[start : start + 10_000]
            },
        )


def one_update_per_school(ids: list[int]) -> float:
    """The earlier flush: one UPDATE per school in a transaction."""
    from django.db import transaction
    from django.utils import timezone

    from vendor_server.models import School

    started = time.perf_counter()
    now = timezone.now()
    with transaction.atomic():
        for school_id in ids:
            School.objects.filter(pk=school_id).update(
                last_seen=now, current_version="1.3.0", agent_version="1.0.0"
            )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schools", type=int, default=100_000)
    parser.add_argument(
        "--baseline", action="store_true", help="also time one UPDATE per school"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ckbench-", dir="/tmp"))
    work.chmod(0o755)  # PostgreSQL runs as its own user when this runs as root
    os.environ["CLMS_VAR_DIR"] = str(work / "var")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clms_updates.settings")
    started_services = local.for_bench(work)
    if started_services is None:
        return
    try:
        import django

        django.setup()
        from django.core.management import call_command

        from vendor_server import checkins
        from vendor_server.models import CheckIn, School

        call_command("migrate", verbosity=0)
        begun = time.perf_counter()
        ids = seed(args.schools)
        print(f"seeded {len(ids):,} schools in {time.perf_counter() - begun:.1f} s")
        buffer_polls(ids)
        begun = time.perf_counter()
        flushed = checkins.flush_checkins()
        took = time.perf_counter() - begun
        assert flushed == len(ids), (flushed, len(ids))
        assert CheckIn.objects.count() == len(ids)
        assert not School.objects.filter(last_seen__isnull=True).exists()
        verdict = "met" if took < TARGET_SECONDS else "NOT met"
        print(
            f"flush_checkins: {flushed:,} schools in {took:.2f} s "
            f"({flushed / took:,.0f} schools/s; target < {TARGET_SECONDS:.0f} s: "
            f"{verdict})"
        )
        if args.baseline:
            baseline = one_update_per_school(ids)
            print(
                f"one UPDATE per school (earlier flush, schools only): {baseline:.2f} "
                f"s, {baseline / took:.1f}x the batched flush"
            )
    finally:
        from django.db import connections

        connections.close_all()
        for service in reversed(started_services):
            service.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
