"""The update driver: the second half of an agent update, in a container of its own.

Started by the hand-off (``handoff``) from the running agent's image; run as
``manage.py self_update_driver RUN --state FILE``. Its progress is the state
file (the agent's database may be restored under it): each step is recorded
there as it ends, so a driver the engine restarts after a crash or a power
loss carries on from the last finished step, or finishes the rollback.

Steps: ``migrate`` (the new image's migrations, in a one-off), ``trial`` (the
new web and worker beside the old ones: ``/healthz`` green and a real task
answered by the new worker), ``switch`` (the new project applied with
``docker compose up -d --remove-orphans``), ``verify`` (the new version
healthy under the project, and a full check for updates run by it). Then the
run is recorded as succeeded, or rolled back (``roll_back``) and recorded.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from backups.errors import BackupError
from clms_updates import audit
from clms_updates import composecli as cli
from clms_updates.manifest import parse_manifest
from updates import runtime
from updates.compose import stack, targets
from updates.compose.project import Layout, ProjectError
from updates.compose.project import restore as restore_files
from updates.models import AgentRelease, UpdateCheck, UpdateRun
from updates.pipeline.ending import finish_run
from updates.pipeline.records import FAILED, begin_step, end_step
from updates.runtime.snapshots import create_from_snapshot
from updates.selfupdate import database, project
from updates.selfupdate.handoff import driver_name, read_state, write_state

logger = logging.getLogger(__name__)

STEPS = ("migrate", "trial", "switch", "verify")
LABELS = {
    "migrate": "Migrating the agent's database with the new version",
    "trial": "Trying the new agent beside the running one",
    "switch": "Switching to the new agent",
    "verify": "Checking the new agent and its first check for updates",
}
PORT_VARIABLE = "CLMS_UPDATES_HTTP_PORT"
# How many times AGENT_HEALTH_TIMEOUT_SECONDS the old agent has to come back.
ROLLBACK_PATIENCE = 3


class HandoffFailed(Exception):
    """A step of the hand-off failed: the old agent is brought back."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Heartbeat:
    """Keeps the run's lease fresh while the driver works (the recovery leaves it)."""

    def __init__(self, run_id: int, owner: str) -> None:
        self.run_id, self.owner = run_id, owner
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)

    def _beat(self) -> None:
        while not self.stopped.is_set():
            with contextlib.suppress(DatabaseError):
                UpdateRun.objects.filter(pk=self.run_id).update(
                    heartbeat_at=timezone.now(), worker=self.owner
                )
            close_old_connections()
            self.stopped.wait(3)


# ---------------------------------------------------------------------------
# The run of the driver
# ---------------------------------------------------------------------------


def drive(run_id: int, state_path: Path) -> str:
    """Carry the hand-off of run ``run_id`` to its end; the outcome."""
    state = read_state(state_path)
    client = runtime.docker_client()
    with Heartbeat(run_id, f"driver:{driver_name(run_id)}"):
        if not state.get("outcome"):
            try:
                for step in STEPS:
                    if step in state["done"]:
                        continue
                    _record(run_id, step, begin=True)
                    detail = STEP_FUNCTIONS[step](client, state, state_path)
                    state["done"].append(step)
                    write_state(state_path, state)
                    _record(run_id, step, detail=detail)
                state["outcome"] = "succeeded"
                write_state(state_path, state)
            except HandoffFailed as e:
                state["failure"] = {"code": e.code, "message": e.message}
                write_state(state_path, state)
                _record(run_id, _current(state), detail=e.message, failed=True)
            if state.get("failure"):
                roll_back(client, state, state_path)
        _record_outcome(state)
    _stop_restarting(client, run_id)
    return str(state["outcome"])


def _current(state: dict[str, Any]) -> str:
    return next((s for s in STEPS if s not in state["done"]), STEPS[-1])


def _record(
    run_id: int,
    step: str,
    *,
    begin: bool = False,
    detail: str = "",
    failed: bool = False,
) -> None:
    """Show the step on the run's page (never fatal: the database may be away)."""
    try:
        run = UpdateRun.objects.get(pk=run_id)
        percent = 40 + STEPS.index(step) * 15
        if begin:
            begin_step(run, step, LABELS[step], percent=percent)
        elif failed:
            end_step(
                run, step, f"{step} failed: {detail}", status=FAILED, detail=detail
            )
        else:
            end_step(
                run, step, f"{step}: {detail}", detail=detail, percent=percent + 15
            )
    except (DatabaseError, UpdateRun.DoesNotExist) as e:
        logger.warning("Run %s: step %s not recorded on the run: %s", run_id, step, e)
    finally:
        close_old_connections()


