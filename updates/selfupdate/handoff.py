"""The hand-off: the agent replaces itself without ever stranding the school.

The process that drives the replacement is never one of the containers being
replaced. An agent update run (``UpdateRun.Kind.AGENT``) has two halves:

1. **In the worker** (``drive_agent_run``, the pipeline's worker): preflight
   (no CLMS run — the runs' one active slot guarantees it —, no backup or
   restore busy, the release verified and newer, the agent's project found),
   fetch the new images by digest, back up and verify the agent's own
   database, save the project's files, and start the **driver**: a one-off
   container of the *running* (known good) agent image, made from the worker
   container's configuration, without compose labels (so ``up
   --remove-orphans`` never takes it), restarted by the engine
   (``unless-stopped``) if it dies or the machine loses power.
2. **In the driver** (``updates.selfupdate.driver``): migrate the database
   with the new image; start a trial of the new web and worker beside the
   old ones and require ``/healthz`` green and a real task answered by the
   new worker; only then apply the new project with ``docker compose up -d
   --remove-orphans`` (the old containers stop here); require the new
   version healthy again and a full check cycle run by it; commit. Any
   failure or timeout puts the old project files back, restores the
   database when the migration had started, brings the old version up and
   checks it. Its progress is a file in the project's ``.clms/selfupdate/``
   (the database may be restored under it), so a restarted driver carries on
   from the last finished step and the result is always exactly one agent.

``recover(run)`` is what a (re)started agent does with an agent run it finds
active: leave it to a live driver, start a driver again if it is gone, or
end a run interrupted before the hand-off (nothing was changed then).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
from django.conf import settings

from backups import operations as backups
from backups.errors import BackupError
from clms_updates import composecli as cli
from clms_updates.manifest import ManifestError, ReleaseManifest, parse_version
from updates import runtime
from updates.compose import targets
from updates.compose.project import Layout, ProjectError, write_atomically
from updates.models import UpdateRun
from updates.pipeline.ending import finish_run
from updates.pipeline.errors import StepFailed
from updates.pipeline.lease import Lease
from updates.pipeline.records import FAILED, begin_step, end_step, save_checkpoint
from updates.selfupdate import database, project
from updates.trust import RELEASE, CheckRefused, verify

logger = logging.getLogger(__name__)

PHASE_ONE = ("preflight", "fetch", "backup", "handoff")
LABELS = {
    "preflight": "Checking that the agent can update itself now",
    "fetch": "Downloading the new agent's images",
    "backup": "Backing up the agent's own database",
    "handoff": "Handing over to the update driver",
}


@dataclass
class AgentContext:
    """What phase one works with."""

    run: UpdateRun
    client: docker.DockerClient
    manifest: ReleaseManifest
    lease: Lease | None = None
    layout: Layout | None = None


def checkpoint_file(directory: Path, run_id: int) -> Path:
    return project.state_dir(directory) / f"run-{run_id}.json"


def read_state(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def write_state(path: Path, state: dict[str, Any]) -> None:
    write_atomically(path, json.dumps(state, indent=2), mode=0o600)


def driver_name(run_id: int) -> str:
    return f"{project.name()}-selfupdate-{run_id}"


def verified_manifest(run: UpdateRun) -> ReleaseManifest:
    """The run's agent release, verified again against the pinned keys."""
    release = run.agent_release
    if release is None:
        raise StepFailed("no_release", "The run names no verified agent release.")
    try:
        verify(
            release.manifest_text.encode("utf-8"),
            release.signature,
            f"agent manifest {release.version}",
            role=RELEASE,
        )
        manifest = release.manifest()
    except (CheckRefused, ManifestError) as e:
        raise StepFailed(
            "verification_failed",
            f"The agent release {release.version} did not verify ({e}); nothing "
            "was changed.",
        ) from None
    if manifest.product != settings.UPDATES_AGENT_PRODUCT:
        raise StepFailed(
            "verification_failed",
            f"{release.version} is a release of {manifest.product!r}, not of the "
            "agent; nothing was changed.",
        )
    return manifest


# ---------------------------------------------------------------------------
# Phase one, in the worker
# ---------------------------------------------------------------------------


