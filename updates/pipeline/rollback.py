"""Undo a failed run: old containers back, data restored if the migration broke it.

1. The maintenance flag goes (back) up: nothing is served while data moves.
2. Each changed container is swapped back for its stopped previous one (or,
   if that is gone, recreated from the old image); the env file gets the old
   image references back.
3. If the migration started and did not finish, the database is restored from
   the run's verified backup (a half-migrated schema is never left behind). A
   failed health check or a crashing container needs no restore: migrations
   only add, and the old version runs on the newer schema.
4. The old version must pass the health check again. If any of this fails the
   run is ``failed`` and the admins are emailed at once by the runner.
"""

from __future__ import annotations

import logging

import docker
from django.conf import settings

from backups import operations as backups
from backups.errors import BackupError
from clms_updates.actions import Actor
from updates import runtime
from updates.models import UpdateRun
from updates.pipeline import health, maintenance
from updates.pipeline.changing import crash_watch
from updates.pipeline.context import Context, Position, Step, positions
from updates.pipeline.errors import StepFailed
from updates.pipeline.records import FAILED, begin_step, end_step, is_done

logger = logging.getLogger(__name__)


class RollbackFailed(Exception):
    """The previous version could not be brought back healthy; the admin must act."""


def start(run: UpdateRun, code: str, message: str) -> None:
    """running -> rolling_back, keeping why on the run."""
    if run.state != UpdateRun.State.RUNNING:
        return
    run.error_code = code[:64]
    run.error_message = message
    run.save(update_fields=["error_code", "error_message"])
    run.start_rollback(f"{code}: {message}")


def roll_back(ctx: Context) -> None:
    """Steps 1-4 of the module docstring; raises ``RollbackFailed`` if health is not back."""
    run = ctx.run
    maintenance.enter(
        run.pk,
        f"CLMS is going back to {run.from_version}; please try again in a few minutes.",
    )
    for step in ROLLBACK_STEPS:
        if is_done(run, step.name):
            continue
        if step.name == "rollback_database" and not _data_needs_restore(ctx):
            continue
        _run_step(ctx, step)


def _data_needs_restore(ctx: Context) -> bool:
    """The migration started and did not finish: a half-migrated schema stays no more."""
    checkpoint = ctx.checkpoint
    return bool(checkpoint.get("migration_started")) and not checkpoint.get(
        "migration_done"
    )


def _run_step(ctx: Context, step: Step) -> None:
    position = ROLLBACK_POSITIONS[step.name]
    begin_step(ctx.run, step.name, step.message, percent=position.start_percent)
    try:
        detail = step.run(ctx)
    except (
        StepFailed,
        BackupError,
        runtime.DockerRuntimeError,
        docker.errors.APIError,
    ) as e:
        text = e.message if isinstance(e, StepFailed) else str(e)
        end_step(
            ctx.run,
            step.name,
            f"{step.message}: failed: {text}",
            status=FAILED,
            detail=text,
        )
        raise RollbackFailed(f"{step.message} failed: {text}") from e
    end_step(
        ctx.run,
        step.name,
        f"{step.message}: done",
        detail=detail or "",
        percent=position.percent_at(1.0),
    )


def _restore_containers(ctx: Context) -> str:
    client = ctx.client
    previous = ctx.checkpoint.get("previous") or {}
    for name, item in sorted(previous.items()):
        if runtime.previous_container(client, name) is not None:
            runtime.restore_previous(
                client, name, stop_timeout=settings.UPDATES_STOP_TIMEOUT_SECONDS
            )
            continue
        try:
            current = client.containers.get(name)
        except docker.errors.NotFound:
            current = None
        if current is not None and current.attrs["Image"] == item["image_id"]:
            if current.status != "running":
                current.start()
            continue
        # The stopped copy is gone: recreate the service from its old image.
        image = item["image"]
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            image = item["image_id"]
        runtime.recreate_container(
            client, name, image, stop_timeout=settings.UPDATES_STOP_TIMEOUT_SECONDS
        )
        runtime.remove_previous(client, name)
    before = ctx.checkpoint.get("env_before") or {}
    if before and ctx.checkpoint.get("env_file"):
        runtime.update_env_file(ctx.env_file(), before)
    return f"{len(previous)} container(s) back on their previous image"


def _restore_database(ctx: Context) -> str:
    run = ctx.run
    if not run.backup_id:
        raise StepFailed("no_backup", "The run has no backup to restore from.")
    restored = backups.restore_backup(
        run.backup_id,
        actor=Actor.system(),
        reason=f"Rollback of run {run.pk} ({run.from_version} -> {run.to_version})",
    )
    return f"database restored from backup {restored.name}"


def _check_old_health(ctx: Context) -> str:
    spec = health.for_version(
        ctx.plan.health, written_for=ctx.plan.to_version, version=ctx.run.from_version
    )
    result = health.wait_healthy(
        spec,
        expect_version=ctx.run.from_version,
        crashed=crash_watch(ctx),
        code="rollback_unhealthy",
    )
    return f"CLMS {ctx.run.from_version} healthy again ({result.status})"


ROLLBACK_STEPS: tuple[Step, ...] = (
    Step(
        "rollback_containers",
        _restore_containers,
        "Bringing the previous containers back",
        "Start the previous containers",
        share=40,
        seconds=3,
    ),
    Step(
        "rollback_database",
        _restore_database,
        "Restoring the CLMS database from the verified backup",
        "Restore the database from the backup",
        share=40,
        seconds=10,
    ),
    Step(
        "rollback_health",
        _check_old_health,
        "Checking that the previous version is healthy",
        "Health check of the previous version",
        share=20,
        seconds=5,
    ),
)

ROLLBACK_POSITIONS: dict[str, Position] = positions(ROLLBACK_STEPS)
