"""The vendor admin as staff, and refused to everyone else."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client
from django.utils import timezone

from vendor_server import indexing
from vendor_server.models import Release, School, hash_api_key
from vendor_server.tests.conftest import FAKE_IMAGE
from vendor_server.tests.factories import make_release, make_school

pytestmark = [pytest.mark.django_db, pytest.mark.services]

RELEASES = "/admin/vendor_server/release/"
SCHOOLS = "/admin/vendor_server/school/"


@pytest.fixture
def staff(vendor_staff) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(vendor_staff)
    return client


@pytest.fixture
def non_staff(outsider) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(outsider)
    return client


def publish_form(version: str, image: str, **extra: str) -> dict[str, str]:
    return {
        "version": version,
        "channel": "stable",
        "changelog": "## Fixed\n* <script>alert(1)</script> the login",
        "rollout_percent": "100",
        "images_text": f"web={image}",
        "health_path": "/health",
        "health_expected_status": "200",
        "health_successes": "3",
        "health_timeout_seconds": "60",
        **extra,
    }


def run_action(client: Client, url: str, action: str, *ids: int, **extra: str):  # type: ignore[no-untyped-def]
    return client.post(
        url,
        {"action": action, ACTION_CHECKBOX_NAME: [str(i) for i in ids], **extra},
        follow=True,
    )


def test_staff_publish_a_release_from_the_form(staff, vendor_key, image) -> None:
    assert staff.get(RELEASES + "add/").status_code == 200
    answer = staff.post(RELEASES + "add/", publish_form("1.3.0", image), follow=True)
    assert answer.status_code == 200
    release = Release.objects.get()
    assert release.version == "1.3.0"
    assert release.published_by == "vendor-staff-user"
    page = staff.get(f"{RELEASES}{release.pk}/change/").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "<h2>Fixed</h2>" in page


def test_the_form_shows_why_a_release_was_refused(
    staff, vendor_key, registry_address
) -> None:
    missing = f"{registry_address}/clms/web@sha256:{'c' * 64}"
    answer = staff.post(RELEASES + "add/", publish_form("1.3.0", missing))
    assert answer.status_code == 200
    assert "is not in the registry" in answer.content.decode()
    tagged = staff.post(RELEASES + "add/", publish_form("1.3.0", "clms/web:latest"))
    assert "by tag" in tagged.content.decode()
    assert Release.objects.count() == 0


def test_staff_disable_enable_and_resign_with_actions(staff, offline) -> None:
    release = make_release("1.0.0", FAKE_IMAGE)
    before = indexing.current_sequence()
    run_action(staff, RELEASES, "disable", release.pk)
    release.refresh_from_db()
    assert not release.enabled
    run_action(staff, RELEASES, "enable", release.pk)
    old_signed_at = release.signed_at
    run_action(staff, RELEASES, "resign", release.pk)
    release.refresh_from_db()
    assert release.enabled
    assert release.signed_at > old_signed_at
    assert indexing.current_sequence() == before + 3


def test_mark_critical_asks_for_a_deadline_then_applies_it(staff, offline) -> None:
    release = make_release("1.0.0", FAKE_IMAGE, rollout_percent=10)
    form = run_action(staff, RELEASES, "mark_critical", release.pk)
    assert "Deadline" in form.content.decode()
    past = run_action(
        staff,
        RELEASES,
        "mark_critical",
        release.pk,
        apply="1",
        force_after="2001-01-01 00:00",
    )
    assert "in the past" in past.content.decode()
    deadline = (timezone.now() + timedelta(days=2)).strftime("%Y-%m-%d %H:%M")
    run_action(
        staff, RELEASES, "mark_critical", release.pk, apply="1", force_after=deadline
    )
    release.refresh_from_db()
    assert release.critical
    assert '"critical":true' in release.manifest_json


def test_delete_is_refused_once_a_school_installed_the_release(staff, offline) -> None:
    from vendor_server.tests.test_rollouts import report

    installed = make_release("1.1.0", FAKE_IMAGE)
    unused = make_release("1.2.0", FAKE_IMAGE)
    school, _ = make_school()
    report(school.id, "succeeded")
    answer = run_action(staff, RELEASES, "delete_unused", installed.pk, unused.pk)
    assert "disable it instead" in answer.content.decode()
    assert list(Release.objects.values_list("version", flat=True)) == ["1.1.0"]
    single = staff.post(
        f"{RELEASES}{installed.pk}/delete/", {"post": "yes"}, follow=True
    )
    assert "disable it instead" in single.content.decode()
    assert Release.objects.filter(pk=installed.pk).exists()


def test_a_new_school_shows_its_key_once_and_stores_only_the_hash(staff) -> None:
    answer = staff.post(
        SCHOOLS + "add/",
        {"name": "Hill School", "time_zone": "Europe/Berlin", "channel": "stable"},
        follow=True,
    )
    page = answer.content.decode()
    school = School.objects.get()
    key = page.split("<code>")[1].split("</code>")[0]
    assert school.api_key_hash == hash_api_key(key)
    assert key not in staff.get(f"{SCHOOLS}{school.pk}/change/").content.decode()
    bad_zone = staff.post(
        SCHOOLS + "add/", {"name": "X", "time_zone": "Mars/Base", "channel": "stable"}
    )
    assert "not an IANA time zone" in bad_zone.content.decode()


def test_moving_a_school_to_another_channel_gives_its_index_a_new_sequence(
    staff,
) -> None:
    """Agents refuse other bytes under a sequence they saw (equivocation)."""
    school, _ = make_school()
    before = indexing.current_sequence()
    answer = staff.post(
        f"{SCHOOLS}{school.pk}/change/",
        {"name": school.name, "time_zone": "UTC", "channel": "beta"},
    )
    assert answer.status_code == 302, answer.content.decode()[:500]
    school.refresh_from_db()
    assert school.channel == "beta"
    indexing.forget_local_caches()
    assert indexing.current_sequence() == before + 1
    renamed = staff.post(
        f"{SCHOOLS}{school.pk}/change/",
        {"name": "Renamed", "time_zone": "UTC", "channel": "beta"},
    )
    assert renamed.status_code == 302
    indexing.forget_local_caches()
    assert indexing.current_sequence() == before + 1  # what it sees did not change


def test_staff_rotate_and_revoke_school_keys(staff) -> None:
    school, key = make_school()
    answer = run_action(staff, SCHOOLS, "rotate_key", school.pk)
    school.refresh_from_db()
    assert school.api_key_hash != hash_api_key(key)
    assert "shown only once" in answer.content.decode()
    run_action(staff, SCHOOLS, "revoke", school.pk)
    school.refresh_from_db()
    assert school.is_revoked


def test_non_staff_cannot_reach_the_vendor_admin_or_analytics(
    non_staff, offline
) -> None:
    release = make_release("1.0.0", FAKE_IMAGE)
    for url in (RELEASES, RELEASES + "add/", SCHOOLS, "/vendor/analytics/"):
        answer = non_staff.get(url)
        assert answer.status_code == 302, url
        assert "login" in answer["Location"]
    run_action(non_staff, RELEASES, "disable", release.pk)
    release.refresh_from_db()
    assert release.enabled


def test_the_analytics_page_is_linked_from_the_admin_and_shows_the_fleet(
    staff, offline
) -> None:
    from vendor_server.tests.test_rollouts import report

    make_release("1.1.0", FAKE_IMAGE)
    make_release(
        "1.2.0",
        FAKE_IMAGE,
        critical=True,
        force_after=timezone.now() + timedelta(hours=1),
    )
    Release.objects.filter(version="1.2.0").update(
        force_after=timezone.now() - timedelta(hours=1)
    )
    school, _ = make_school()
    report(school.id, "succeeded")
    report(school.id, "failed", run_id=2)
    index = staff.get("/admin/").content.decode()
    assert "/admin/vendor_server/fleetanalytics/" in index
    assert (
        staff.get("/admin/vendor_server/fleetanalytics/")["Location"]
        == "/vendor/analytics/"
    )
    page = staff.get("/vendor/analytics/")
    assert page.status_code == 200
    assert page.context["overdue_count"] == 1
    assert page.context["per_version"] == [("1.1.0", 1)]
    rates = page.context["rates"][0]
    assert (rates.version, rates.success_percent, rates.failure_percent) == (
        "1.1.0",
        50.0,
        50.0,
    )
    assert "vendor_server/chart.umd.min.js" in page.content.decode()


def test_the_release_page_reads_as_fields_with_the_signed_json_folded_away(
    staff, offline
) -> None:
    release = make_release(
        "1.4.0",
        FAKE_IMAGE,
        critical=True,
        force_after=timezone.now() + timedelta(days=3),
    )
    page = staff.get(f"{RELEASES}{release.pk}/change/").content.decode()
    assert "<summary>Show the signed manifest (JSON" in page
    assert "vendor_server/admin.css" in page  # long lines wrap
    assert "Image (pinned by digest)" in page
    assert release.force_after is not None
    assert (
        timezone.localtime(release.force_after).strftime("%Y-%m-%d %H:%M UTC") in page
    )
    # The raw JSON is only inside the folded <details>, never as a bare field.
    before_details = page.split('<details class="clms-raw">')[0]
    assert '"product": "clms"' not in before_details
    assert "Force after (UTC)" in staff.get(RELEASES + "add/").content.decode()


def test_a_manual_rollback_is_no_install_in_the_analytics_nor_in_the_rollout(
    staff, offline
) -> None:
    from vendor_server import actions, rollouts

    make_release("1.1.0", FAKE_IMAGE)
    release = make_release("1.2.0", FAKE_IMAGE)
    school, _ = make_school()
    base = {"duration_seconds": 5, "error_code": "", "log_excerpt": ""}
    actions.record_report(
        school.id,
        {
            **base,
            "run_id": 1,
            "from_version": "1.1.0",
            "to_version": "1.2.0",
            "outcome": "succeeded",
        },
    )
    actions.record_report(
        school.id,
        {
            **base,
            "run_id": 2,
            "from_version": "1.2.0",
            "to_version": "1.1.0",
            "outcome": "succeeded",
            "kind": "rollback",
        },
    )
    school.refresh_from_db()
    assert school.current_version == "1.1.0"  # it runs the older one again
    rates = {r.version: r for r in staff.get("/vendor/analytics/").context["rates"]}
    assert rates["1.2.0"].succeeded == 1 and rates["1.2.0"].left_by_hand == 1
    assert "1.1.0" not in rates or rates["1.1.0"].succeeded == 0
    assert rollouts.failure_figures(release).total == 1
