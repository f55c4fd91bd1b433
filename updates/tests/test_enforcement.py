"""Critical deadlines: warnings, the automatic schedule, the block, overrides."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from clms_updates.actions import VIA_PAGE, ActionRefused, Actor
from clms_updates.models import AuditEntry
from updates import actions, enforcement
from updates.enforcement import deadlines
from updates.enforcement.tasks import record_expired_overrides_at_start
from updates.models import (
    AgentState,
    DeadlineWarning,
    EmergencyOverride,
    MaintenanceWindow,
    UpdateRun,
)
from updates.tests.factories import make_release

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _installed_1_0_0(settings):  # type: ignore[no-untyped-def]
    settings.ADMIN_EMAILS = ["it@school.example"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.UPDATES_CRITICAL_WARNING_HOURS = [168, 24, 1]
    settings.UPDATES_OVERRIDE_MAX_HOURS = 24
    settings.UPDATES_ENFORCEMENT_TOKEN = ""
    AgentState.load()
    AgentState.record_installed("1.0.0")


def critical(version: str = "1.0.2", *, in_hours: float) -> object:
    return make_release(
        version,
        critical=True,
        force_after=timezone.now() + timedelta(hours=in_hours),
    )


def person(user: object) -> Actor:
    return Actor(user=user, via=VIA_PAGE)


def every_day_window(start: int = 22, end: int = 5) -> MaintenanceWindow:
    return MaintenanceWindow.objects.create(
        weekdays=list(range(7)), start=time(start), end=time(end)
    )


# -- state ------------------------------------------------------------------


def test_no_critical_release_means_not_blocked():
    make_release("1.1.0")
    state = enforcement.enforcement_state()
    assert not state.pending
    assert not state.blocked


def test_before_the_deadline_it_counts_down_and_does_not_block():
    critical(in_hours=48)
    state = enforcement.enforcement_state()
    assert state.pending and not state.blocked
    assert 47 * 3600 < (state.seconds_left or 0) <= 48 * 3600
    assert "must be installed by" in state.message


def test_after_the_deadline_the_installation_is_blocked():
    critical(in_hours=-1)
    state = enforcement.enforcement_state()
    assert state.blocked
    assert state.as_dict()["blocked"] is True
    assert "blocked" in state.message and "1.0.2" in state.message


def test_installing_the_critical_version_lifts_the_block_at_once():
    critical(in_hours=-1)
    assert enforcement.is_blocked()
    AgentState.record_installed("1.0.2")
    assert not enforcement.is_blocked()


def test_a_later_version_than_the_critical_one_also_lifts_it():
    critical(in_hours=-1)
    AgentState.record_installed("1.1.0")
    assert not enforcement.is_blocked()


def test_the_earliest_deadline_counts_when_two_critical_releases_wait():
    critical("1.0.2", in_hours=-2)
    critical("1.0.3", in_hours=10)
    assert enforcement.pending_critical_release().version == "1.0.2"  # type: ignore[union-attr]


# -- overrides --------------------------------------------------------------


def test_an_admin_override_lifts_the_block_until_it_expires(school_admin):
    critical(in_hours=-1)
    now = timezone.now()
    override = actions.grant_override(
        actor=person(school_admin),
        reason="Exams today, update tonight",
        hours=2,
        now=now,
    )
    assert not enforcement.is_blocked(now + timedelta(minutes=1))
    assert enforcement.is_blocked(now + timedelta(hours=2, minutes=1))
    entry = AuditEntry.objects.get(action="updates.override.granted")
    assert entry.detail["reason"] == "Exams today, update tonight"
    assert entry.username == school_admin.username
    assert override.expires_at == now + timedelta(hours=2)


def test_a_viewer_cannot_grant_an_override(school_viewer):
    critical(in_hours=-1)
    with pytest.raises(ActionRefused, match="Only a school admin"):
        actions.grant_override(
            actor=person(school_viewer), reason="please please", hours=1
        )
    assert not EmergencyOverride.objects.exists()


def test_an_override_needs_a_reason(school_admin):
    critical(in_hours=-1)
    with pytest.raises(ActionRefused, match="reason"):
        actions.grant_override(actor=person(school_admin), reason="  ", hours=1)


def test_an_override_longer_than_the_maximum_is_refused(school_admin, settings):
    settings.UPDATES_OVERRIDE_MAX_HOURS = 12
    critical(in_hours=-1)
    with pytest.raises(ActionRefused, match="at most 12 hours"):
        actions.grant_override(
            actor=person(school_admin), reason="long weekend", hours=13
        )


def test_an_override_before_the_deadline_is_refused(school_admin):
    critical(in_hours=5)
    with pytest.raises(ActionRefused, match="Nothing is blocked"):
        actions.grant_override(
            actor=person(school_admin), reason="just in case", hours=1
        )


def test_a_revoked_override_blocks_again_and_is_audited(school_admin):
    critical(in_hours=-1)
    override = actions.grant_override(
        actor=person(school_admin), reason="Exams today", hours=4
    )
    actions.revoke_override(override.pk, actor=person(school_admin))
    assert enforcement.is_blocked()
    assert AuditEntry.objects.filter(action="updates.override.revoked").count() == 1


def test_expired_overrides_are_audited_once_at_worker_start(school_admin):
    critical(in_hours=-5)
    now = timezone.now()
    actions.grant_override(
        actor=person(school_admin),
        reason="Exams today",
        hours=1,
        now=now - timedelta(hours=2),
    )
    record_expired_overrides_at_start()
    record_expired_overrides_at_start()
    assert AuditEntry.objects.filter(action="updates.override.expired").count() == 1
    assert EmergencyOverride.objects.get().expiry_recorded_at is not None


# -- warnings -----------------------------------------------------------------


def test_warnings_go_out_at_seven_days_one_day_and_one_hour_once_each():
    release = critical(in_hours=24 * 8)
    deadline = release.force_after  # type: ignore[attr-defined]
    sent: list[int] = []
    for hours_before in (24 * 7 + 1, 24 * 7 - 1, 24 * 6, 23, 22, 0.5, 0.25):
        sent += deadlines.send_deadline_warnings(
            deadline - timedelta(hours=hours_before)
        )
    assert sent == [168, 24, 1]
    assert len(mail.outbox) == 3
    assert "1.0.2" in mail.outbox[0].subject
    assert "7 days" in mail.outbox[0].subject


def test_a_release_found_late_gets_one_warning_not_three():
    critical(in_hours=20)
    assert deadlines.send_deadline_warnings() == [24]
    assert deadlines.send_deadline_warnings() == []
    assert len(mail.outbox) == 1
    skipped = DeadlineWarning.objects.filter(skipped=True).values_list(
        "hours_before", flat=True
    )
    assert list(skipped) == [168]


# -- the automatic schedule ---------------------------------------------------


def test_the_update_is_scheduled_into_the_last_window_before_the_deadline():
    every_day_window(22, 5)
    release = critical(in_hours=24 * 4)
    run = actions.plan_critical_update()
    assert run is not None
    assert run.to_version == "1.0.2"
    deadline = release.force_after  # type: ignore[attr-defined]
    assert run.scheduled_for < deadline
    # The last window start before the deadline: less than a day before it.
    assert deadline - run.scheduled_for < timedelta(days=1)
    assert AuditEntry.objects.filter(action="updates.critical.scheduled").exists()


def test_an_admins_earlier_schedule_is_kept():
    every_day_window()
    critical(in_hours=24 * 4)
    first = actions.plan_critical_update()
    assert first is not None
    assert actions.plan_critical_update() is None
    assert UpdateRun.objects.count() == 1


def test_without_a_window_before_the_deadline_it_is_forced_an_hour_before():
    release = critical(in_hours=10)
    run = actions.plan_critical_update()
    assert run is not None and run.forced
    assert run.scheduled_for == release.force_after - timedelta(hours=1)  # type: ignore[attr-defined]


def test_the_tick_plans_warns_and_expires_in_one_pass():
    every_day_window()
    critical(in_hours=20)
    result = actions.enforcement_tick()
    assert result["scheduled_run"] is not None
    assert result["warnings"] == [24]


# -- middleware, API and pages ------------------------------------------------


def test_the_api_answers_423_while_blocked_except_update_backup_and_status_routes(
    admin_api,
):
    critical(in_hours=-1)
    blocked = admin_api.get("/api/some-clms-operation")
    assert blocked.status_code == 423
    assert blocked.json()["code"] == "blocked"
    assert "1.0.2" in blocked.json()["detail"]
    assert admin_api.get("/api/updates/checks").status_code == 200
    assert admin_api.get("/api/updates/enforcement").status_code == 200
    assert admin_api.get("/api/backups/").status_code != 423
    assert Client().get("/healthz").status_code != 423


def test_pages_other_than_updates_and_backups_show_the_blocking_dialog(school_admin):
    critical(in_hours=-1)
    client = Client()
    client.force_login(school_admin)
    home = client.get("/")
    assert home.status_code == 423
    assert b'data-testid="blocking-dialog"' in home.content
    assert client.get("/updates/enforcement/").status_code == 200


@pytest.mark.parametrize("path", ["/", "/no-such-page/", "/favicon.ico"])
def test_while_blocked_a_visitor_who_is_not_logged_in_gets_a_page_not_a_500(
    path: str,
) -> None:
    critical(in_hours=-1)
    answer = Client().get(path)
    assert answer.status_code < 500, answer.content[:500]
    if answer.status_code == 423:
        assert b'data-testid="blocking-dialog"' in answer.content


def test_nothing_is_blocked_before_the_deadline(admin_api):
    critical(in_hours=3)
    assert admin_api.get("/api/some-clms-operation").status_code == 404


def test_the_enforcement_endpoint_is_public_when_no_token_is_set():
    critical(in_hours=-1)
    answer = Client().get("/api/updates/enforcement")
    assert answer.status_code == 200
    assert answer.json()["blocked"] is True
    assert answer.json()["critical_version"] == "1.0.2"


def test_the_enforcement_endpoint_needs_the_token_when_one_is_set(settings):
    settings.UPDATES_ENFORCEMENT_TOKEN = "s3cret-token"
    critical(in_hours=-1)
    assert Client().get("/api/updates/enforcement").status_code in (401, 403)
    by_query = Client().get("/api/updates/enforcement?token=s3cret-token")
    assert by_query.json()["blocked"] is True
    by_header = Client().get(
        "/api/updates/enforcement", HTTP_AUTHORIZATION="Bearer s3cret-token"
    )
    assert by_header.status_code == 200


def test_overrides_through_the_api_are_for_admins_with_a_reason(admin_api, viewer_api):
    critical(in_hours=-1)
    assert (
        viewer_api.post(
            "/api/updates/enforcement/overrides", {"reason": "please", "hours": 1}
        ).status_code
        == 403
    )
    no_reason = admin_api.post("/api/updates/enforcement/overrides", {"hours": 1})
    assert no_reason.status_code == 400
    too_long = admin_api.post(
        "/api/updates/enforcement/overrides", {"reason": "exam week", "hours": 48}
    )
    assert too_long.status_code == 400
    granted = admin_api.post(
        "/api/updates/enforcement/overrides", {"reason": "exam week", "hours": 3}
    )
    assert granted.status_code == 201
    assert granted.json()["active"] is True
    assert admin_api.get("/api/some-clms-operation").status_code == 404
    listed = viewer_api.get("/api/updates/enforcement/overrides").json()
    assert listed[0]["expires_at"] == granted.json()["expires_at"]


def test_the_override_page_grants_and_lists_with_the_expiry(school_admin):
    critical(in_hours=-1)
    client = Client()
    client.force_login(school_admin)
    answer = client.post(
        "/updates/enforcement/", {"reason": "Library open day", "hours": "2"}
    )
    assert answer.status_code == 302
    page = client.get("/updates/enforcement/")
    assert b"Library open day" in page.content
    assert b"In force" in page.content
    assert client.get("/").status_code != 423


def test_the_banner_template_shows_the_override_and_its_expiry(school_admin, rf):
    from django.template.loader import render_to_string

    from updates.context_processors import enforcement as enforcement_context

    critical(in_hours=-1)
    actions.grant_override(
        actor=person(school_admin), reason="Open day at school", hours=2
    )
    request = rf.get("/updates/")
    request.user = school_admin
    html = render_to_string(
        "updates/enforcement/banner.html", enforcement_context(request), request
    )
    assert 'data-testid="override-banner"' in html
    assert "Open day at school" in html
    assert "Emergency override in force" in html


def test_the_banner_template_says_blocked_without_covering_the_page(school_admin, rf):
    from django.template.loader import render_to_string

    from updates.context_processors import enforcement as enforcement_context

    critical(in_hours=-1)
    request = rf.get("/updates/")
    request.user = school_admin
    html = render_to_string(
        "updates/enforcement/banner.html", enforcement_context(request), request
    )
    assert 'data-testid="blocked-banner"' in html
    assert "alertdialog" not in html


def test_an_admin_moves_the_critical_update_earlier_before_the_deadline(admin_api):
    every_day_window()
    release = critical(in_hours=24 * 4)
    planned = actions.plan_critical_update()
    assert planned is not None
    earlier = (timezone.now() + timedelta(hours=2)).replace(microsecond=0)
    moved = admin_api.post(
        "/api/updates/enforcement/move", {"at": earlier.isoformat()}, format="json"
    )
    assert moved.status_code == 200, moved.content
    planned.refresh_from_db()
    assert planned.state == UpdateRun.State.CANCELLED
    run = UpdateRun.objects.get(pk=moved.json()["run_id"])
    assert run.scheduled_for == earlier
    assert actions.plan_critical_update() is None
    too_late = release.force_after + timedelta(hours=1)  # type: ignore[attr-defined]
    refused = admin_api.post(
        "/api/updates/enforcement/move", {"at": too_late.isoformat()}, format="json"
    )
    # The same rule (and answer) as a schedule after the deadline: a bad time.
    assert refused.status_code == 400
    assert refused.json()["code"] == "after_deadline"
    assert "until the deadline" in refused.json()["detail"]


def test_the_page_moves_the_critical_update_in_school_time(school_admin, settings):
    from updates import scheduling

    settings.UPDATES_SCHOOL_TIME_ZONE = "Europe/London"
    every_day_window()
    critical(in_hours=24 * 4)
    actions.plan_critical_update()
    client = Client()
    client.force_login(school_admin)
    local = (timezone.now() + timedelta(hours=3)).astimezone(scheduling.school_zone())
    answer = client.post(
        "/updates/enforcement/move/", {"at": local.strftime("%Y-%m-%dT%H:%M")}
    )
    assert answer.status_code == 302
    run = UpdateRun.objects.get(state=UpdateRun.State.SCHEDULED)
    assert run.scheduled_for == local.replace(second=0, microsecond=0)
    assert b"Move the update earlier" in client.get("/updates/enforcement/").content
