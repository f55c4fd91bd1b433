"""Staged rollouts: stable buckets, critical skips staging, auto-pause."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from clms_updates.manifest import rollout_bucket, school_token
from clms_updates.models import AuditEntry
from vendor_server import actions, indexing
from vendor_server.models import Release, School, UpdateReport
from vendor_server.rollouts import ListedRelease, is_visible
from vendor_server.tests.conftest import FAKE_IMAGE
from vendor_server.tests.factories import make_release, make_school

TOKENS = [school_token(f"key-{n}") for n in range(10_000)]


def release(pk: int, channel: str, critical: bool, percent: int) -> ListedRelease:
    return ListedRelease(pk, channel, critical, percent, "clms", f"1.{pk}.0")


def test_buckets_are_stable_and_spread_within_3_points_over_10000_schools() -> None:
    first = rollout_bucket(TOKENS[0], "clms", "1.2.0")
    assert [rollout_bucket(TOKENS[0], "clms", "1.2.0") for _ in range(3)] == [first] * 3
    for pk in (1, 2, 99):
        for percent in (5, 10, 25, 50, 90):
            shown = sum(
                is_visible(release(pk, "stable", False, percent), token, "stable")
                for token in TOKENS
            )
            assert abs(shown / 100 - percent) <= 3, (pk, percent, shown)


def test_a_critical_release_skips_staging_and_beta_stays_with_beta_schools() -> None:
    critical = release(1, "stable", True, 0)
    assert all(is_visible(critical, token, "stable") for token in TOKENS[:500])
    beta = release(2, "beta", False, 100)
    assert not is_visible(beta, TOKENS[0], "stable")
    assert is_visible(beta, TOKENS[0], "beta")
    assert is_visible(release(3, "stable", False, 100), TOKENS[0], "beta")


def report(
    school_id: int, outcome: str, run_id: int = 1, version: str = "1.1.0"
) -> None:
    actions.record_report(
        school_id,
        {
            "run_id": run_id,
            "from_version": "1.0.0",
            "to_version": version,
            "outcome": outcome,
            "duration_seconds": 10,
            "error_code": "health" if outcome != "succeeded" else "",
            "log_excerpt": "",
        },
    )


def schools(n: int) -> list[int]:
    return [make_school()[0].id for _ in range(n)]


def token_of(school_id: int) -> str:
    return School.objects.get(pk=school_id).api_key_hash


@pytest.mark.django_db
@pytest.mark.services
def test_a_rollout_pauses_itself_at_the_failure_threshold_and_emails_staff(
    offline, settings, django_capture_on_commit_callbacks
) -> None:
    settings.VENDOR_STAFF_EMAILS = ["releases@vendor.example"]
    release = make_release("1.1.0", FAKE_IMAGE)
    fleet = schools(5)
    for school_id, outcome in zip(
        fleet, ("succeeded", "succeeded", "succeeded", "failed"), strict=False
    ):
        report(school_id, outcome)
    assert not Release.objects.get().is_paused  # 4 schools: below the minimum of 5
    sequence = indexing.current_sequence()
    with django_capture_on_commit_callbacks(execute=True):
        report(fleet[4], "rolled_back")  # 2 of 5 schools = 40%
    release.refresh_from_db()
    assert release.is_paused
    assert "2 of 5 schools that reported it failed" in release.pause_reason
    assert indexing.current_sequence() == sequence + 1
    assert (
        indexing.visible_release_ids(token_of(fleet[0]), "stable", sequence + 1) == []
    )
    assert len(mail.outbox) == 1
    assert "1.1.0" in mail.outbox[0].subject
    assert mail.outbox[0].to == ["releases@vendor.example"]


@pytest.mark.django_db
@pytest.mark.services
def test_a_healthy_rollout_is_not_paused(offline) -> None:
    make_release("1.1.0", FAKE_IMAGE)
    for school_id, outcome in zip(
        schools(10), ["succeeded"] * 9 + ["failed"], strict=True
    ):
        report(school_id, outcome)
    assert not Release.objects.get().is_paused


@pytest.mark.django_db
@pytest.mark.services
def test_one_school_can_never_pause_a_rollout_however_often_it_reports(
    offline,
) -> None:
    make_release("1.1.0", FAKE_IMAGE)
    (hostile,) = schools(1)
    for run_id in range(1, 51):  # fifty runs, each failed, each reported twice
        report(hostile, "failed", run_id=run_id)
        report(hostile, "failed", run_id=run_id)
    assert not Release.objects.get().is_paused
    assert UpdateReport.objects.count() == 50  # one report per run


@pytest.mark.django_db
@pytest.mark.services
def test_the_same_run_reported_again_is_one_report_with_the_last_outcome(
    offline,
) -> None:
    make_release("1.1.0", FAKE_IMAGE)
    (school_id,) = schools(1)
    report(school_id, "failed", run_id=7)
    report(school_id, "rolled_back", run_id=7)
    assert list(UpdateReport.objects.values_list("run_id", "outcome")) == [
        (7, "rolled_back")
    ]


@pytest.mark.django_db
@pytest.mark.services
def test_reports_about_a_release_the_school_cannot_see_do_not_count(
    offline,
) -> None:
    release = make_release("1.1.0", FAKE_IMAGE, rollout_percent=10)
    fleet = schools(60)
    outside = [
        s for s in fleet if rollout_bucket(token_of(s), "clms", release.version) >= 10
    ][:6]
    assert len(outside) == 6
    for school_id in outside:
        report(school_id, "failed")
    release.refresh_from_db()
    assert not release.is_paused
    assert not UpdateReport.objects.filter(counted=True).exists()
    assert UpdateReport.objects.filter(release=release).count() == 6  # kept, unweighed


@pytest.mark.django_db
@pytest.mark.services
def test_a_critical_release_is_never_paused_by_reports_staff_are_told_once(
    offline, settings, django_capture_on_commit_callbacks
) -> None:
    settings.VENDOR_STAFF_EMAILS = ["releases@vendor.example"]
    release = make_release(
        "1.1.0",
        FAKE_IMAGE,
        critical=True,
        force_after=timezone.now() + timedelta(days=3),
    )
    with django_capture_on_commit_callbacks(execute=True):
        for school_id in schools(8):
            report(school_id, "failed")
    release.refresh_from_db()
    assert not release.is_paused
    assert release.enabled
    assert release.failure_alerted_at is not None
    assert len(mail.outbox) == 1
    assert "critical release 1.1.0 is failing" in mail.outbox[0].subject
    assert "Not paused, because 1.1.0 is critical" in mail.outbox[0].body
    assert AuditEntry.objects.filter(action="vendor.release.failing").count() == 1


@pytest.mark.django_db
@pytest.mark.services
def test_the_day_tallies_follow_every_report_and_a_report_sent_again(
    offline,
) -> None:
    """The analytics read tallies kept with each report; they must equal a recount."""
    from vendor_server import analytics
    from vendor_server.models import ReportTally
    from vendor_server.reporting import rebuild_tallies

    make_release("1.1.0", FAKE_IMAGE)
    fleet = schools(3)
    report(fleet[0], "failed", run_id=1)
    report(fleet[0], "succeeded", run_id=1)  # the same run, retried: it moves
    report(fleet[1], "rolled_back", run_id=1)
    report(fleet[2], "succeeded", run_id=1)
    kept = sorted(
        ReportTally.objects.filter(count__gt=0).values_list(
            "version", "kind", "outcome", "count"
        )
    )
    assert kept == [
        ("1.1.0", "update", "rolled_back", 1),
        ("1.1.0", "update", "succeeded", 2),
    ]
    (rates,) = analytics.outcome_rates()
    assert (rates.succeeded, rates.failed, rates.rolled_back) == (2, 0, 1)
    rebuild_tallies()
    assert (
        sorted(
            ReportTally.objects.filter(count__gt=0).values_list(
                "version", "kind", "outcome", "count"
            )
        )
        == kept
    )