def _stop_restarting(client: docker.DockerClient, run_id: int) -> None:
    """The driver is done: the engine must not start it again, and it goes away.

    Removing its own container ends this process: it is the very last thing.
    """
    with contextlib.suppress(docker.errors.APIError):
        container = client.containers.get(driver_name(run_id))
        container.update(restart_policy={"Name": "no"})
        container.remove(force=True)


# ---------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------


def _old_layout(state: dict[str, Any]) -> Layout:
    return Layout.from_dict(state["layout"])


def _service(client: docker.DockerClient, service: str) -> Any:
    found = project.containers(client).get(service) or []
    if not found:
        raise HandoffFailed(
            "services_not_found", f"The agent's project runs no {service} container."
        )
    return found[0]


def _migrate(client: docker.DockerClient, state: dict[str, Any], path: Path) -> str:
    manifest = parse_manifest(state["manifest"].encode("utf-8"))
    try:
        staged = targets.stage(
            _old_layout(state), manifest, state["images"], run_id=state["run"]
        )
    except (ProjectError, cli.ComposeFailed) as e:
        raise HandoffFailed(
            "project_invalid", f"The new agent's project: {e}"
        ) from None
    state["staged"] = staged.as_dict()
    state["migration_started"] = True
    write_state(path, state)
    snapshot = runtime.snapshot_container(client, _service(client, "worker"))
    result = runtime.run_one_off(
        client,
        snapshot,
        state["images"].get("worker") or next(iter(state["images"].values())),
        ["python", "manage.py", "migrate", "--noinput"],
        purpose=f"selfupdate-migrate-{state['run']}",
        timeout=settings.UPDATES_MIGRATION_TIMEOUT_SECONDS,
    )
    if not result.succeeded:
        raise HandoffFailed(
            "migration_failed",
            "The new agent's migration "
            + ("timed out" if result.timed_out else f"exited with {result.exit_code}")
            + f". Its last lines:\n{result.log_tail.strip()[-1500:]}",
        )
    return f"migrated in {result.seconds:.1f} s"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _trial_container(
    client: docker.DockerClient,
    state: dict[str, Any],
    service: str,
    env: dict[str, str],
) -> Any:
    snapshot = runtime.snapshot_container(client, _service(client, service))
    config = dict(snapshot.config)
    kept = [
        item for item in config.get("Env") or [] if item.split("=", 1)[0] not in env
    ]
    config["Env"] = kept + [f"{k}={v}" for k, v in env.items()]
    config["Labels"] = {
        **{
            k: v
            for k, v in (config.get("Labels") or {}).items()
            if not k.startswith("com.docker.compose.")
        },
        project.ROLE_LABEL: "trial",
        "org.clms-updates.run": str(state["run"]),
    }
    config["Healthcheck"] = {"Test": ["NONE"]}
    host_config = dict(snapshot.host_config)
    host_config["RestartPolicy"] = {"Name": "no"}
    host_config["PortBindings"] = {}
    name = f"{project.name()}-trial-{service}-{state['run']}"
    with contextlib.suppress(docker.errors.NotFound):
        client.containers.get(name).remove(force=True)
    container = create_from_snapshot(
        client,
        snapshot,
        image=state["images"][service],
        name=name,
        config=config,
        host_config=host_config,
    )
    container.start()
    return container


def remove_trial(client: docker.DockerClient, run_id: int) -> None:
    for container in client.containers.list(
        all=True,
        filters={
            "label": [f"{project.ROLE_LABEL}=trial", f"org.clms-updates.run={run_id}"]
        },
    ):
        container.remove(force=True)