def drive_agent_run(run: UpdateRun, lease: Lease | None) -> None:
    """Phase one; the run then belongs to the driver (or ended: nothing changed)."""
    try:
        ctx = AgentContext(run, runtime.docker_client(), verified_manifest(run), lease)
    except (StepFailed, runtime.DockerUnavailable) as e:
        code = e.code if isinstance(e, StepFailed) else "docker_unavailable"
        run.fail(code, str(e.message if isinstance(e, StepFailed) else e))
        finish_run(run)
        return
    for number, name in enumerate(PHASE_ONE):
        percent = number * 10
        begin_step(run, name, LABELS[name], percent=percent)
        try:
            detail = STEP_FUNCTIONS[name](ctx)
        except StepFailed as failure:
            end_step(
                run,
                name,
                f"{name} failed: {failure.message}",
                status=FAILED,
                detail=failure.message,
                percent=percent,
            )
            run.fail(failure.code, failure.message)
            _forget_driver_state(ctx)
            finish_run(run)
            return
        end_step(run, name, f"{name}: {detail}", detail=detail, percent=percent + 10)
        if lease is not None:
            lease.check()


def _preflight(ctx: AgentContext) -> str:
    run, client = ctx.run, ctx.client
    try:
        engine = runtime.engine_version(client)
        compose = cli.find_cli()
    except (runtime.DockerUnavailable, cli.ComposeUnavailable) as e:
        raise StepFailed("docker_unavailable", f"{e} Nothing was changed.") from None
    busy = backups.busy_reason()
    if busy:
        raise StepFailed(
            "backup_active",
            f"{busy} The agent updates itself only when none is. Nothing was "
            "changed; try again when it has finished.",
            transient=True,
        )
    running, target = settings.AGENT_VERSION, ctx.manifest.version
    if parse_version(target) <= parse_version(running):
        raise StepFailed(
            "not_newer",
            f"CLMS Updates {running} runs already; {target} is not newer. Nothing "
            "was changed.",
        )
    try:
        ctx.layout = project.layout(client)
    except ProjectError as e:
        raise StepFailed("project_unknown", str(e)) from None
    found = project.containers(client)
    missing = [s for s in ("web", "worker") if not found.get(s)]
    if missing:
        raise StepFailed(
            "services_not_found",
            f"The agent's project {project.name()!r} runs no {', '.join(missing)}; "
            "nothing was changed.",
        )
    save_checkpoint(run, layout=ctx.layout.as_dict())
    return (
        f"Docker {engine['version']}, {compose.label}; agent project "
        f"{ctx.layout.name} in {ctx.layout.directory}; {running} -> {target}"
    )


def _fetch(ctx: AgentContext) -> str:
    pulled = []
    for image in ctx.manifest.images:
        try:
            runtime.pull_by_digest(ctx.client, image.reference)
        except (runtime.ImageMismatch, runtime.ImageReferenceRefused) as e:
            raise StepFailed("digest_mismatch", str(e)) from None
        except (runtime.ImageNotAvailable, runtime.DockerUnavailable) as e:
            raise StepFailed("pull_failed", str(e), transient=True) from None
        pulled.append(image.service)
    return f"images of {', '.join(pulled)} pulled by digest"


def _backup(ctx: AgentContext) -> str:
    path = Path(settings.BACKUP_DIR) / "agent" / f"run-{ctx.run.pk}.dump"
    try:
        saved = database.back_up(path)
    except (BackupError, OSError) as e:
        raise StepFailed(
            "backup_failed",
            f"The agent's database could not be backed up: {e}. Nothing was changed.",
        ) from None
    save_checkpoint(ctx.run, agent_backup=saved)
    return f"{saved['rows']} rows copied to {path} and verified"


def _handoff(ctx: AgentContext) -> str:
    run, client, layout = ctx.run, ctx.client, ctx.layout
    assert layout is not None
    try:
        snapshot = targets.save_snapshot(layout, run.pk)
    except ProjectError as e:
        raise StepFailed("project_write_failed", str(e)) from None
    state = {
        "run": run.pk,
        "from": settings.AGENT_VERSION,
        "to": ctx.manifest.version,
        "manifest": run.agent_release.manifest_text if run.agent_release else "",
        "images": {i.service: i.reference for i in ctx.manifest.images},
        "backup": run.checkpoint["agent_backup"],
        "snapshot": str(snapshot),
        "layout": layout.as_dict(),
        "done": [],
    }
    path = checkpoint_file(layout.directory, run.pk)
    write_state(path, state)
    name = start_driver(client, run.pk, path)
    save_checkpoint(run, driver=name, state_file=str(path))
    UpdateRun.objects.filter(pk=run.pk).update(worker=f"driver:{name}")
    return f"the driver {name} carries on (its progress: {path})"


