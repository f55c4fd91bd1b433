"""The agent's own compose project: where it is and which containers are its.

The agent runs as a compose project (``AGENT_COMPOSE_PROJECT``: web, worker,
beat; its PostgreSQL and Redis live in a project of their own and are never
touched by a self-update). Its folder follows the same layout as the CLMS
project (``updates.compose.project``): ``compose.yaml`` written by each agent
release, ``.env`` with the installation's settings, ``compose.override.yaml``
of the school's own, ``.clms/`` for the agent's records. A folder not managed
yet (the files the agent was installed with) is adopted by its first update.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import docker
from django.conf import settings

from updates.compose import stack
from updates.compose.project import (
    CONFIG_FILES_LABEL,
    ENV_FILE_LABEL,
    ENV_NAME,
    OVERRIDE_NAME,
    STATE_NAME,
    WORKING_DIR_LABEL,
    Layout,
    ProjectError,
)

# Containers the self-update makes beside the project carry this label (and
# no compose label, so that ``up --remove-orphans`` never takes them).
ROLE_LABEL = "org.clms-updates.selfupdate"


def name() -> str:
    return str(settings.AGENT_COMPOSE_PROJECT)


def containers(client: docker.DockerClient) -> dict[str, list[Any]]:
    """The agent project's service containers by service."""
    return stack.service_containers(client, name())


def layout(client: docker.DockerClient) -> Layout:
    """The agent's project as it stands (its record, else its containers' labels)."""
    running = containers(client)
    labels = [c.labels for cs in running.values() for c in cs]
    if settings.AGENT_PROJECT_DIR:
        directory = Path(settings.AGENT_PROJECT_DIR)
    else:
        found = {lab.get(WORKING_DIR_LABEL, "") for lab in labels} - {""}
        if len(found) != 1:
            raise ProjectError(
                f"The agent's own compose project {name()!r} was not found (no "
                "container carries its label, or they name several folders). Set "
                "AGENT_COMPOSE_PROJECT and AGENT_PROJECT_DIR. Nothing was changed."
            )
        directory = Path(found.pop())
    record = directory / STATE_NAME / "project.json"
    if record.is_file():
        try:
            return Layout.from_dict(json.loads(record.read_text()))
        except (OSError, ValueError, KeyError) as e:
            raise ProjectError(f"{record} cannot be read ({e}).") from None
    files = sorted({lab.get(CONFIG_FILES_LABEL, "") for lab in labels} - {""})
    config = [Path(p) for p in files[0].split(",")] if len(files) == 1 else []
    config = [p if p.is_absolute() else directory / p for p in config]
    config = [p for p in config if p.name != OVERRIDE_NAME] or [
        directory / "compose.yaml"
    ]
    envs = sorted({lab.get(ENV_FILE_LABEL, "") for lab in labels} - {""})
    env_file = Path(envs[0]) if len(envs) == 1 else directory / ENV_NAME
    missing = [str(p) for p in [*config, env_file] if not p.is_file()]
    if missing:
        raise ProjectError(
            f"The agent's project files are not found ({', '.join(missing)}). Set "
            "AGENT_PROJECT_DIR to the folder the agent was installed in."
        )
    return Layout(
        directory=directory,
        name=name(),
        config_files=config,
        env_file=env_file,
        managed=False,
    )


def state_dir(directory: Path) -> Path:
    return directory / STATE_NAME / "selfupdate"