def _trial(client: docker.DockerClient, state: dict[str, Any], path: Path) -> str:
    port = settings.AGENT_TRIAL_PORT or _free_port()
    queue = f"selfupdate-{state['run']}"
    web = _trial_container(client, state, "web", {PORT_VARIABLE: str(port)})
    worker = _trial_container(
        client,
        state,
        "worker",
        {"CLMS_WORKER_NAME": f"trial-{state['run']}", "CLMS_WORKER_QUEUES": queue},
    )
    try:
        seconds = wait_healthy(
            client,
            web,
            port,
            version=state["to"],
            queue=queue,
            watch=[web, worker],
        )
    except HandoffFailed:
        remove_trial(client, state["run"])
        raise
    return f"the new agent answered /healthz and a task in {seconds:.1f} s"


def _switch(client: docker.DockerClient, state: dict[str, Any], path: Path) -> str:
    remove_trial(client, state["run"])
    state["installed"] = True
    write_state(path, state)
    try:
        final = targets.install(Layout.from_dict(state["staged"]), _old_layout(state))
        output = stack.up(final)
    except (ProjectError, cli.ComposeFailed) as e:
        raise HandoffFailed(
            "apply_failed", f"Applying the new agent failed: {e}"
        ) from None
    state["final"] = final.as_dict()
    write_state(path, state)
    return (
        "; ".join(
            line.strip()
            for line in output.splitlines()
            if "done" in line or "Started" in line
        )[:500]
        or "project applied"
    )


def _verify(client: docker.DockerClient, state: dict[str, Any], path: Path) -> str:
    web = _service(client, "web")
    seconds = wait_healthy(
        client, web, _port_of(web), version=state["to"], queue="", watch=[web]
    )
    outcome = _check_cycle()
    targets.discard(_old_layout(state), state["run"])
    return f"healthy after {seconds:.1f} s; its first check for updates: {outcome}"


STEP_FUNCTIONS: dict[
    str, Callable[[docker.DockerClient, dict[str, Any], Path], str]
] = {
    "migrate": _migrate,
    "trial": _trial,
    "switch": _switch,
    "verify": _verify,
}


# ---------------------------------------------------------------------------
# Health
# ---------------------------------------------------------------------------


def _port_of(container: Any) -> int:
    container.reload()
    for item in container.attrs["Config"].get("Env") or []:
        name, _, value = item.partition("=")
        if name == PORT_VARIABLE and value.isdigit():
            return int(value)
    return 8000


def _address(container: Any) -> str:
    container.reload()
    if container.attrs["HostConfig"].get("NetworkMode") == "host":
        return "127.0.0.1"
    networks = container.attrs["NetworkSettings"].get("Networks") or {}
    for endpoint in networks.values():
        if endpoint.get("IPAddress"):
            return str(endpoint["IPAddress"])
    return "127.0.0.1"