def start_driver(client: docker.DockerClient, run_id: int, state: Path) -> str:
    """Start (or restart) the driver container of run ``run_id`` from the worker."""
    name = driver_name(run_id)
    try:
        existing = client.containers.get(name)
    except docker.errors.NotFound:
        existing = None
    if existing is not None:
        if existing.status != "running":
            existing.start()
        return name
    workers = project.containers(client).get("worker") or []
    if not workers:
        raise StepFailed(
            "services_not_found", "No agent worker runs to start the driver from."
        )
    snapshot = runtime.snapshot_container(client, workers[0])
    config = dict(snapshot.config)
    config["Cmd"] = [
        "python",
        "manage.py",
        "self_update_driver",
        str(run_id),
        "--state",
        str(state),
    ]
    config["Entrypoint"] = None
    config["Healthcheck"] = {"Test": ["NONE"]}
    config["Labels"] = {
        **{
            k: v
            for k, v in (config.get("Labels") or {}).items()
            if not k.startswith("com.docker.compose.")
        },
        project.ROLE_LABEL: "driver",
        "org.clms-updates.run": str(run_id),
    }
    host_config = dict(snapshot.host_config)
    host_config["RestartPolicy"] = {"Name": "unless-stopped"}
    host_config["PortBindings"] = {}
    from updates.runtime.snapshots import create_from_snapshot

    container = create_from_snapshot(
        client,
        snapshot,
        image=snapshot.image_id,
        name=name,
        config=config,
        host_config=host_config,
    )
    container.start()
    return name


def _forget_driver_state(ctx: AgentContext) -> None:
    if ctx.layout is not None:
        checkpoint_file(ctx.layout.directory, ctx.run.pk).unlink(missing_ok=True)


STEP_FUNCTIONS = {
    "preflight": _preflight,
    "fetch": _fetch,
    "backup": _backup,
    "handoff": _handoff,
}


# ---------------------------------------------------------------------------
# Recovery, in any (re)started agent
# ---------------------------------------------------------------------------


def recover(run: UpdateRun) -> bool:
    """An active agent run found by recovery: True when something was done for it."""
    name = run.checkpoint.get("driver")
    if not name:
        run.fail(
            "interrupted",
            "The agent stopped before it handed the update over; nothing was "
            "changed. Start the agent update again.",
        )
        finish_run(run)
        return True
    try:
        client = runtime.docker_client()
        container = client.containers.get(name)
    except docker.errors.NotFound:
        container = None
    except runtime.DockerUnavailable:
        return False
    if container is not None and container.status in ("running", "restarting"):
        return False
    logger.warning("Agent update run %s: starting its driver %s again", run.pk, name)
    try:
        start_driver(client, run.pk, Path(run.checkpoint["state_file"]))
    except (StepFailed, docker.errors.APIError) as e:
        logger.error("Agent update run %s: its driver cannot start: %s", run.pk, e)
        return False
    return True


def active_agent_run() -> UpdateRun | None:
    return (
        UpdateRun.objects.filter(kind=UpdateRun.Kind.AGENT)
        .exclude(state__in=UpdateRun.TERMINAL_STATES)
        .first()
    )


def remove_finished_drivers() -> list[str]:
    """Remove the driver containers of agent runs that ended (the new agent's tidy-up)."""
    try:
        client = runtime.docker_client()
        found = client.containers.list(
            all=True, filters={"label": f"{project.ROLE_LABEL}=driver"}
        )
    except (runtime.DockerUnavailable, docker.errors.APIError):
        return []
    removed = []
    for container in found:
        run_id = container.labels.get("org.clms-updates.run", "")
        run = (
            UpdateRun.objects.filter(pk=int(run_id)).first()
            if run_id.isdigit()
            else None
        )
        if container.status == "running" or (run is not None and not run.is_terminal):
            continue
        try:
            container.remove(force=True)
        except docker.errors.APIError:
            continue
        removed.append(container.name)
    return removed
