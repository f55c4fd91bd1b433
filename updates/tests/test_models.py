"""The run state machine and the one-active-run rule."""

from __future__ import annotations

import pytest
from django.db import IntegrityError

from clms_updates.statemachine import InvalidTransition
from updates.models import AgentState, UpdateRun
from updates.tests.factories import make_release, make_run

pytestmark = pytest.mark.django_db


def test_the_agent_starts_at_the_configured_installed_version(settings) -> None:
    settings.CLMS_INSTALLED_VERSION = "1.4.2"
    assert AgentState.load().installed_version == "1.4.2"
    assert AgentState.objects.count() == 1


def test_only_one_worker_claims_a_run() -> None:
    run = make_run()
    assert UpdateRun.claim(run.pk) is not None
    assert UpdateRun.claim(run.pk) is None
    run.refresh_from_db()
    assert run.state == UpdateRun.State.RUNNING and run.attempts == 1


def test_a_missing_run_is_not_claimed() -> None:
    assert UpdateRun.claim(999_999) is None


def test_illegal_moves_are_refused() -> None:
    run = make_run()
    with pytest.raises(InvalidTransition, match="cannot become succeeded"):
        run.succeed()
    with pytest.raises(InvalidTransition):
        run.finish_rollback()
    run.cancel()
    with pytest.raises(InvalidTransition):
        run.cancel()
    assert run.state == UpdateRun.State.CANCELLED and run.is_terminal


def test_a_run_goes_running_to_succeeded() -> None:
    run = UpdateRun.claim(make_run().pk)
    run.succeed()
    run.refresh_from_db()
    assert run.state == UpdateRun.State.SUCCEEDED
    assert run.finished_at is not None and run.active_slot is None


def test_a_rolled_back_release_is_marked_so_it_is_not_retried() -> None:
    run = UpdateRun.claim(make_run().pk)
    run.start_rollback("health check failed")
    run.finish_rollback()
    assert run.release.__class__.objects.get(pk=run.release_id).rolled_back


def test_a_failed_rollback_ends_failed() -> None:
    run = UpdateRun.claim(make_run().pk)
    run.start_rollback("migration failed")
    run.fail("rollback_failed", "previous images did not become healthy")
    run.refresh_from_db()
    assert run.state == UpdateRun.State.FAILED
    assert run.error_code == "rollback_failed"


def test_the_database_refuses_a_second_active_run() -> None:
    release = make_release()
    make_run(release)
    with pytest.raises(IntegrityError):
        make_run(release)


def test_finished_runs_do_not_block_a_new_one() -> None:
    release = make_release()
    make_run(release).cancel()
    make_run(release).cancel()
    assert make_run(release).state == UpdateRun.State.SCHEDULED


def test_runs_are_followable_by_school_viewers(school_viewer, outsider) -> None:
    from clms_updates import progress

    kind = progress.get_kind("update_run")
    assert kind is not None and kind.model() is UpdateRun
    assert kind.can_view(school_viewer) and not kind.can_view(outsider)


def test_the_installed_version_is_recorded() -> None:
    AgentState.record_installed("1.1.0")
    assert AgentState.load().installed_version == "1.1.0"


def test_backups_learn_the_installed_clms_version_from_the_agent() -> None:
    from backups.operations import installed_clms_version
    from updates.models import AgentState

    AgentState.load()
    AgentState.record_installed("1.0.7")
    assert installed_clms_version() == "1.0.7"
