"""Acceptance: the worker is killed (SIGKILL) in the middle of apply, or of the
migration; a new worker takes the run over and finishes it, stack healthy."""

from __future__ import annotations

import docker
import pytest

from clms_updates.actions import Actor
from devtools.demo_stack import health
from devtools.demo_stack.stack import project_containers, service_container
from tests.e2e_support import School, school_fixture  # noqa: F401  (fixture)
from updates import actions, checking, runtime, tasks
from updates.models import AgentState, UpdateCheck, UpdateRun
from updates.pipeline import maintenance
from updates.tests.pipeline_fixtures import library_rows
from vendor_server.models import UpdateReport

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.services,
    pytest.mark.docker,
    pytest.mark.e2e,
]

# A migration slow enough to be killed in the middle of (the vendor may ship
# any command; this one waits, then runs the real migration).
SLOW_MIGRATION = ["sh", "-c", "sleep 4 && exec /app/bin/clms migrate"]


def _start_update(school: School) -> UpdateRun:
    school.publish("1.0.1", "1.0.1", migration=SLOW_MIGRATION)
    check = checking.run_check(trigger=UpdateCheck.Trigger.MANUAL)
    assert check.found_version == "1.0.1", check.reason
    run = actions.update_now("1.0.1", actor=Actor.command(), background=False)
    tasks.execute_run.delay(run.pk)
    return run


def _step(run: UpdateRun, name: str) -> dict:  # type: ignore[type-arg]
    return next(s for s in run.steps if s["name"] == name)


def _finished_on_the_new_version(school: School, run: UpdateRun, rows) -> None:  # type: ignore[no-untyped-def]
    assert run.state == UpdateRun.State.SUCCEEDED, run.log + school.logs()
    assert run.checkpoint["resumes"] == 1
    assert "Resuming after the worker stopped" in run.log
    status, body = health(school.stack.health_url)
    assert (status, body["version"], body["schema"]) == (200, "1.0.1", "0002_book_isbn")
    assert AgentState.load().installed_version == "1.0.1"
    assert library_rows(school.database_url) == rows
    assert maintenance.current() is None
    client = runtime.docker_client()
    containers = project_containers(client, school.stack.project)
    services = sorted(c.labels["com.docker.compose.service"] for c in containers)
    assert services == ["app", "worker"]
    assert all(c.status == "running" for c in containers)
    assert not [
        c.name for c in client.containers.list(all=True) if "-migrate" in c.name
    ]
    assert UpdateReport.objects.get(run_id=run.pk).outcome == "succeeded"


def test_a_worker_killed_in_the_middle_of_apply_is_finished_by_the_next_one(
    school: School,
) -> None:
    rows = library_rows(school.database_url)
    first = school.start_worker()
    run = _start_update(school)
    # The new project is written and compose is about to apply it.
    school.wait_for_run(
        run.pk,
        timeout=90,
        until=lambda r: r.current_step == "apply" and "target" in r.checkpoint,
    )
    first.kill()
    run.refresh_from_db()
    assert (run.state, run.current_step) == (UpdateRun.State.RUNNING, "apply")
    owner = run.worker

    school.start_worker()
    run = school.wait_until_over(run.pk)

    assert run.worker != owner
    assert "resumed_at" in _step(run, "apply")
    _finished_on_the_new_version(school, run, rows)


def test_a_worker_killed_in_the_middle_of_the_migration_is_finished_by_the_next_one(
    school: School,
) -> None:
    rows = library_rows(school.database_url)
    first = school.start_worker()
    run = _start_update(school)
    client = runtime.docker_client()
    app = service_container(client, school.stack.project, "app")
    migrate_name = f"{app.name}-migrate-{run.pk}"

    def migrating(r: UpdateRun) -> bool:
        if r.current_step != "migrate":
            return False
        try:
            return client.containers.get(migrate_name).status == "running"
        except docker.errors.NotFound:
            return False

    school.wait_for_run(run.pk, timeout=90, until=migrating)
    first.kill()
    run.refresh_from_db()
    assert (run.state, run.current_step) == (UpdateRun.State.RUNNING, "migrate")

    school.start_worker()
    run = school.wait_until_over(run.pk)

    assert "resumed_at" in _step(run, "migrate")
    _finished_on_the_new_version(school, run, rows)


def test_a_worker_killed_while_rolling_back_leaves_the_rollback_to_the_next_one(
    school: School,
) -> None:
    rows = library_rows(school.database_url)
    school.publish("1.1.0", "1.1.0-unhealthy", timeout_seconds=3)
    check = checking.run_check(trigger=UpdateCheck.Trigger.MANUAL)
    assert check.found_version == "1.1.0", check.reason
    first = school.start_worker()
    run = actions.update_now("1.1.0", actor=Actor.command(), background=False)
    tasks.execute_run.delay(run.pk)
    school.wait_for_run(
        run.pk, timeout=90, until=lambda r: r.state == UpdateRun.State.ROLLING_BACK
    )
    first.kill()

    school.start_worker()
    run = school.wait_until_over(run.pk)

    assert run.state == UpdateRun.State.ROLLED_BACK, run.log + school.logs()
    assert run.error_code == "health_check_failed"
    status, body = health(school.stack.health_url)
    assert (status, body["version"]) == (200, "1.0.0")
    assert AgentState.load().installed_version == "1.0.0"
    assert library_rows(school.database_url) == rows
    assert maintenance.current() is None
    assert UpdateReport.objects.get(run_id=run.pk).outcome == "rolled_back"
