"""Undo a failed run: the project's files and containers back, and the data.

1. The maintenance flag goes (back) up: nothing is served while data moves.
2. The project's files are put back exactly as they were before the run and
   applied with ``docker compose up -d --remove-orphans``: services the failed
   release added are removed again (their volumes stay), removed ones return,
   every container is back on its previous image and configuration.
3. The database is restored from the run's verified backup whenever the
   migration started and the new version did not end healthy: a half-migrated
   schema is never left behind, and after a successful migration the restore
   loses nothing (CLMS was in maintenance, nothing was written meanwhile),
   unless the release declares its migration backward compatible (the old
   version runs on the new schema, so the data stays as migrated).
4. The old version must pass the health check again. If any of this fails the
   run is ``failed`` and the admins are alerted at once by the runner.
"""

from __future__ import annotations

import logging

import docker

from backups import operations as backups
from backups.errors import BackupError
from clms_updates import composecli as cli
from clms_updates import logcontext
from clms_updates.actions import Actor
from updates import runtime
from updates.compose import project, stack, standing, targets
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
    _note_stack(ctx)


def _note_stack(ctx: Context) -> None:
    """After a rollback as after a commit: drift and left volumes noted (never fatal)."""
    if "snapshot" not in ctx.checkpoint:
        return
    try:
        saved = targets.load_snapshot(ctx.snapshot_file())
        layout = project.Layout.from_dict(saved["layout"])
        standing.record(layout, ctx.client, left_by=ctx.run.to_version)
    except (project.ProjectError, cli.ComposeFailed, docker.errors.APIError) as e:
        logger.warning(
            "Run %s: the stack could not be checked for drift: %s", ctx.run.pk, e
        )


def _data_needs_restore(ctx: Context) -> bool:
    """Step 3's rule: the migration ran, unless it finished and is backward compatible."""
    checkpoint = ctx.checkpoint
    if not checkpoint.get("migration_started"):
        return False
    return not (checkpoint.get("migration_done") and ctx.plan.backward_compatible)


def _run_step(ctx: Context, step: Step) -> None:
    position = ROLLBACK_POSITIONS[step.name]
    logcontext.set_field("step", step.name)
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


def _restore_project(ctx: Context) -> str:
    """Put the project's files back as they were before the run, and apply them."""
    if "snapshot" not in ctx.checkpoint:
        # The run stopped before it changed the project: nothing to put back.
        return "the project was not changed"
    layout = project.restore(targets.load_snapshot(ctx.snapshot_file()))
    targets.discard(layout, ctx.run.pk)
    try:
        stack.up(layout)
    except cli.ComposeFailed as e:
        raise StepFailed(
            "rollback_apply_failed",
            f"Applying the previous project failed: {e}\n{e.output[-2000:]}",
        ) from None
    return f"the previous project is back ({', '.join(map(str, layout.config_files))})"


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
        _restore_project,
        "Bringing the previous project and containers back",
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
