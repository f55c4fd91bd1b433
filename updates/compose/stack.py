"""What the agent does to the school's stack, all through the Compose CLI.

``up`` applies a project exactly as ``docker compose up -d --remove-orphans``
does (services added, recreated and removed; volumes are never removed);
``resolved`` is compose's own reading of the project (for the policy);
``drift`` compares what runs with what the project says, by compose's own
config hashes.
"""

from __future__ import annotations

import logging
from typing import Any

import docker
import yaml
from django.conf import settings

from clms_updates import composecli as cli
from updates import runtime
from updates.compose.project import Layout, locate, sha256_text

logger = logging.getLogger(__name__)

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
ONEOFF_LABEL = "com.docker.compose.oneoff"
HASH_LABEL = "com.docker.compose.config-hash"
VOLUME_LABEL = "com.docker.compose.volume"


def resolved(layout: Layout, *, with_override: bool = True) -> dict[str, Any]:
    """The project as compose reads it (variables filled in), as a dict."""
    args = layout.arguments()
    if not with_override:
        args = _without_override(args, layout)
    text = cli.run(
        [*args, "config"], timeout=120, what="docker compose config", stdout_only=True
    )
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise cli.ComposeFailed(
            f"compose printed a project that is not YAML: {e}", text
        ) from None
    if not isinstance(data, dict):
        raise cli.ComposeFailed("compose printed no project", text)
    return data


def _without_override(args: list[str], layout: Layout) -> list[str]:
    override = str(layout.override_file)
    cleaned: list[str] = []
    skip = False
    for i, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if arg == "-f" and i + 1 < len(args) and args[i + 1] == override:
            skip = True
            continue
        cleaned.append(arg)
    return cleaned


def up(layout: Layout) -> str:
    """Apply the project: what compose ``up -d --remove-orphans`` prints."""
    return cli.run(
        [*layout.arguments(), "up", "-d", "--remove-orphans"],
        what="docker compose up",
    )


def service_containers(
    client: docker.DockerClient, project: str
) -> dict[str, list[Any]]:
    """The project's service containers by service (one-off containers left out)."""
    found: dict[str, list[Any]] = {}
    for container in client.containers.list(
        all=True, filters={"label": f"{PROJECT_LABEL}={project}"}
    ):
        labels = container.labels
        if labels.get(ONEOFF_LABEL, "False") == "True":
            continue
        found.setdefault(labels.get(SERVICE_LABEL, ""), []).append(container)
    return found


def container_ids(client: docker.DockerClient, project: str) -> dict[str, list[str]]:
    return {
        service: sorted(c.id for c in containers)
        for service, containers in service_containers(client, project).items()
    }


def expected_hashes(layout: Layout) -> dict[str, str]:
    """Service -> the config hash compose would give its container now."""
    text = cli.run(
        [*layout.arguments(), "config", "--hash=*"],
        timeout=120,
        what="docker compose config --hash",
        stdout_only=True,
    )
    hashes = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and len(parts[1]) == 64:
            hashes[parts[0]] = parts[1]
    return hashes


def drift(layout: Layout, client: docker.DockerClient) -> list[str]:
    """How the running stack differs from the project (empty: it matches).

    Compares each service's container with compose's own config hash, and
    the generated ``compose.yaml`` with what the agent wrote.
    """
    found: list[str] = []
    if layout.managed and layout.compose_sha256:
        try:
            written = layout.config_files[0].read_text()
        except OSError:
            written = ""
        if sha256_text(written) != layout.compose_sha256:
            found.append(
                f"{layout.config_files[0]} was edited by hand (changes belong in "
                "compose.override.yaml; the next update writes the vendor's file again)"
            )
    try:
        expected = expected_hashes(layout)
    except cli.ComposeFailed as e:
        return [*found, f"compose cannot read the project: {e}"]
    running = service_containers(client, layout.name)
    for service, digest in sorted(expected.items()):
        containers = running.get(service, [])
        if not containers:
            found.append(
                f"service {service} has no container (stopped or removed by hand)"
            )
            continue
        for container in containers:
            if container.labels.get(HASH_LABEL) != digest:
                found.append(
                    f"container {container.name} of {service} does not match the "
                    "project (it was changed or recreated by hand)"
                )
            elif container.status != "running":
                found.append(
                    f"container {container.name} of {service} is {container.status}"
                )
    for service in sorted(set(running) - set(expected)):
        names = ", ".join(c.name for c in running[service])
        found.append(f"service {service} ({names}) runs but is not in the project")
    return found


def project_volumes(client: docker.DockerClient, project: str) -> dict[str, int]:
    """The project's named volumes (compose's short names) and their sizes in bytes."""
    sizes: dict[str, int] = {}
    try:
        usage = client.df().get("Volumes") or []
    except docker.errors.APIError:
        usage = []
    for volume in usage:
        labels = volume.get("Labels") or {}
        if labels.get(PROJECT_LABEL) != project:
            continue
        name = labels.get(VOLUME_LABEL) or volume.get("Name", "")
        size = int((volume.get("UsageData") or {}).get("Size", -1))
        sizes[name] = size
    return sizes


def locate_school_project() -> Layout:
    """The school's project; the engine is asked for labels only when needed."""

    def labels() -> list[dict[str, str]]:
        running = service_containers(
            runtime.docker_client(), str(settings.CLMS_COMPOSE_PROJECT)
        )
        return [c.labels for containers in running.values() for c in containers]

    return locate(labels)
