"""The steps that change the stack: apply, migrate, health, commit.

Each checks what an interrupted earlier pass already did (the checkpoint, the
engine's own state) before acting, so running it twice has the effect of
running it once. A failure here rolls back (see ``rollback``).
"""

from __future__ import annotations

from collections.abc import Callable

import docker
from django.conf import settings

from updates import runtime
from updates.models import AgentState, AvailableRelease, UpdateRun
from updates.pipeline import health
from updates.pipeline.context import Context
from updates.pipeline.errors import StepFailed
from updates.pipeline.plan import image_variable, update_being_undone
from updates.pipeline.records import save_checkpoint

# ---------------------------------------------------------------------------
# apply, migrate, health, commit
# ---------------------------------------------------------------------------


def apply(ctx: Context) -> str:
    """Recreate each service's containers on the new image; old ones kept stopped."""
    client = ctx.client
    containers = ctx.container_names()
    env_file = ctx.env_file()
    if "previous" not in ctx.checkpoint:
        previous = {}
        for name, service in containers.items():
            snapshot = runtime.snapshot_container(client, client.containers.get(name))
            previous[name] = {
                "service": service,
                "image": snapshot.image,
                "image_id": snapshot.image_id,
            }
        variables = {image_variable(s) for s in ctx.plan.images}
        try:
            current = runtime.read_env_file(env_file)
        except runtime.EnvFileError as e:
            raise StepFailed("env_file", str(e)) from None
        save_checkpoint(
            ctx.run,
            previous=previous,
            env_before={v: current.get(v, "") for v in sorted(variables)},
        )
    applied = list(ctx.checkpoint.get("applied") or [])
    # The service the migration runs beside (the one serving CLMS) goes last:
    # it cannot answer until the migration is done, so its outage is shortest.
    first = ctx.plan.migration.service if ctx.plan.migration else ""
    order = sorted(containers.items(), key=lambda item: (item[1] == first, item[0]))
    for name, service in order:
        ctx.check_lease()
        try:
            runtime.recreate_container(
                client,
                name,
                ctx.image_for(service),
                stop_timeout=settings.UPDATES_STOP_TIMEOUT_SECONDS,
            )
        except (runtime.DockerRuntimeError, docker.errors.APIError) as e:
            raise StepFailed("apply_failed", f"Recreating {name} failed: {e}") from None
        if name not in applied:
            applied.append(name)
            save_checkpoint(ctx.run, applied=applied)
    try:
        runtime.update_env_file(
            env_file,
            {image_variable(s): ref for s, ref in sorted(ctx.plan.images.items())},
        )
    except runtime.EnvFileError as e:
        raise StepFailed("env_file", str(e)) from None
    return f"{len(applied)} container(s) recreated; {env_file} updated"


def migrate(ctx: Context) -> str | None:
    """Run the release's migration once in a one-off container; None when it has none."""
    migration = ctx.plan.migration
    if migration is None:
        return None
    names = [
        n for n, s in sorted(ctx.container_names().items()) if s == migration.service
    ]
    if not names:
        raise StepFailed(
            "migration_service_missing",
            f"No container of service {migration.service} to run the migration beside.",
        )
    if not ctx.checkpoint.get("migration_started"):
        save_checkpoint(ctx.run, migration_started=True)
    client = ctx.client
    try:
        snapshot = runtime.snapshot_container(client, client.containers.get(names[0]))
        result = runtime.run_one_off(
            client,
            snapshot,
            ctx.image_for(migration.service),
            list(migration.command),
            purpose="migrate",
            timeout=settings.UPDATES_MIGRATION_TIMEOUT_SECONDS,
        )
    except (runtime.DockerRuntimeError, docker.errors.APIError) as e:
        raise StepFailed(
            "migration_failed", f"The migration could not be started: {e}"
        ) from None
    command = " ".join(migration.command)
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
    """A check that names a new container which stopped or restarted, if any."""
    client = ctx.client
    names = sorted(ctx.container_names())

    def crashed() -> str | None:
        for name in names:
            try:
                container = client.containers.get(name)
            except docker.errors.NotFound:
                return f"Container {name} disappeared while CLMS was starting."
            state = container.attrs.get("State") or {}
            restarts = int(container.attrs.get("RestartCount") or 0)
            if (
                state.get("Status") in ("exited", "dead")
                or restarts > 0
                or state.get("Restarting")
            ):
                tail = container.logs(tail=10).decode(errors="replace").strip()
                if state.get("Status") in ("exited", "dead"):
                    how = f"it exited with code {state.get('ExitCode')}"
                else:
                    how = f"the engine restarted it {restarts} time(s)"
                return (
                    f"Container {name} stopped soon after it started ({how}). Its "
                    f"last lines:\n{tail}"
                )
        return None

    return crashed


def check_health(ctx: Context) -> str:
    """N consecutive good answers from the new version within the release's timeout."""
    needed = max(ctx.plan.health.successes, 1)

    def on_probe(result: health.Probe, streak: int) -> None:
        if result.healthy:
            ctx.report(
                streak / needed, f"Health check: {streak} of {needed} good answers"
            )

    result = health.wait_healthy(
        ctx.plan.health,
        expect_version=ctx.plan.to_version,
        crashed=crash_watch(ctx),
        on_probe=on_probe,
    )
    return f"{ctx.plan.health.successes} good answers in a row ({result.status})"


def commit(ctx: Context) -> str:
    """Drop the old containers, record the installed version."""
    removed = 0
    for name in sorted(ctx.container_names()):
        try:
            removed += runtime.remove_previous(ctx.client, name)
        except docker.errors.APIError as e:
            raise StepFailed(
                "commit_failed", f"Removing {name}'s previous container failed: {e}"
            ) from None
    AgentState.load()
    AgentState.objects.filter(pk=1).update(installed_version=ctx.plan.to_version)
    if ctx.run.kind == UpdateRun.Kind.ROLLBACK:
        source = update_being_undone(ctx.run)
        if source is not None and source.release_id:
            AvailableRelease.objects.filter(pk=source.release_id).update(
                rolled_back=True, rolled_back_at=ctx.run.started_at
            )
    return f"CLMS {ctx.plan.to_version} installed; {removed} old container(s) removed"
