"""The steps that change the stack: apply, migrate, health, commit.

Each checks what an interrupted earlier pass already did (the checkpoint, the
engine's own state) before acting, so running it twice has the effect of
running it once. A failure here rolls back (see ``rollback``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import docker
from django.conf import settings

from clms_updates import composecli as cli
from clms_updates.manifest import ManifestError
from updates import runtime
from updates.compose import project, stack, standing, targets
from updates.models import AgentState, AvailableRelease, UpdateRun
from updates.pipeline import health
from updates.pipeline.context import Context
from updates.pipeline.errors import StepFailed
from updates.pipeline.plan import update_being_undone
from updates.pipeline.records import save_checkpoint
from updates.runtime import cleanup

logger = logging.getLogger(__name__)

# How often a wait for health says where it stands (each probe is ~0.3 s).
WAIT_REPORT_SECONDS = 5.0

# ---------------------------------------------------------------------------
# apply, migrate, health, commit
# ---------------------------------------------------------------------------


def apply(ctx: Context) -> str:
    """Write the target project and apply it with ``docker compose up -d``.

    The project's files as they were are saved first (the rollback puts them
    back); a rollback run brings back the files saved before the update it
    undoes. Services are added, recreated and removed as compose does;
    volumes are never removed.
    """
    layout = ctx.layout()
    if "snapshot" not in ctx.checkpoint:
        saved = targets.save_snapshot(layout, ctx.run.pk)
        save_checkpoint(ctx.run, snapshot=str(saved))
    try:
        if ctx.plan.restore_from is not None:
            target = project.restore(
                targets.load_snapshot(
                    targets.snapshot_path(layout, ctx.plan.restore_from)
                )
            )
        else:
            images = {service: ctx.image_for(service) for service in ctx.plan.images}
            staged = targets.stage(layout, ctx.plan.manifest, images, run_id=ctx.run.pk)
            target = targets.install(staged, layout)
            targets.discard(layout, ctx.run.pk)
    except project.ProjectError as e:
        raise StepFailed("project_write_failed", str(e)) from None
    if "volumes_before" not in ctx.checkpoint:
        known = sorted(stack.project_volumes(ctx.client, ctx.project))
        save_checkpoint(ctx.run, target=target.as_dict(), volumes_before=known)
    else:
        save_checkpoint(ctx.run, target=target.as_dict())
    ctx.check_lease()
    try:
        output = stack.up(target)
    except cli.ComposeFailed as e:
        raise StepFailed(
            "apply_failed", f"Applying the project failed: {e}\n{e.output[-2000:]}"
        ) from None
    touched = [
        line.strip()
        for line in output.splitlines()
        if line.strip().startswith(("Creating", "Recreating", "Removing", "Starting"))
        or " Created" in line
        or " Recreated" in line
        or " Removed" in line
    ]
    adopted = (
        " (the project is now managed by CLMS Updates)"
        if (target.managed and not layout.managed)
        else ""
    )
    return f"project applied with compose{adopted}: " + (
        "; ".join(touched[:12]) or "nothing to change"
    )


def migrate(ctx: Context) -> str | None:
    """Run the release's migration once in a one-off container; None when it has none.

    The one-off is made from the migration service's own container (which
    compose just created), with its image, environment, mounts and network.
    """
    migration = ctx.plan.migration
    if migration is None:
        return None
    containers = stack.service_containers(ctx.client, ctx.project).get(
        migration.service, []
    )
    if not containers:
        raise StepFailed(
            "migration_service_missing",
            f"No container of service {migration.service} to run the migration beside.",
        )
    if not ctx.checkpoint.get("migration_started"):
        save_checkpoint(ctx.run, migration_started=True)
    command = " ".join(migration.command)
    try:
        snapshot = runtime.snapshot_container(ctx.client, containers[0])
        result = runtime.run_one_off(
            ctx.client,
            snapshot,
            containers[0].attrs["Image"],
            list(migration.command),
            purpose=f"migrate-{ctx.run.pk}",
            timeout=settings.UPDATES_MIGRATION_TIMEOUT_SECONDS,
        )
    except (runtime.DockerRuntimeError, docker.errors.APIError) as e:
        raise StepFailed(
            "migration_failed", f"The migration could not be started: {e}"
        ) from None
    if not result.succeeded:
        how = (
            f"did not finish within {settings.UPDATES_MIGRATION_TIMEOUT_SECONDS} s"
            if result.timed_out
            else f"exited with code {result.exit_code}"
        )
        raise StepFailed(
            "migration_failed",
            f"The migration `{command}` {how}. Its last lines:\n{result.log_tail.strip()}",
        )
    save_checkpoint(ctx.run, migration_done=True)
    return f"`{command}` succeeded in {result.seconds:.1f} s"


def crash_watch(ctx: Context) -> Callable[[], str | None]:
    """A check that names a container of the project which stopped or restarted."""
    client = ctx.client

    def crashed() -> str | None:
        for service, containers in sorted(
            stack.service_containers(client, ctx.project).items()
        ):
            for container in containers:
                container.reload()
                state = container.attrs.get("State") or {}
                restarts = int(container.attrs.get("RestartCount") or 0)
                stopped = state.get("Status") in ("exited", "dead")
                if not (stopped or restarts > 0 or state.get("Restarting")):
                    continue
                tail = container.logs(tail=10).decode(errors="replace").strip()
                how = (
                    f"it exited with code {state.get('ExitCode')}"
                    if stopped
                    else f"the engine restarted it {restarts} time(s)"
                )
                return (
                    f"Container {container.name} ({service}) stopped soon after it "
                    f"started ({how}). Its last lines:\n{tail}"
                )
        return None

    return crashed


def check_health(ctx: Context) -> str:
    """N consecutive good answers from the new version within the release's timeout."""
    needed = max(ctx.plan.health.successes, 1)
    deadline = time.monotonic() + ctx.plan.health.timeout_seconds
    said_at = 0.0

    def on_probe(result: health.Probe, streak: int) -> None:
        nonlocal said_at
        if result.healthy:
            ctx.report(
                streak / needed, f"Health check: {streak} of {needed} good answers"
            )
        elif time.monotonic() - said_at >= WAIT_REPORT_SECONDS:
            # Not healthy yet: say so, and how long the wait may still take.
            said_at = time.monotonic()
            left = max(0.0, deadline - said_at)
            ctx.report(
                0,
                f"Health check: not healthy yet ({result.reason}); waiting up to "
                f"{round(left)} s more",
                step_left=left,
            )

    result = health.wait_healthy(
        ctx.plan.health,
        expect_version=ctx.plan.to_version,
        crashed=crash_watch(ctx),
        on_probe=on_probe,
    )
    return f"{ctx.plan.health.successes} good answers in a row ({result.status})"


