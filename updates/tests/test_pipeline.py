"""The update pipeline, driven in-process against a real engine, registry and database.

Each test starts the demo CLMS stack at 1.0.0 with its sample library and runs
the real pipeline on it; only the Celery worker is left out (see
``tests/test_e2e_*`` for the whole product with a worker and beat).
"""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import psycopg
import pytest
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from backups.models import Backup
from clms_updates import manifest as m
from clms_updates.actions import Actor
from clms_updates.models import AuditEntry
from devtools.demo_stack import health, service_container
from updates import actions, pipeline, runtime, tasks
from updates.compose import stack as compose_stack
from updates.models import AgentState, UpdateRun
from updates.pipeline import maintenance
from updates.pipeline.lease import take_over
from updates.tests.pipeline_fixtures import *  # noqa: F403
from updates.tests.pipeline_fixtures import AgentStack, library_rows

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.services,
    pytest.mark.docker,
]

ALL_STEPS = [
    "preflight",
    "fetch",
    "verify",
    "backup",
    "maintenance",
    "apply",
    "migrate",
    "health",
    "commit",
]


def run_now(release) -> UpdateRun:  # type: ignore[no-untyped-def]
    run = actions.update_now(release.version, actor=Actor.command(), background=False)
    pipeline.execute_run(run.pk)
    run.refresh_from_db()
    return run


