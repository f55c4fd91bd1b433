"""The school pages: what each user sees, and that every action validates and audits."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from clms_updates.models import AuditEntry
from updates import scheduling
from updates.models import (
    AgentState,
    BannerDismissal,
    MaintenanceWindow,
    UpdateCheck,
    UpdateRun,
)
from updates.tests.factories import make_release, make_run, make_weeknight_window

pytestmark = pytest.mark.django_db

# A Wednesday at noon in London (GMT): the weeknight window opens at 22:00.
NOON = datetime(2026, 12, 2, 12, 0, tzinfo=scheduling.school_zone())


def login(client: Client, user) -> Client:  # type: ignore[no-untyped-def]
    client.force_login(user)
    return client


@pytest.fixture
def admin(client, school_admin) -> Client:  # type: ignore[no-untyped-def]
    return login(client, school_admin)


@pytest.fixture
def viewer(client, school_viewer) -> Client:  # type: ignore[no-untyped-def]
    return login(client, school_viewer)


@pytest.fixture
def at_noon():  # type: ignore[no-untyped-def]
    with time_machine.travel(NOON, tick=False):
        yield


# --- who may open what ------------------------------------------------------


def test_an_anonymous_visitor_is_sent_to_log_in(client) -> None:
    response = client.get(reverse("updates:manager"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_a_user_in_no_school_group_gets_a_page_that_says_what_to_do(
    client, outsider
) -> None:
    response = login(client, outsider).get(reverse("updates:manager"))
    assert response.status_code == 403
    assert "Ask the school's IT admin to add you" in response.content.decode()


def test_school_users_land_on_the_update_manager(viewer) -> None:
    response = viewer.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"] == reverse("updates:manager")


def test_a_viewer_sees_everything_but_no_action(viewer) -> None:
    make_run(make_release("1.1.0"), scheduled_for=timezone.now() + timedelta(days=1))
    page = viewer.get(reverse("updates:manager")).content.decode()
    assert "CLMS 1.1.0 is available" in page
    assert "Check now" not in page
    assert "Update now" not in page
    assert ">Cancel<" not in page
    assert "Only a school admin can" in page


def test_a_viewer_cannot_change_anything(viewer) -> None:
    release = make_release("1.1.0")
    run = make_run(release)
    posts = [
        (reverse("updates:check"), {}),
        (reverse("updates:schedule"), {"version": "1.1.0", "when": "window"}),
        (reverse("updates:cancel", args=[run.pk]), {}),
        (reverse("updates:update_now"), {"version": "1.1.0", "confirmed": "True"}),
        (reverse("updates:rollback"), {"reason": "x", "understood": "on"}),
    ]
    for url, data in posts:
        assert viewer.post(url, data).status_code == 403, url
    assert viewer.get(reverse("updates:audit")).status_code == 403
    run.refresh_from_db()
    assert run.state == UpdateRun.State.SCHEDULED
    assert not AuditEntry.objects.exists()


# --- the update manager -----------------------------------------------------


def test_the_manager_shows_the_installed_version_and_the_release(admin) -> None:
    make_release("1.1.0", critical=True, force_after=timezone.now() + timedelta(days=3))
    page = admin.get(reverse("updates:manager")).content.decode()
    assert "CLMS 1.0.0" in page
    assert "CLMS 1.1.0 is available" in page
    assert "Critical" in page
    assert 'class="countdown"' in page
    assert "Faster loans" in page  # the changelog, rendered


def test_the_manager_says_a_withdrawn_release_is_not_offered(admin) -> None:
    make_release("1.1.0", withdrawn_at=timezone.now() - timedelta(hours=1))
    page = admin.get(reverse("updates:manager")).content.decode()
    assert "No update available" in page
    assert "CLMS 1.1.0 is available" not in page
    assert "CLMS 1.1.0 was withdrawn by the vendor" in page


def test_the_changelog_is_rendered_without_script(admin) -> None:
    make_release(
        "1.1.0",
        changelog="## New\n- **bold** <script>alert(1)</script>"
        '\n\n<img src=x onerror="alert(2)"> [link](javascript:alert(3))',
    )
    page = admin.get(reverse("updates:manager")).content.decode()
    assert "<strong>bold</strong>" in page
    assert "<script>alert(1)" not in page
    assert "onerror" not in page
    assert "javascript:alert" not in page


def test_the_manager_shows_offline_state_with_reason_and_since(admin) -> None:
    since = timezone.now() - timedelta(hours=2)
    AgentState.objects.update_or_create(
        pk=1,
        defaults={
            "installed_version": "1.0.0",
            "offline": True,
            "offline_reason": "vendor: connection refused",
            "offline_since": since,
        },
    )
    page = admin.get(reverse("updates:manager")).content.decode()
    assert "Offline" in page
    assert "vendor: connection refused" in page
    assert since.astimezone(scheduling.school_zone()).strftime("%H:%M") in page


def test_check_now_reports_why_it_was_refused_and_is_audited(admin, settings) -> None:
    settings.UPDATES_SOURCES = []
    response = admin.post(reverse("updates:check"), follow=True)
    page = response.content.decode()
    assert "no update source is configured" in page
    check = UpdateCheck.objects.get()
    assert check.outcome == UpdateCheck.Outcome.ERROR
    entry = AuditEntry.objects.get(action="updates.check")
    assert entry.username == "school-admin-user"
    assert entry.detail["outcome"] == "error"


def test_check_now_finds_a_signed_release(admin, vendor) -> None:
    from updates.tests.factories import make_manifest

    vendor.publish([make_manifest("1.0.1")])
    page = admin.post(reverse("updates:check"), follow=True).content.decode()
    assert "Check finished: 1.0.1 is available" in page
    assert "CLMS 1.0.1 is available" in page


# --- scheduling -------------------------------------------------------------


def test_scheduling_asks_for_confirmation_before_anything_is_stored(
    admin, at_noon
) -> None:
    make_weeknight_window()
    make_release("1.1.0")
    response = admin.post(
        reverse("updates:schedule"), {"version": "1.1.0", "when": "window"}
    )
    assert response.status_code == 200
    assert b"Confirm schedule" in response.content
    assert b"Wed 02 Dec 2026, 22:00 GMT" in response.content
    assert not UpdateRun.objects.exists()


def test_a_confirmed_schedule_creates_the_run_and_is_audited(admin, at_noon) -> None:
    make_weeknight_window()
    make_release("1.1.0")
    data = {
        "version": "1.1.0",
        "when": "at",
        "date": "2026-12-02",
        "time": "23:30",
        "confirmed": "True",
    }
    response = admin.post(reverse("updates:schedule"), data, follow=True)
    run = UpdateRun.objects.get()
    assert run.scheduled_for == datetime(2026, 12, 2, 23, 30, tzinfo=scheduling.UTC)
    assert run.requested_by is not None
    assert "is scheduled for Wed 02 Dec 2026, 23:30" in response.content.decode()
    entry = AuditEntry.objects.get(action="updates.schedule")
    assert entry.target == f"run {run.pk}"
    assert not AuditEntry.objects.filter(action="updates.override").exists()


def test_a_time_outside_the_windows_is_refused_and_the_input_kept(
    admin, at_noon
) -> None:
    make_weeknight_window()
    make_release("1.1.0")
    data = {"version": "1.1.0", "when": "at", "date": "2026-12-02", "time": "14:15"}
    response = admin.post(reverse("updates:schedule"), data)
    page = response.content.decode()
    assert response.status_code == 400
    assert "outside every maintenance window" in page
    assert 'value="2026-12-02"' in page
    assert 'value="14:15"' in page
    assert '<details class="dialog" id="schedule" open>' in page
    assert not UpdateRun.objects.exists()


def test_an_admin_may_override_the_windows_and_it_is_audited(admin, at_noon) -> None:
    make_weeknight_window()
    make_release("1.1.0")
    data = {
        "version": "1.1.0",
        "when": "at",
        "date": "2026-12-02",
        "time": "14:15",
        "force": "on",
        "confirmed": "True",
    }
    admin.post(reverse("updates:schedule"), data)
    assert UpdateRun.objects.get().forced is True
    assert AuditEntry.objects.filter(action="updates.override").count() == 1


def test_a_time_skipped_by_the_clock_change_is_refused(admin) -> None:
    MaintenanceWindow.objects.create(
        weekdays=list(range(7)), start=time(0), end=time(4)
    )
    make_release("1.1.0")
    with time_machine.travel(datetime(2026, 3, 20, 12, tzinfo=scheduling.UTC)):
        data = {"version": "1.1.0", "when": "at", "date": "2026-03-29", "time": "01:30"}
        response = admin.post(reverse("updates:schedule"), data)
    assert response.status_code == 400
    assert "does not exist in Europe/London" in response.content.decode()


def test_a_second_pending_run_is_refused(admin, at_noon) -> None:
    make_weeknight_window()
    release = make_release("1.1.0")
    make_run(release)
    response = admin.post(
        reverse("updates:schedule"),
        {"version": "1.1.0", "when": "window", "confirmed": "True"},
    )
    assert response.status_code == 400
    assert "Cancel it first" in response.content.decode()
    assert UpdateRun.objects.count() == 1


def test_an_unknown_version_is_refused_with_what_to_do(admin) -> None:
    response = admin.post(
        reverse("updates:schedule"), {"version": "9.9.9", "when": "window"}
    )
    assert response.status_code == 400
    assert "Check now" in response.content.decode()


def test_cancel_stops_a_scheduled_run_and_is_audited(admin) -> None:
    run = make_run()
    response = admin.post(reverse("updates:cancel", args=[run.pk]), follow=True)
    run.refresh_from_db()
    assert run.state == UpdateRun.State.CANCELLED
    assert "is cancelled and will not run" in response.content.decode()
    assert AuditEntry.objects.filter(action="updates.cancel").exists()


def test_cancelling_a_finished_run_says_why_nothing_happened(admin) -> None:
    run = make_run()
    run.cancel()
    response = admin.post(reverse("updates:cancel", args=[run.pk]), follow=True)
    assert "Nothing was cancelled" in response.content.decode()
    assert not AuditEntry.objects.filter(action="updates.cancel").exists()


def test_update_now_confirms_then_starts_a_run(admin, at_noon, settings) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = False
    make_release("1.1.0")
    url = reverse("updates:update_now")
    confirm = admin.get(url, {"version": "1.1.0"})
    assert b"Yes, update now" in confirm.content
    assert not UpdateRun.objects.exists()
    response = admin.post(url, {"version": "1.1.0", "confirmed": "True"})
    run = UpdateRun.objects.get()
    assert response["Location"] == reverse("updates:run", args=[run.pk])
    assert run.forced is True  # noon is outside every window
    assert AuditEntry.objects.filter(action="updates.override").exists()


# --- runs, history, rollback ------------------------------------------------


def test_the_run_page_shows_steps_progress_and_log(viewer) -> None:
    run = make_run(state=UpdateRun.State.RUNNING, started_at=timezone.now())
    from clms_updates import progress

    progress.publish(run, "Pulling images", step="fetch", percent=20, eta_seconds=90)
    page = viewer.get(reverse("updates:run", args=[run.pk])).content.decode()
    assert 'data-step="preflight" data-state="done"' in page
    assert 'data-step="fetch" data-state="running"' in page
    assert 'aria-valuenow="20"' in page
    assert "Pulling images" in page
    assert f'data-socket="/ws/progress/update_run/{run.pk}/"' in page


def test_history_lists_runs_and_filters_them(viewer) -> None:
    old = make_run(state=UpdateRun.State.CANCELLED)
    new = make_run(make_release("1.2.0"), state=UpdateRun.State.SCHEDULED)
    page = viewer.get(reverse("updates:history")).content.decode()
    assert f"#{old.pk} update" in page and f"#{new.pk} update" in page
    page = viewer.get(
        reverse("updates:history"), {"state": "cancelled"}
    ).content.decode()
    assert f"#{old.pk} update" in page
    assert f"#{new.pk} update" not in page
    page = viewer.get(
        reverse("updates:history"), {"version": "1.2", "sort": "oldest"}
    ).content.decode()
    assert f"#{new.pk} update" in page and f"#{old.pk} update" not in page


def test_history_and_the_run_page_say_why_a_run_ended_in_words(viewer) -> None:
    run = make_run(
        state=UpdateRun.State.FAILED,
        error_code="health_check_failed",
        error_message="The new version did not answer /health.",
    )
    history = viewer.get(reverse("updates:history")).content.decode()
    assert "The new version&#x27;s health check failed" in history
    assert ">health_check_failed<" not in history
    page = viewer.get(reverse("updates:run", args=[run.pk])).content.decode()
    assert "The run failed: the new version&#x27;s health check failed." in page


def test_rollback_needs_a_reason_and_a_confirmation(admin) -> None:
    release = make_release("1.1.0")
    make_run(
        release,
        state=UpdateRun.State.SUCCEEDED,
        finished_at=timezone.now(),
    )
    AgentState.objects.update_or_create(pk=1, defaults={"installed_version": "1.1.0"})
    page = admin.get(reverse("updates:rollback")).content.decode()
    assert "back to <strong>1.0.0</strong>" in page
    response = admin.post(reverse("updates:rollback"), {"reason": "Loans broke"})
    assert response.status_code == 400
    assert "Tick the box" in response.content.decode()
    assert "Loans broke</textarea>" in response.content.decode()
    response = admin.post(
        reverse("updates:rollback"), {"reason": "Loans broke", "understood": "on"}
    )
    run = UpdateRun.objects.get(kind=UpdateRun.Kind.ROLLBACK)
    assert response["Location"] == reverse("updates:run", args=[run.pk])
    assert run.to_version == "1.0.0"
    entry = AuditEntry.objects.get(action="updates.rollback")
    assert entry.detail["reason"] == "Loans broke"


def test_rollback_without_an_earlier_version_explains_why(admin) -> None:
    page = admin.get(reverse("updates:rollback")).content.decode()
    assert "There is no earlier version to roll back to" in page
    response = admin.post(
        reverse("updates:rollback"), {"reason": "x", "understood": "on"}
    )
    assert not UpdateRun.objects.exists()
    assert response.status_code == 409
    assert "restore a backup from the Backups page" in response.content.decode()


# --- audit log and banner ---------------------------------------------------


def test_the_audit_log_lists_admin_actions(admin) -> None:
    run = make_run()
    admin.post(reverse("updates:cancel", args=[run.pk]))
    page = admin.get(reverse("updates:audit"), {"action": "cancel"}).content.decode()
    assert "updates.cancel" in page
    assert "school-admin-user" in page


def test_an_optional_update_banner_can_be_hidden(viewer) -> None:
    make_release("1.1.0")
    backups_page = viewer.get(reverse("backups:list")).content.decode()
    assert "Update available:" in backups_page
    viewer.post(
        reverse("updates:dismiss_banner"), {"version": "1.1.0", "next": "/backups/"}
    )
    assert (
        "Update available:" not in viewer.get(reverse("backups:list")).content.decode()
    )


def test_a_critical_banner_cannot_be_hidden_and_counts_down(viewer) -> None:
    make_release(
        "1.1.0", critical=True, force_after=timezone.now() + timedelta(hours=5)
    )
    response = viewer.post(
        reverse("updates:dismiss_banner"), {"version": "1.1.0"}, follow=True
    )
    assert "is a critical update, so its notice cannot be hidden" in (
        response.content.decode()
    )
    assert not BannerDismissal.objects.exists()
    page = viewer.get(reverse("updates:history")).content.decode()
    assert "Critical update:" in page
    assert "data-deadline=" in page
    assert "Hide the notice" not in page


def test_a_hidden_banner_stays_hidden_after_logging_in_again_elsewhere(
    viewer, school_viewer
) -> None:
    make_release("1.1.0")
    viewer.post(reverse("updates:dismiss_banner"), {"version": "1.1.0"})
    viewer.logout()
    other_device = login(Client(), school_viewer)
    page = other_device.get(reverse("backups:list")).content.decode()
    assert "Update available:" not in page
    assert BannerDismissal.objects.get().user == school_viewer


def test_hiding_the_banner_for_one_user_leaves_it_for_another(
    viewer, school_admin
) -> None:
    make_release("1.1.0")
    viewer.post(reverse("updates:dismiss_banner"), {"version": "1.1.0"})
    colleague = login(Client(), school_admin)
    assert (
        "Update available:" in colleague.get(reverse("backups:list")).content.decode()
    )
    assert (
        "Update available:" not in viewer.get(reverse("backups:list")).content.decode()
    )


def test_hiding_the_same_release_twice_keeps_one_dismissal(viewer) -> None:
    make_release("1.1.0")
    viewer.post(reverse("updates:dismiss_banner"), {"version": "1.1.0"})
    viewer.post(reverse("updates:dismiss_banner"), {"version": "1.1.0"})
    assert BannerDismissal.objects.count() == 1


def test_a_newer_release_shows_the_banner_again_after_one_was_hidden(viewer) -> None:
    make_release("1.1.0")
    viewer.post(reverse("updates:dismiss_banner"), {"version": "1.1.0"})
    assert (
        "Update available:" not in viewer.get(reverse("backups:list")).content.decode()
    )
    make_release("1.2.0")
    page = viewer.get(reverse("backups:list")).content.decode()
    assert "Update available:" in page
    assert "CLMS 1.2.0" in page


def test_a_hidden_release_shows_again_once_it_is_marked_critical(viewer) -> None:
    release = make_release("1.1.0")
    viewer.post(reverse("updates:dismiss_banner"), {"version": "1.1.0"})
    release.critical = True
    release.save(update_fields=["critical"])
    assert "Critical update:" in viewer.get(reverse("backups:list")).content.decode()


def test_the_health_part_says_when_clms_does_not_answer_and_what_to_set(
    viewer, settings
) -> None:
    settings.CLMS_APP_URL = "http://127.0.0.1:9"  # nothing listens on discard
    settings.HEALTHZ_TIMEOUT = 1
    page = viewer.get(reverse("updates:health")).content.decode()
    assert 'data-testid="clms-health"' in page
    assert "not healthy" in page
    assert "set CLMS_APP_URL" in page
    assert "Database" in page


def test_the_run_page_shows_the_steps_the_pipeline_recorded(viewer) -> None:
    run = make_run(
        state=UpdateRun.State.ROLLED_BACK,
        started_at=timezone.now() - timedelta(seconds=30),
        finished_at=timezone.now(),
        current_step="rollback_health",
        steps=[
            {
                "name": "preflight",
                "status": "done",
                "started_at": "2026-12-02T22:00:00+00:00",
                "finished_at": "2026-12-02T22:00:02+00:00",
            },
            {"name": "fetch", "status": "skipped"},
            {
                "name": "health",
                "status": "failed",
                "started_at": "2026-12-02T22:00:05+00:00",
                "finished_at": "2026-12-02T22:00:13+00:00",
            },
            {"name": "rollback_containers", "status": "done"},
            {"name": "rollback_health", "status": "done"},
        ],
    )
    page = viewer.get(reverse("updates:run", args=[run.pk])).content.decode()
    assert 'data-step="preflight" data-state="done"' in page
    assert 'data-step="fetch" data-state="skipped"' in page
    assert 'data-step="health" data-state="failed"' in page
    assert 'data-step="commit" data-state="skipped"' in page  # never reached
    assert 'data-step="rollback_containers" data-state="done"' in page
    assert "Start the previous containers" in page
    assert "22:00:05 GMT" not in page and "22:00:05" in page  # school time
    assert "8 s" in page  # the health step's duration
