"""Staged rollouts: stable buckets, critical skips staging, auto-pause."""

from __future__ import annotations

import pytest
from django.core import mail

from vendor_server import actions, indexing
from vendor_server.models import Release
from vendor_server.rollouts import ListedRelease, bucket, is_visible
from vendor_server.tests.conftest import FAKE_IMAGE
from vendor_server.tests.factories import make_release, make_school


def test_buckets_are_stable_and_spread_within_3_points_over_10000_schools() -> None:
    assert [bucket(42, 7) for _ in range(3)] == [bucket(42, 7)] * 3
    for release_id in (1, 2, 99):
        for percent in (5, 10, 25, 50, 90):
            release = ListedRelease(release_id, "stable", False, percent)
            shown = sum(
                is_visible(release, school_id, "stable")
                for school_id in range(1, 10_001)
            )
            assert abs(shown / 100 - percent) <= 3, (release_id, percent, shown)


def test_a_critical_release_skips_staging_and_beta_stays_with_beta_schools() -> None:
    critical = ListedRelease(1, "stable", True, 0)
    assert all(is_visible(critical, school_id, "stable") for school_id in range(1, 500))
    beta = ListedRelease(2, "beta", False, 100)
    assert not is_visible(beta, 1, "stable")
    assert is_visible(beta, 1, "beta")
    assert is_visible(ListedRelease(3, "stable", False, 100), 1, "beta")


def report(school_id: int, outcome: str) -> None:
    actions.record_report(
        school_id,
        {
            "run_id": 1,
            "from_version": "1.0.0",
            "to_version": "1.1.0",
            "outcome": outcome,
            "duration_seconds": 10,
            "error_code": "health" if outcome != "succeeded" else "",
            "log_excerpt": "",
        },
    )


@pytest.mark.django_db
@pytest.mark.services
def test_a_rollout_pauses_itself_at_the_failure_threshold_and_emails_staff(
    offline, settings, django_capture_on_commit_callbacks
) -> None:
    settings.VENDOR_STAFF_EMAILS = ["releases@vendor.example"]
    release = make_release("1.1.0", FAKE_IMAGE)
    school, _ = make_school()
    for outcome in ("succeeded", "succeeded", "succeeded", "failed"):
        report(school.id, outcome)
    assert not Release.objects.get().is_paused  # 4 reports: below the minimum of 5
    sequence = indexing.current_sequence()
    with django_capture_on_commit_callbacks(execute=True):
        report(school.id, "rolled_back")  # 2 of 5 = 40%
    release.refresh_from_db()
    assert release.is_paused
    assert "2 of 5 reports failed" in release.pause_reason
    assert indexing.current_sequence() == sequence + 1
    assert indexing.visible_release_ids(school.id, "stable", sequence + 1) == []
    assert len(mail.outbox) == 1
    assert "1.1.0" in mail.outbox[0].subject
    assert mail.outbox[0].to == ["releases@vendor.example"]


@pytest.mark.django_db
@pytest.mark.services
def test_a_healthy_rollout_is_not_paused(offline) -> None:
    make_release("1.1.0", FAKE_IMAGE)
    school, _ = make_school()
    for outcome in ["succeeded"] * 9 + ["failed"]:
        report(school.id, outcome)
    assert not Release.objects.get().is_paused