def schema_rows(database_url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(database_url) as connection:
        return connection.execute(
            "SELECT version FROM clms_schema_migrations ORDER BY version"
        ).fetchall()


def container_images(stack: AgentStack) -> dict[str, str]:
    client = runtime.docker_client()
    return {
        c.name: c.attrs["Config"]["Image"]
        for cs in compose_stack.service_containers(client, stack.project).values()
        for c in cs
    }


def test_an_update_moves_the_stack_to_the_new_version_with_a_verified_backup(
    agent_stack: AgentStack,
) -> None:
    rows_before = library_rows(agent_stack.database_url)
    release = agent_stack.release_for("1.0.1")

    run = run_now(release)

    assert run.state == UpdateRun.State.SUCCEEDED, run.log
    assert [s["name"] for s in run.steps] == ALL_STEPS
    assert all(s["status"] == "done" for s in run.steps)
    assert all(s["started_at"] and s["finished_at"] for s in run.steps)
    assert AgentState.load().installed_version == "1.0.1"
    assert health(agent_stack.stack.health_url)[1]["version"] == "1.0.1"
    image = agent_stack.images["1.0.1"]
    assert set(container_images(agent_stack).values()) == {image}
    assert f"CLMS_APP_IMAGE={image}" in agent_stack.stack.env_file.read_text()
    client = runtime.docker_client()
    # Compose made the containers: nothing else of the project is left around.
    everything = client.containers.list(
        all=True, filters={"label": f"com.docker.compose.project={agent_stack.project}"}
    )
    assert sorted(c.labels["com.docker.compose.service"] for c in everything) == [
        "app",
        "worker",
    ]
    assert all(c.status == "running" for c in everything)
    backup = Backup.objects.get(pk=run.backup_id)
    assert backup.status == Backup.Status.VERIFIED
    assert backup.hold == ""
    assert library_rows(agent_stack.database_url) == rows_before
    assert maintenance.current() is None
    assert run.percent == 100


def test_an_unhealthy_release_is_rolled_back_to_the_old_containers(
    agent_stack: AgentStack,
) -> None:
    rows_before = library_rows(agent_stack.database_url)
    images_before = container_images(agent_stack)
    release = agent_stack.release_for("1.1.0-unhealthy")

    run = run_now(release)

    assert run.state == UpdateRun.State.ROLLED_BACK, run.log
    assert run.error_code == "health_check_failed"
    assert "status='failing'" in run.error_message
    names = [s["name"] for s in run.steps]
    # The migration ran and the new version never became healthy: the data
    # goes back too (nothing was written meanwhile, CLMS being in maintenance).
    assert names[-3:] == ["rollback_containers", "rollback_database", "rollback_health"]
    assert container_images(agent_stack) == images_before
    assert health(agent_stack.stack.health_url)[1]["version"] == "1.0.0"
    assert library_rows(agent_stack.database_url) == rows_before
    assert AgentState.load().installed_version == "1.0.0"
    assert maintenance.current() is None
    release.refresh_from_db()
    assert release.rolled_back is True
    assert mail.outbox == []


def version_check(version: str) -> m.HealthCheck:
    """A release's check that demands its own version in the body (as make run's)."""
    return m.HealthCheck(
        path="/health",
        body_field="version",
        body_value=version,
        successes=3,
        interval_ms=200,
        timeout_seconds=8,
    )


def test_a_release_checking_for_its_own_version_updates_and_rolls_back_by_hand(
    agent_stack: AgentStack,
) -> None:
    release = agent_stack.release_for("1.0.1", health=version_check("1.0.1"))

    update = run_now(release)

    assert update.state == UpdateRun.State.SUCCEEDED, update.log
    preflight = next(s for s in update.steps if s["name"] == "preflight")
    assert preflight["status"] == "done"
    fetch = next(s for s in update.steps if s["name"] == "fetch")
    # The demo image is already in the engine under its signed digest.
    assert "already in the engine under the signed digest" in fetch["detail"], fetch
    assert health(agent_stack.stack.health_url)[1]["version"] == "1.0.1"

    call_command("rollback_update", "--reason", "try the check", stdout=io.StringIO())

    rollback = UpdateRun.objects.get(kind=UpdateRun.Kind.ROLLBACK)
    assert rollback.state == UpdateRun.State.SUCCEEDED, rollback.log
    assert health(agent_stack.stack.health_url)[1]["version"] == "1.0.0"


def test_after_a_failed_update_the_old_version_passes_the_check_written_for_the_new(
    agent_stack: AgentStack,
) -> None:
    release = agent_stack.release_for("1.1.0-crash", health=version_check("1.1.0"))

    run = run_now(release)

    assert run.state == UpdateRun.State.ROLLED_BACK, run.log
    assert run.error_code == "container_crashed"
    back = next(s for s in run.steps if s["name"] == "rollback_health")
    assert back["status"] == "done", run.log
    assert health(agent_stack.stack.health_url)[1]["version"] == "1.0.0"
    assert AgentState.load().installed_version == "1.0.0"


def test_a_failed_migration_restores_the_database_from_the_backup(
    agent_stack: AgentStack,
) -> None:
    rows_before = library_rows(agent_stack.database_url)
    schema_before = schema_rows(agent_stack.database_url)
    release = agent_stack.release_for("1.1.0-badmigration")

    run = run_now(release)

    assert run.state == UpdateRun.State.ROLLED_BACK, run.log
    assert run.error_code == "migration_failed"
    assert "exited with code 1" in run.error_message
    assert "rollback_database" in [s["name"] for s in run.steps]
    # The half-applied migration 0004 is gone with the restore.
    assert schema_rows(agent_stack.database_url) == schema_before
    assert library_rows(agent_stack.database_url) == rows_before
    assert health(agent_stack.stack.health_url)[1]["version"] == "1.0.0"
    assert Backup.objects.get(pk=run.backup_id).restored_at is not None


def test_a_container_that_crashes_at_start_is_rolled_back_without_waiting_out_the_timeout(
    agent_stack: AgentStack,
) -> None:
    rows_before = library_rows(agent_stack.database_url)
    release = agent_stack.release_for("1.1.0-crash")
    started = time.monotonic()

    run = run_now(release)

    assert run.state == UpdateRun.State.ROLLED_BACK, run.log
    assert run.error_code == "container_crashed"
    assert "stopped soon after it started" in run.error_message
    assert "crashes at start on purpose" in run.error_message
    health_step = next(s for s in run.steps if s["name"] == "health")
    assert health_step["seconds"] < 8  # the release's own timeout
    assert time.monotonic() - started < 60
    assert health(agent_stack.stack.health_url)[1]["version"] == "1.0.0"
    assert library_rows(agent_stack.database_url) == rows_before


def test_an_unhealthy_stack_is_not_touched(agent_stack: AgentStack, settings) -> None:  # type: ignore[no-untyped-def]
    settings.UPDATES_PREFLIGHT_HEALTH_SECONDS = 2
    client = runtime.docker_client()
    service_container(client, agent_stack.project, "app").stop(timeout=2)
    release = agent_stack.release_for("1.0.1")

    run = run_now(release)

    assert run.state == UpdateRun.State.FAILED
    assert run.error_code == "stack_unhealthy"
    assert "Nothing was changed" in run.error_message
    assert run.backup_id is None
    assert [s["name"] for s in run.steps] == ["preflight"]
    assert AgentState.load().installed_version == "1.0.0"
    assert len(mail.outbox) == 1
    assert "nothing was changed" in mail.outbox[0].subject


def test_rollback_update_returns_to_the_version_before_the_update(
    agent_stack: AgentStack,
) -> None:
    update = run_now(agent_stack.release_for("1.0.1"))
    assert update.state == UpdateRun.State.SUCCEEDED, update.log

    out = io.StringIO()
    call_command("rollback_update", "--reason", "loans page is slow", stdout=out)

    rollback = UpdateRun.objects.get(kind=UpdateRun.Kind.ROLLBACK)
    assert rollback.state == UpdateRun.State.SUCCEEDED, rollback.log
    assert (rollback.from_version, rollback.to_version) == ("1.0.1", "1.0.0")
    migrate = next(s for s in rollback.steps if s["name"] == "migrate")
    assert migrate["status"] == "skipped"
    assert "CLMS 1.0.0 is running again" in out.getvalue()
    assert AgentState.load().installed_version == "1.0.0"
    assert health(agent_stack.stack.health_url)[1]["version"] == "1.0.0"
    assert set(container_images(agent_stack).values()) == {agent_stack.images["1.0.0"]}
    update.release.refresh_from_db()
    assert update.release.rolled_back is True
    actions = list(AuditEntry.objects.values_list("action", "detail"))
    assert ("updates.rollback", "loans page is slow") in [
        (action, detail.get("reason")) for action, detail in actions
    ]
    assert "updates.rollback.finished" in [action for action, _ in actions]


def test_a_rollback_asked_for_in_the_api_is_executed_by_the_pipeline(
    agent_stack: AgentStack, admin_api
) -> None:  # type: ignore[no-untyped-def]
    update = run_now(agent_stack.release_for("1.0.1"))
    assert update.state == UpdateRun.State.SUCCEEDED, update.log

    answer = admin_api.post(
        "/api/updates/rollback", {"reason": "staff asked"}, format="json"
    )
    assert answer.status_code == 201, answer.content
    tasks.execute_run(answer.json()["id"])  # what beat fires at the run's time

    rollback = UpdateRun.objects.get(pk=answer.json()["id"])
    assert rollback.state == UpdateRun.State.SUCCEEDED, rollback.log
    assert health(agent_stack.stack.health_url)[1]["version"] == "1.0.0"
    assert AgentState.load().installed_version == "1.0.0"


def test_the_watchdog_lifts_a_flag_left_when_no_run_is_active(
    agent_stack: AgentStack,
) -> None:
    maintenance.enter(999, "left by a run that is over")

    result = pipeline.recover_runs()

    assert result.lifted_flag is True
    assert maintenance.current() is None


def test_a_run_whose_worker_still_beats_is_not_taken_over(
    agent_stack: AgentStack,
) -> None:
    release = agent_stack.release_for("1.0.1")
    run = actions.update_now(release.version, actor=Actor.command(), background=False)
    UpdateRun.claim(run.pk)
    UpdateRun.objects.filter(pk=run.pk).update(
        worker="alive", heartbeat_at=timezone.now()
    )

    assert take_over(run.pk, "someone-else") is None
    result = pipeline.recover_runs()
    assert result.recovered == []
    assert result.recheck_after is not None


def test_too_little_free_disk_stops_the_update_before_anything_changes(
    agent_stack: AgentStack, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.UPDATES_MIN_FREE_DISK_MB = 10**9
    images_before = container_images(agent_stack)

    run = run_now(agent_stack.release_for("1.0.1"))

    assert run.state == UpdateRun.State.FAILED
    assert run.error_code == "low_disk"
    assert "UPDATES_MIN_FREE_DISK_MB" in run.error_message
    assert container_images(agent_stack) == images_before
    assert maintenance.current() is None


def test_an_image_the_registry_cannot_serve_is_retried_later_without_changes(
    agent_stack: AgentStack,
) -> None:
    registry = agent_stack.images["1.0.1"].split("/")[0]
    missing = f"{registry}/clms/app@sha256:{'0' * 64}"
    agent_stack.images["missing"] = missing
    images_before = container_images(agent_stack)

    run = run_now(agent_stack.release_for("missing", version="1.0.1"))

    assert run.state == UpdateRun.State.SCHEDULED
    assert run.next_retry_at is not None and run.next_retry_at > timezone.now()
    assert "pull_failed" in run.error_message
    assert container_images(agent_stack) == images_before
    assert run.backup_id is None


def test_a_rollback_that_cannot_restore_the_data_fails_and_alerts_the_admins(
    agent_stack: AgentStack, settings
) -> None:  # type: ignore[no-untyped-def]
    release = agent_stack.release_for("1.1.0-badmigration")
    run = actions.update_now(release.version, actor=Actor.command(), background=False)

    def rot_the_backup() -> None:
        """The backup file goes bad after it was verified (a disk error)."""
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                row = UpdateRun.objects.filter(pk=run.pk).values(
                    "backup_id", "current_step"
                )[0]
                if row["backup_id"] and row["current_step"] in ("apply", "migrate"):
                    backup = Backup.objects.get(pk=row["backup_id"])
                    (Path(settings.BACKUP_DIR) / backup.file_name).write_bytes(b"x")
                    return
                time.sleep(0.02)
        finally:
            connection.close()

    saboteur = threading.Thread(target=rot_the_backup)
    saboteur.start()
    pipeline.execute_run(run.pk)
    saboteur.join()
    run.refresh_from_db()

    assert run.state == UpdateRun.State.FAILED, run.log
    assert run.error_code == "rollback_failed"
    assert "migration_failed" in run.error_message
    assert "truncated" in run.error_message
    assert [m.subject for m in mail.outbox] == [
        "URGENT: CLMS update to 1.1.0 failed and rollback failed"
    ]
    assert f"backup (id {run.backup_id})" in mail.outbox[0].body
    assert maintenance.current() is None
