"""The vendor at fleet size: the analytics page, and publishing and pausing a rollout.

Seeds schools, releases, check-in state and update reports into PostgreSQL
(started here, or DATABASE_URL) with Redis as the cache (started here, or
REDIS_URL), renders the fleet analytics page as staff several times and prints
the median and worst against the target (300 ms). With ``--rollout`` it then
signs with a real GnuPG key, pauses and resumes a staged rollout and serves
every school its index after each change, printing how long the change took,
how many distinct signed documents the fleet needed and how long serving them
took (channel indexes, format 2, and the older per-school views, format 1).

    .venv/bin/python bench/vendor_analytics_bench.py             # 10,000 schools, 200,000 reports
    .venv/bin/python bench/vendor_analytics_bench.py --full      # 100,000 schools, 2,000,000 reports
    .venv/bin/python bench/vendor_analytics_bench.py --full --rollout

Without PostgreSQL, Redis (or gpg for ``--rollout``) on this machine it says so
and exits.
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

from devtools import services as local  # noqa: E402

VERSIONS = ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0", "2.0.0", "2.1.0", "2.2.0"]
TARGET_MS = 300


def seed(schools: int, reports: int) -> None:
    from django.db import connection
    from django.utils import timezone

    from vendor_server.models import Release, School, hash_api_key

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
                channel="beta" if i % 10 == 0 else "stable",
                last_seen=now - timedelta(hours=rng.randint(0, 24 * 20)),
            )
            for i in range(schools)
        ],
        batch_size=5000,
    )
    school_ids = list(School.objects.values_list("id", flat=True))
    outcomes = ["succeeded"] * 17 + ["failed"] * 2 + ["rolled_back"]
    columns = (
        "school_id, release_id, product, run_id, from_version, to_version, outcome, "
        "kind, duration_seconds, error_code, log_excerpt, counted, received_at, "
        "received_on"
    )
    with (
        connection.cursor() as cursor,
        cursor.copy(f"COPY vendor_server_updatereport ({columns}) FROM STDIN") as copy,
    ):
        for i in range(reports):
            to_version = rng.choice(VERSIONS[1:])
            received_at = now - timedelta(minutes=rng.randint(0, 60 * 24 * 45))
            copy.write_row(
                (
                    rng.choice(school_ids),
                    by_version[to_version].pk,
                    "clms",
                    i,
                    "1.0.0",
                    to_version,
                    rng.choice(outcomes),
                    "update",
                    rng.randint(30, 900),
                    "",
                    "",
                    True,
                    received_at,
                    received_at.date(),
                )
            )
    from vendor_server.reporting import rebuild_tallies

    rebuild_tallies()  # what record_report keeps, for reports loaded in bulk
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def parts(stale_days: int) -> None:
    """Each query of the page on its own, so the note can say what dominates."""
    from django.conf import settings
    from django.utils import timezone

    from vendor_server import analytics

    now = timezone.now()
    for name, part in (
        ("schools per version", analytics.schools_per_version),
        ("outcome rates", analytics.outcome_rates),
        ("agent versions", lambda: analytics.schools_per_version("agent_version")),
        ("agent rates", lambda: analytics.outcome_rates(settings.VENDOR_AGENT_PRODUCT)),
        ("adoption", lambda: analytics.adoption(now)),
        ("past critical deadline", lambda: analytics.past_critical_deadline(now)),
        ("not seen", lambda: analytics.not_seen(now, stale_days)),
    ):
        took = []
        for _ in range(3):
            began = time.perf_counter()
            part()
            took.append((time.perf_counter() - began) * 1000)
        print(f"  {name}: {statistics.median(took):.0f} ms")


def rollout_phase(schools: int) -> None:
    """Pause and resume a staged rollout; serve every school its index after each."""
    from django.conf import settings

    from clms_updates.actions import Actor
    from conftest import generate_signing_key
    from vendor_server import actions, indexing
    from vendor_server.models import Release, School, SignedIndex
    from vendor_server.releases import sign_release

    home = Path(tempfile.mkdtemp(prefix="gpg-", dir="/tmp"))
    home.chmod(0o700)
    settings.VENDOR_GNUPG_HOME = home
    settings.VENDOR_SIGNING_KEY = generate_signing_key(home)
    staged = Release.objects.get(version="2.2.0")
    for release in Release.objects.all():
        sign_release(release)
        release.save()
    staged.refresh_from_db()
    actions.set_rollout_percent(staged.pk, 25, actor=Actor.system())
    owners = list(School.objects.values_list("api_key_hash", "channel"))
    staff = Actor.system()

    def serve_everyone(form: int) -> tuple[int, float]:
        indexing.forget_local_caches()
        sequence = indexing.current_sequence()
        began = time.perf_counter()
        for token, channel in owners:
            if form == 2:
                indexing.signed_channel_index(channel)
            else:
                indexing.signed_index_for(token, channel)
        took = time.perf_counter() - began
        return SignedIndex.objects.filter(sequence=sequence).count(), took

    for label, change in (
        (
            "pause",
            lambda: actions.pause_release(staged.pk, actor=staff, reason="bench"),
        ),
        ("resume", lambda: actions.resume_release(staged.pk, actor=staff)),
        (
            "rollout 25% -> 50%",
            lambda: actions.set_rollout_percent(staged.pk, 50, actor=staff),
        ),
    ):
        began = time.perf_counter()
        change()
        changed_ms = (time.perf_counter() - began) * 1000
        documents, took = serve_everyone(2)
        print(f"{label}: the change took {changed_ms:.0f} ms; serving {schools:,} schools "
              f"their channel index (format 2) needed {documents} signed document(s) "
              f"and took {took:.1f} s ({took / schools * 1e6:.0f} µs a school)")  # fmt: skip
        before = SignedIndex.objects.count()
        _, took = serve_everyone(1)
        views = SignedIndex.objects.count() - before
        print(f"  older agents (format 1, a view per visible set): {views} more signed "
              f"document(s), {took:.1f} s")  # fmt: skip
    shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--full", action="store_true", help="100,000 schools, 2,000,000 reports"
    )
    parser.add_argument("--renders", type=int, default=7)
    parser.add_argument(
        "--rollout", action="store_true", help="also pause/resume a staged rollout"
    )
    args = parser.parse_args()
    schools, reports = (100_000, 2_000_000) if args.full else (10_000, 200_000)
    if args.rollout and not shutil.which("gpg"):
        print("cannot run --rollout: gpg is not installed (apt-get install gnupg)")
        return

    work = Path(tempfile.mkdtemp(prefix="vabench-", dir="/tmp"))
    work.chmod(0o755)  # PostgreSQL runs as its own user when this runs as root
    os.environ["CLMS_VAR_DIR"] = str(work / "var")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clms_updates.settings")
    started_services = local.for_bench(work)
    if started_services is None:
        return
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
        parts(settings.VENDOR_STALE_DAYS)
        if args.rollout:
            rollout_phase(schools)
    finally:
        for service in started_services:
            service.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
