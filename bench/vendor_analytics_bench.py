"""How long the fleet analytics page takes to render with a fleet's worth of data.

Seeds schools, releases, check-in state and update reports into the database it
is given (DATABASE_URL; default a scratch SQLite file), then renders the page as
a staff user several times and prints the median and worst time.

    .venv/bin/python bench/vendor_analytics_bench.py          # 1,000 schools, 20,000 reports
    .venv/bin/python bench/vendor_analytics_bench.py --full   # 10,000 schools, 200,000 reports
    DATABASE_URL=postgresql://… .venv/bin/python bench/vendor_analytics_bench.py --full
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VERSIONS = ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0", "2.0.0", "2.1.0", "2.2.0"]
TARGET_MS = 300


def seed(schools: int, reports: int) -> None:
    from django.utils import timezone

    from vendor_server.models import Release, School, UpdateReport, hash_api_key

    rng = random.Random(7)
    now = timezone.now()
    releases = [
        Release(
            product="clms",
            version=version,
            critical=(version == "2.1.0"),
            force_after=now - timedelta(days=2) if version == "2.1.0" else None,
            images=[
                {"service": "web", "reference": "r.invalid/web@sha256:" + "a" * 64}
            ],
            published_at=now - timedelta(days=60 - 7 * i),
            manifest_json="{}",
            manifest_sha256="0" * 64,
            manifest_signature="bench",
        )
        for i, version in enumerate(VERSIONS)
    ]
    Release.objects.bulk_create(releases)
    by_version = {r.version: r for r in Release.objects.all()}
    School.objects.bulk_create(
        [
            School(
                name=f"Bench school {i}",
                api_key_hash=hash_api_key(f"bench-{i}"),
                current_version=rng.choice(VERSIONS),
                last_seen=now - timedelta(hours=rng.randint(0, 24 * 20)),
            )
            for i in range(schools)
        ],
        batch_size=2000,
    )
    school_ids = list(School.objects.values_list("id", flat=True))
    outcomes = ["succeeded"] * 17 + ["failed"] * 2 + ["rolled_back"]
    batch = []
    for i in range(reports):
        to_version = rng.choice(VERSIONS[1:])
        received_at = now - timedelta(minutes=rng.randint(0, 60 * 24 * 45))
        batch.append(
            UpdateReport(
                school_id=rng.choice(school_ids),
                release=by_version[to_version],
                run_id=i,
                from_version="1.0.0",
                to_version=to_version,
                outcome=rng.choice(outcomes),
                duration_seconds=rng.randint(30, 900),
                received_at=received_at,
                received_on=received_at.date(),
            )
        )
        if len(batch) == 5000:
            UpdateReport.objects.bulk_create(batch)
            batch = []
    UpdateReport.objects.bulk_create(batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--full", action="store_true", help="10,000 schools, 200,000 reports"
    )
    parser.add_argument("--renders", type=int, default=7)
    args = parser.parse_args()
    schools, reports = (10_000, 200_000) if args.full else (1_000, 20_000)

    work = Path(tempfile.mkdtemp(prefix="vabench-", dir="/tmp"))
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{work / 'bench.sqlite3'}")
    os.environ["CLMS_VAR_DIR"] = str(work / "var")
    os.environ.setdefault("CACHE_URL", "locmem://")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clms_updates.settings")
    try:
        import django

        django.setup()
        from django.conf import settings
        from django.contrib.auth.models import User
        from django.core.management import call_command
        from django.test import Client

        settings.ALLOWED_HOSTS = ["*"]
        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        seed(schools, reports)
        print(f"seeded {schools:,} schools and {reports:,} reports in "
              f"{time.perf_counter() - started:.1f} s ({settings.DATABASES['default']['ENGINE']})")  # fmt: skip
        staff = User.objects.create_user(
            "bench-staff", is_staff=True, is_superuser=True
        )
        client = Client()
        client.force_login(staff)
        client.get("/vendor/analytics/")  # warm up templates and connections
        times = []
        for _ in range(args.renders):
            started = time.perf_counter()
            response = client.get("/vendor/analytics/")
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.status_code
        median = statistics.median(times)
        print(f"analytics page: median {median:.0f} ms, worst {max(times):.0f} ms over "
              f"{args.renders} renders (target < {TARGET_MS} ms: "
              f"{'met' if median < TARGET_MS else 'NOT met'})")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
