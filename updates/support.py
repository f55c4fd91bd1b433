"""A support bundle: what the vendor's support needs when something went wrong
at a school, in one ZIP the school admin downloads and sends, with every
secret taken out first.

What goes in (each a file in the ZIP): ``summary.json`` (versions, the next
step, enforcement, online state, health), ``runs.json`` (the last runs with
their steps and logs), ``checks.json``, ``backups.json``, ``audit.json`` (the
last entries), ``settings.json`` (the agent's settings with secrets replaced),
``project/`` (the compose files as written, the ``.env`` with every value the
release declares secret replaced), ``containers.json`` (the project's
containers as the engine reports them). Secrets are removed by the error
tracker's rules (``clms_updates.errortracking``): fields named like secrets,
and any text containing the value of a secret setting or of a secret the
school gave a release.
"""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime
from typing import Any

import docker
from django.conf import settings
from django.utils import timezone

from backups.models import Backup
from clms_updates import errortracking, health
from clms_updates.models import AuditEntry
from updates import next_action, runtime
from updates.compose import project
from updates.compose import stack as compose_stack
from updates.compose.values import declared_settings
from updates.enforcement.state import enforcement_state
from updates.models import AgentState, UpdateCheck, UpdateRun

RUNS = 20
CHECKS = 50
AUDIT_ENTRIES = 200


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2, default=str, sort_keys=True).encode()


def _secrets() -> set[str]:
    """Values that must not leave: secret settings, and secret release settings."""
    config = {name: getattr(settings, name) for name in dir(settings) if name.isupper()}
    found = errortracking.secret_values(config)
    try:
        layout = compose_stack.locate_school_project()
        env = project.read_env(layout.env_file)
    except (project.ProjectError, runtime.DockerUnavailable, OSError):
        return found
    for name, setting in declared_settings().items():
        value = env.get(name, "")
        if (setting.secret or errortracking.SECRET_NAME.search(name)) and value:
            found.add(value)
    return found


def _agent_settings() -> dict[str, Any]:
    return {
        name: getattr(settings, name)
        for name in dir(settings)
        if name.isupper()
        and name.startswith(("UPDATES_", "BACKUP_", "CLMS_", "AGENT_", "HEALTHZ_"))
    }


def _project_files(files: dict[str, bytes]) -> str:
    try:
        layout = compose_stack.locate_school_project()
    except (project.ProjectError, runtime.DockerUnavailable) as e:
        return str(e)
    for path in [*layout.config_files, layout.env_file]:
        try:
            files[f"project/{path.name}"] = path.read_bytes()
        except OSError as e:
            files[f"project/{path.name}.unreadable"] = str(e).encode()
    return str(layout.directory)


def _containers() -> list[dict[str, Any]] | str:
    try:
        by_service = compose_stack.service_containers(
            runtime.docker_client(), str(settings.CLMS_COMPOSE_PROJECT)
        )
    except (runtime.DockerUnavailable, docker.errors.DockerException) as e:
        return f"the Docker engine did not answer: {e}"
    return [
        {
            "service": service,
            "name": c.name,
            "image": c.attrs.get("Config", {}).get("Image"),
            "status": c.status,
            "health": (c.attrs.get("State", {}).get("Health") or {}).get("Status"),
            "started_at": c.attrs.get("State", {}).get("StartedAt"),
        }
        for service, containers in sorted(by_service.items())
        for c in containers
    ]


def build(now: datetime | None = None) -> tuple[str, bytes]:
    """The bundle's file name and its bytes (a ZIP), secrets removed."""
    now = now or timezone.now()
    state = AgentState.load()
    step = next_action.next_action(now)
    files: dict[str, bytes] = {}
    directory = _project_files(files)
    files["summary.json"] = _json(
        {
            "made_at": now,
            "agent_version": settings.AGENT_VERSION,
            "installed_version": state.installed_version,
            "online": not state.offline,
            "offline_reason": state.offline_reason,
            "last_good_check_at": state.last_good_check_at,
            "next_step": step.as_dict(),
            "enforcement": enforcement_state(now).as_dict(),
            "health": [c.as_dict() for c in health.check_all()],
            "project_directory": directory,
            "drift": state.drift,
        }
    )
    files["runs.json"] = _json(
        list(
            UpdateRun.objects.values(
                "id",
                "kind",
                "state",
                "from_version",
                "to_version",
                "created_at",
                "started_at",
                "finished_at",
                "error_code",
                "error_message",
                "steps",
                "log",
            )[:RUNS]
        )
    )
    files["checks.json"] = _json(
        list(UpdateCheck.objects.values("started_at", "outcome", "reason")[:CHECKS])
    )
    files["backups.json"] = _json(
        list(
            Backup.objects.values(
                "name",
                "status",
                "reason",
                "clms_version",
                "size",
                "created_at",
                "verified_at",
                "failure_reason",
            )
        )
    )
    files["audit.json"] = _json(
        list(
            AuditEntry.objects.values(
                "created_at", "action", "username", "address", "target", "detail"
            )[:AUDIT_ENTRIES]
        )
    )
    files["settings.json"] = _json(_agent_settings())
    files["containers.json"] = _json(_containers())

    secrets = _secrets()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(files.items()):
            archive.writestr(name, _redacted(name, data, secrets))
    return f"clms-support-{now:%Y%m%d-%H%M%S}.zip", buffer.getvalue()


def _redacted(name: str, data: bytes, secrets: set[str]) -> bytes:
    """JSON by its field names and values; other text (compose, .env) line by line."""
    text = data.decode("utf-8", errors="replace")
    if name.endswith(".json"):
        return _json(errortracking.scrub(json.loads(text), secrets))
    lines = []
    for line in text.splitlines():
        key, sep, _ = line.partition("=")
        if name.endswith(".env") and sep and errortracking.SECRET_NAME.search(key):
            line = f"{key}={errortracking.FILTERED}"
        lines.append(errortracking.scrub(line, secrets))
    return ("\n".join(lines) + "\n").encode()