def commit(ctx: Context) -> str:
    """Record the installed version, what the stack now is, and what it left behind."""
    target = ctx.target()
    before = set(ctx.checkpoint.get("volumes_before") or [])
    AgentState.record_installed(ctx.plan.to_version)
    found = standing.record(
        target, ctx.client, left_by=ctx.run.from_version, volumes_before=before
    )
    if ctx.run.kind == UpdateRun.Kind.ROLLBACK:
        source = update_being_undone(ctx.run)
        if source is not None and source.release_id:
            AvailableRelease.objects.filter(pk=source.release_id).update(
                rolled_back=True, rolled_back_at=ctx.run.started_at
            )
    cleaned = remove_old_images(ctx)
    if found:
        return (
            f"CLMS {ctx.plan.to_version} installed; drift found: {'; '.join(found)}; "
            f"{cleaned}"
        )
    return (
        f"CLMS {ctx.plan.to_version} installed; `docker compose up -d` on the project "
        f"now changes nothing; {cleaned}"
    )


def remove_old_images(ctx: Context) -> str:
    """The images of releases older than the one just left go (that one stays,
    for a rollback). Never fails the run: a clean-up that cannot run says why."""
    if not settings.UPDATES_REMOVE_OLD_IMAGES:
        return "old images kept (UPDATES_REMOVE_OLD_IMAGES=false)"
    keep_versions = {ctx.plan.to_version, ctx.run.from_version}
    keep = set(ctx.plan.images.values())
    old: set[str] = set()
    for release in AvailableRelease.objects.all():
        try:
            references = {image.reference for image in release.manifest().images}
        except ManifestError:
            continue
        if release.version in keep_versions:
            keep |= references
        else:
            old |= references
    try:
        return cleanup.remove_unused(ctx.client, old, keep=keep).summary()
    except (docker.errors.DockerException, StepFailed) as e:
        logger.warning("Old images were not removed: %s", e)
        return f"old images not removed ({e})"
