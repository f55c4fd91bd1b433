"""Scheduling: school time and DST, maintenance windows, blackouts, beat triggers."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from django_celery_beat.models import PeriodicTask

from clms_updates.actions import ActionRefused, Actor
from updates import actions, scheduling, tasks
from updates.models import BlackoutPeriod, MaintenanceWindow, UpdateRun
from updates.tests.factories import make_release, make_weeknight_window

SYSTEM = Actor.system()

pytestmark = pytest.mark.django_db


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture(autouse=True)
def london(settings):  # type: ignore[no-untyped-def]
    settings.UPDATES_SCHOOL_TIME_ZONE = "Europe/London"


# ---------------------------------------------------------------------------
# School time and DST (Europe/London: 2026-03-29 forward, 2026-10-25 back)
# ---------------------------------------------------------------------------


def test_a_winter_school_time_is_stored_as_the_same_utc_time() -> None:
    assert scheduling.local_to_utc(datetime(2026, 12, 1, 22, 30)) == utc(
        2026, 12, 1, 22, 30
    )


def test_a_summer_school_time_is_stored_one_hour_earlier_in_utc() -> None:
    assert scheduling.local_to_utc(datetime(2026, 6, 1, 22, 30)) == utc(
        2026, 6, 1, 21, 30
    )


def test_a_time_in_the_spring_forward_gap_is_refused_with_a_reason() -> None:
    with pytest.raises(
        scheduling.SchedulingError, match="does not exist in Europe/London"
    ):
        scheduling.local_to_utc(datetime(2026, 3, 29, 1, 30))
    # Either side of the gap is fine.
    assert scheduling.local_to_utc(datetime(2026, 3, 29, 0, 59)) == utc(
        2026, 3, 29, 0, 59
    )
    assert scheduling.local_to_utc(datetime(2026, 3, 29, 2, 0)) == utc(
        2026, 3, 29, 1, 0
    )


def test_a_time_in_the_autumn_overlap_is_its_first_occurrence() -> None:
    moment = datetime(2026, 10, 25, 1, 30)
    assert scheduling.is_ambiguous(moment)
    # 01:30 BST (fold=0), not 01:30 GMT an hour later.
    assert scheduling.local_to_utc(moment) == utc(2026, 10, 25, 0, 30)
    assert not scheduling.is_ambiguous(datetime(2026, 10, 25, 2, 30))


def test_the_school_zone_setting_is_honoured(settings) -> None:
    settings.UPDATES_SCHOOL_TIME_ZONE = "America/New_York"
    assert scheduling.local_to_utc(datetime(2026, 12, 1, 22, 0)) == utc(
        2026, 12, 2, 3, 0
    )


def test_a_window_across_the_spring_change_is_an_hour_shorter() -> None:
    MaintenanceWindow.objects.create(
        weekdays=list(range(7)), start=time(22, 0), end=time(5, 0)
    )
    slot = scheduling.window_slots(utc(2026, 3, 28, 12, 0))[0]
    assert slot.start == utc(2026, 3, 28, 22, 0)
    assert slot.end == utc(2026, 3, 29, 4, 0)


def test_a_window_across_the_autumn_change_is_an_hour_longer() -> None:
    MaintenanceWindow.objects.create(
        weekdays=list(range(7)), start=time(22, 0), end=time(5, 0)
    )
    slot = scheduling.window_slots(utc(2026, 10, 24, 12, 0))[0]
    assert slot.start == utc(2026, 10, 24, 21, 0)
    assert slot.end == utc(2026, 10, 25, 5, 0)


def test_a_window_starting_in_the_gap_starts_when_the_clocks_have_moved() -> None:
    MaintenanceWindow.objects.create(weekdays=[6], start=time(1, 30), end=time(4, 0))
    start = scheduling.next_window_start(utc(2026, 3, 28, 12, 0))
    assert start == utc(2026, 3, 29, 1, 30)  # 02:30 BST


# ---------------------------------------------------------------------------
# Windows and blackouts
# ---------------------------------------------------------------------------


def test_the_next_window_is_tonight_at_ten() -> None:
    make_weeknight_window()
    friday_noon = utc(2026, 11, 27, 12, 0)
    assert scheduling.next_window_start(friday_noon) == utc(2026, 11, 27, 22, 0)


def test_inside_a_window_the_next_window_is_now() -> None:
    make_weeknight_window()
    saturday_3am = utc(2026, 11, 28, 3, 0)  # Friday's window runs to 05:00
    assert scheduling.next_window_start(saturday_3am) == saturday_3am


def test_a_window_crossing_midnight_covers_the_next_morning_only() -> None:
    make_weeknight_window()
    assert scheduling.is_inside_window(utc(2026, 11, 28, 4, 59))
    assert not scheduling.is_inside_window(utc(2026, 11, 28, 5, 0))
    assert not scheduling.is_inside_window(utc(2026, 11, 28, 22, 30))  # Saturday


def test_a_blackout_skips_the_windows_of_its_dates() -> None:
    make_weeknight_window()
    BlackoutPeriod.objects.create(
        start_date=date(2026, 11, 27), end_date=date(2026, 11, 30), reason="Exams"
    )
    # Fri 27 and Mon 30 are blacked out; Tue 1 Dec is the next window.
    assert scheduling.next_window_start(utc(2026, 11, 27, 12, 0)) == utc(
        2026, 12, 1, 22, 0
    )


def test_a_window_ending_on_a_blackout_date_is_skipped_too() -> None:
    make_weeknight_window()
    BlackoutPeriod.objects.create(
        start_date=date(2026, 11, 28), end_date=date(2026, 11, 28)
    )
    assert not scheduling.is_inside_window(utc(2026, 11, 27, 23, 0))


def test_disabled_windows_do_not_count_and_no_window_is_a_clear_error() -> None:
    MaintenanceWindow.objects.create(
        weekdays=[0, 1, 2, 3, 4], start=time(22, 0), end=time(5, 0), enabled=False
    )
    with pytest.raises(scheduling.SchedulingError, match="no maintenance window"):
        scheduling.next_window_start(utc(2026, 11, 27, 12, 0))


# ---------------------------------------------------------------------------
# Runs and their beat triggers
# ---------------------------------------------------------------------------


def test_a_scheduled_run_gets_a_one_off_beat_trigger_at_its_time() -> None:
    release = make_release("1.1.0")
    at = utc(2030, 1, 7, 22, 0)
    run = actions.schedule_update(release.version, actor=SYSTEM, force=True, at=at)
    task = PeriodicTask.objects.get(name=f"updates: run {run.pk}")
    assert task.task == "updates.execute_run"
    assert task.one_off and task.enabled
    assert task.clocked.clocked_time == at
    assert task.args == f"[{run.pk}]"
    assert run.from_version == "1.0.0" and run.to_version == "1.1.0"


def test_scheduling_into_the_next_window_uses_the_window_start() -> None:
    make_weeknight_window()
    run = actions.schedule_update(
        make_release().version,
        actor=SYSTEM,
        force=True,
        next_window=True,
        now=utc(2026, 11, 27, 12, 0),
    )
    assert run.scheduled_for == utc(2026, 11, 27, 22, 0)


def test_a_second_pending_run_is_refused() -> None:
    release = make_release()
    actions.schedule_update(
        release.version, actor=SYSTEM, force=True, at=utc(2030, 1, 7, 22, 0)
    )
    with pytest.raises(ActionRefused, match="already scheduled"):
        actions.schedule_update(
            release.version, actor=SYSTEM, force=True, at=utc(2030, 1, 8, 22, 0)
        )
    assert UpdateRun.objects.count() == 1


def test_a_cancelled_run_never_runs_even_if_its_task_fires() -> None:
    run = actions.schedule_update(
        make_release().version, actor=SYSTEM, force=True, at=utc(2030, 1, 7, 22, 0)
    )
    actions.cancel_run(run.pk, actor=SYSTEM)
    assert not PeriodicTask.objects.filter(name=f"updates: run {run.pk}").exists()

    tasks.execute_run(run.pk)

    run.refresh_from_db()
    assert run.state == UpdateRun.State.CANCELLED
    assert run.started_at is None and run.attempts == 0


def test_a_run_that_is_no_longer_scheduled_cannot_be_cancelled() -> None:
    run = actions.schedule_update(
        make_release().version, actor=SYSTEM, force=True, at=utc(2030, 1, 7, 22, 0)
    )
    tasks.execute_run(run.pk)
    with pytest.raises(ActionRefused, match="only a scheduled"):
        actions.cancel_run(run.pk, actor=SYSTEM)


def test_a_fired_run_is_handed_to_the_pipeline() -> None:
    run = actions.schedule_update(
        make_release().version, actor=SYSTEM, force=True, at=utc(2030, 1, 7, 22, 0)
    )
    tasks.execute_run(run.pk)
    run.refresh_from_db()
    assert run.state == UpdateRun.State.FAILED
    # The factory's release carries no real signature: the pipeline refuses it.
    assert run.error_code == "verification_failed"
    assert "nothing was changed" in run.error_message
    assert run.attempts == 1 and run.finished_at is not None
    # Terminal runs free the slot for the next one.
    actions.schedule_update(
        run.release.version, actor=SYSTEM, force=True, at=utc(2030, 1, 8, 22, 0)
    )


def test_a_transient_failure_is_retried_with_backoff_inside_the_window(
    settings,
) -> None:
    settings.UPDATES_RETRY_BASE_SECONDS = 300
    make_weeknight_window()
    now = utc(2026, 11, 27, 22, 0)
    run = actions.schedule_update(
        make_release().version, actor=SYSTEM, force=True, at=now, now=now
    )
    run = UpdateRun.claim(run.pk, now=now)

    assert scheduling.retry_or_fail(
        run, "registry_unreachable", "registry down", now=now
    )
    run.refresh_from_db()
    assert run.state == UpdateRun.State.SCHEDULED
    assert run.next_retry_at == now + timedelta(seconds=300)
    task = PeriodicTask.objects.get(name=f"updates: run {run.pk}")
    assert task.clocked.clocked_time == run.next_retry_at

    run = UpdateRun.claim(run.pk, now=run.next_retry_at)
    later = now + timedelta(seconds=300)
    assert scheduling.retry_or_fail(
        run, "registry_unreachable", "still down", now=later
    )
    run.refresh_from_db()
    assert run.next_retry_at == later + timedelta(seconds=600)  # doubled


def test_no_retry_past_the_end_of_the_window(settings) -> None:
    settings.UPDATES_RETRY_BASE_SECONDS = 3600
    make_weeknight_window()
    now = utc(2026, 11, 28, 4, 30)  # half an hour before the window closes
    run = actions.schedule_update(
        make_release().version, actor=SYSTEM, force=True, at=now, now=now
    )
    run = UpdateRun.claim(run.pk, now=now)
    assert not scheduling.retry_or_fail(
        run, "source_unreachable", "vendor down", now=now
    )
    run.refresh_from_db()
    assert run.state == UpdateRun.State.FAILED
    assert "window ends before the next retry" in run.error_message


def test_a_rollback_goes_to_the_version_before_the_installed_one() -> None:
    from updates.models import AgentState

    release = make_release("1.1.0")
    UpdateRun.objects.create(
        release=release,
        from_version="1.0.0",
        to_version="1.1.0",
        scheduled_for=utc(2026, 1, 1, 22, 0),
        state=UpdateRun.State.SUCCEEDED,
    )
    AgentState.objects.update_or_create(pk=1, defaults={"installed_version": "1.1.0"})
    run = actions.roll_back(actor=SYSTEM, reason="the loans page broke")
    assert run.kind == UpdateRun.Kind.ROLLBACK
    assert (run.from_version, run.to_version) == ("1.1.0", "1.0.0")


def test_a_rollback_without_history_is_refused() -> None:
    with pytest.raises(ActionRefused, match="no earlier version"):
        actions.roll_back(actor=SYSTEM, reason="the loans page broke")


def test_the_periodic_check_is_installed_every_six_hours() -> None:
    task = PeriodicTask.objects.get(name="updates: periodic check for updates")
    assert task.task == "updates.periodic_check"
    assert (task.interval.every, task.interval.period) == (6, "hours")


def test_the_periodic_check_runs_after_a_jitter(settings) -> None:
    from clms_updates.celery import app
    from updates.models import UpdateCheck

    settings.UPDATES_SOURCES = []
    settings.UPDATES_CHECK_JITTER_MINUTES = 2
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True  # no broker here: run the queued check inline
    try:
        delay = tasks.periodic_check()
    finally:
        app.conf.task_always_eager = eager
    assert 0 <= delay <= 120
    assert UpdateCheck.objects.get().trigger == UpdateCheck.Trigger.PERIODIC