def _healthz(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 (a URL we built)
            return answer.status, answer.read(4000).decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read(4000).decode(errors="replace")
    except OSError as e:
        return 0, str(e)


def _ping(version: str, queue: str) -> str:
    """Send a real task; '' when a worker of ``version`` answered, else why not."""
    from clms_updates.celery import app

    nonce = secrets.token_hex(8)
    try:
        reply = app.send_task("core.ping", args=[nonce], queue=queue or None).get(
            timeout=10
        )
    except Exception as e:
        return f"no worker answered a task ({type(e).__name__}: {e})"
    if reply.get("nonce") != nonce:
        return "a worker answered with the wrong result"
    if reply.get("version") != version:
        return f"the worker that answered runs {reply.get('version')}, not {version}"
    return ""


def wait_healthy(
    client: docker.DockerClient,
    web: Any,
    port: int,
    *,
    version: str,
    queue: str,
    watch: list[Any],
    timeout: float = 0,
) -> float:
    """Wait for ``/healthz`` green and a task answered by ``version``; seconds taken.

    ``timeout`` defaults to ``AGENT_HEALTH_TIMEOUT_SECONDS``.
    """
    timeout = timeout or settings.AGENT_HEALTH_TIMEOUT_SECONDS
    started = time.monotonic()
    deadline = started + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        for container in watch:
            container.reload()
            if container.status in ("exited", "dead"):
                tail = container.logs(tail=15).decode(errors="replace").strip()
                raise HandoffFailed(
                    "agent_crashed",
                    f"{container.name} stopped (exit {container.attrs['State']['ExitCode']}). "
                    f"Its last lines:\n{tail[-1500:]}",
                )
        status, body = _healthz(f"http://{_address(web)}:{port}/healthz")
        if status == 200:
            problem = _ping(version, queue)
            if not problem:
                return time.monotonic() - started
            last = problem
        else:
            last = f"/healthz answered {status or 'nothing'}: {_down(body)}"
        time.sleep(1)
    raise HandoffFailed(
        "health_check_failed",
        f"CLMS Updates {version} did not become healthy within {timeout:g} s: {last}",
    )


def _down(body: str) -> str:
    try:
        components = json.loads(body).get("components") or {}
    except (ValueError, AttributeError):
        return body[:300]
    down = [f"{n}: {c.get('detail')}" for n, c in components.items() if not c.get("up")]
    return "; ".join(down)[:600] or body[:300]


def _check_cycle() -> str:
    """A full check for updates run by a new worker; its outcome (refused/error fail).

    The check task keeps no result: the check it records is what is waited for.
    """
    from clms_updates.celery import app

    sent = timezone.now()
    app.send_task("updates.check", kwargs={"trigger": "periodic"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        close_old_connections()
        check = (
            UpdateCheck.objects.filter(started_at__gte=sent, finished_at__isnull=False)
            .order_by("started_at")
            .first()
        )
        if check is not None:
            if check.outcome in (
                UpdateCheck.Outcome.ERROR,
                UpdateCheck.Outcome.REFUSED,
            ):
                raise HandoffFailed(
                    "check_failed",
                    f"The new agent's first check for updates ended {check.outcome}: "
                    f"{check.reason}",
                )
            return str(check.outcome)
        time.sleep(1)
    raise HandoffFailed(
        "check_failed", "The new agent ran no check for updates within 120 s."
    )


# ---------------------------------------------------------------------------
# Rollback and the record of the outcome
# ---------------------------------------------------------------------------


def roll_back(client: docker.DockerClient, state: dict[str, Any], path: Path) -> None:
    """Bring the old agent back with its database as it was; record how it went."""
    old = _old_layout(state)
    try:
        remove_trial(client, state["run"])
        if state.get("installed"):
            old = restore_files(targets.load_snapshot(Path(state["snapshot"])))
        if state.get("migration_started") and not state.get("database_restored"):
            with contextlib.suppress(cli.ComposeFailed):
                cli.run([*old.arguments(), "stop"], what="docker compose stop")
            close_old_connections()
            database.restore(state["backup"])
            state["database_restored"] = True
            write_state(path, state)
        stack.up(old)
        web = _service(client, "web")
        # The known-good version gets more patience than the new one had: giving
        # up here leaves the school's agent unverified.
        wait_healthy(
            client,
            web,
            _port_of(web),
            version=state["from"],
            queue="",
            watch=[web],
            timeout=ROLLBACK_PATIENCE * settings.AGENT_HEALTH_TIMEOUT_SECONDS,
        )
        targets.discard(old, state["run"])
        state["outcome"] = "rolled_back"
    except (HandoffFailed, BackupError, ProjectError, cli.ComposeFailed, OSError) as e:
        state["outcome"] = "failed"
        state["rollback_error"] = str(e)
    write_state(path, state)


def _record_outcome(state: dict[str, Any]) -> None:
    """Write the outcome on the run (after a restore the row is as it was backed up)."""
    close_old_connections()
    run = UpdateRun.objects.get(pk=state["run"])
    if run.is_terminal:
        return
    outcome = state["outcome"]
    failure = state.get("failure") or {}
    if outcome == "succeeded":
        run.succeed()
    else:
        message = failure.get("message", "")
        run.error_code = failure.get("code", "handoff_failed")[:64]
        run.error_message = message
        run.save(update_fields=["error_code", "error_message"])
        if run.state == UpdateRun.State.RUNNING:
            run.start_rollback(f"{run.error_code}: {message}")
        if outcome == "rolled_back":
            run.finish_rollback()
            AgentRelease.objects.filter(version=state["to"]).update(rolled_back=True)
        else:
            run.fail(
                "rollback_failed",
                f"{message} Then bringing the old agent back failed: "
                f"{state.get('rollback_error', '')}",
            )
    audit.record(
        "updates.agent_update.finished",
        actor=None,
        target=f"run {run.pk}",
        outcome=run.state,
        from_version=state["from"],
        to_version=state["to"],
        error_code=run.error_code,
    )
    finish_run(run)
