"""Find a compose project's services; recreate and restore their containers.

A service's container is recreated from a snapshot of its own configuration
(taken from ``docker inspect``) with only the image changed, the way ``docker
compose up`` would after an image change. The old container is stopped and
renamed ``<name>-previous`` (its restart policy set to ``no`` so an engine
restart cannot start it) and stays until ``remove_previous``; ``restore_previous``
brings it back. Each function checks where an interrupted earlier call left
off, so the pipeline can call it again after a crash.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import docker
from docker.models.containers import Container

from updates.runtime.errors import (
    ImageNotAvailable,
    NoPreviousContainer,
    RecreateFailed,
    ServicesNotFound,
)
from updates.runtime.snapshots import (
    ONEOFF_LABEL,
    PREVIOUS_SUFFIX,
    PROJECT_LABEL,
    SERVICE_LABEL,
    ContainerSnapshot,
    create_from_snapshot,
    snapshot_container,
)

logger = logging.getLogger(__name__)


def find_services(
    client: docker.DockerClient, project: str
) -> dict[str, list[Container]]:
    """The project's service containers by service name (one-offs and previous ones left out)."""
    services: dict[str, list[Container]] = {}
    for container in client.containers.list(
        all=True, filters={"label": f"{PROJECT_LABEL}={project}"}
    ):
        labels = container.labels
        if labels.get(ONEOFF_LABEL, "False") == "True" or container.name.endswith(
            PREVIOUS_SUFFIX
        ):
            continue
        services.setdefault(labels.get(SERVICE_LABEL, ""), []).append(container)
    if not services:
        raise ServicesNotFound(
            f"No container carries the label {PROJECT_LABEL}={project}. Check that the "
            "CLMS stack is running and that the configured compose project name is the "
            "one `docker compose ls` shows."
        )
    for containers in services.values():
        containers.sort(key=lambda c: c.name)
    return dict(sorted(services.items()))


def _get(client: docker.DockerClient, name: str) -> Container | None:
    try:
        return client.containers.get(name)
    except docker.errors.NotFound:
        return None


def previous_container(client: docker.DockerClient, name: str) -> Container | None:
    """The stopped ``<name>-previous`` container kept by ``recreate_container``, if any."""
    return _get(client, name + PREVIOUS_SUFFIX)


def recreate_container(
    client: docker.DockerClient,
    name: str,
    image: str,
    *,
    stop_timeout: int = 10,
) -> tuple[Container, ContainerSnapshot]:
    """Replace container ``name`` by one with the same configuration and ``image``.

    1. If ``<name>-previous`` exists and ``name`` already runs ``image``, an
       earlier call finished: return as is. If ``name`` is missing, an earlier
       call stopped after the rename: create from the previous one's snapshot.
       A leftover previous from an older update (``name`` on another image) is
       removed first.
    2. Snapshot ``name``, stop it, set its restart policy to ``no`` and rename
       it ``<name>-previous``.
    3. Create and start the new container. If that fails, the new one is
       removed, the old one is brought back, and RecreateFailed is raised.

    ``image`` should be a digest reference already pulled and verified.
    Returns the new container and the snapshot it was made from.
    """
    try:
        target_id = client.images.get(image).id
    except docker.errors.ImageNotFound as error:
        raise ImageNotAvailable(
            f"Image {image} is not in the Docker engine; pull it before recreating {name}."
        ) from error
    current = _get(client, name)
    previous = previous_container(client, name)
    if previous is None and current is not None and current.attrs["Image"] == target_id:
        if current.status != "running":
            current.start()
        return current, snapshot_container(client, current)
    if previous is not None and current is not None:
        if current.attrs["Image"] == target_id:
            snapshot = snapshot_container(client, previous)
            if current.status != "running":
                current.start()
            return current, snapshot
        logger.warning("Removing %s left from an earlier update", previous.name)
        previous.remove(force=True)
        previous = None
    if current is None:
        if previous is None:
            raise ServicesNotFound(
                f"Container {name} does not exist (nor {name}{PREVIOUS_SUFFIX}); nothing to update."
            )
        snapshot = snapshot_container(client, previous)
        snapshot.host_config = _with_compose_restart_policy(snapshot)
    else:
        snapshot = snapshot_container(client, current)
        current.stop(timeout=stop_timeout)
        current.update(restart_policy={"Name": "no"})
        current.rename(name + PREVIOUS_SUFFIX)
        previous = current
    new: Container | None = None
    try:
        new = create_from_snapshot(client, snapshot, image=image, name=name)
        new.start()
    except docker.errors.APIError as error:
        reason = error.explanation or error
        if new is not None:
            new.remove(force=True)
        try:
            _bring_back(previous, name, snapshot.host_config.get("RestartPolicy"))
        except docker.errors.APIError as again:
            raise RecreateFailed(
                f"Could not start {name} on {image} ({reason}), and the previous "
                f"container, renamed back to {name}, did not start either "
                f"({again.explanation or again}). The service is down: check "
                f"`docker logs {name}` and start it by hand."
            ) from error
        raise RecreateFailed(
            f"Could not start {name} on {image}: {reason}. "
            f"The previous container is running again; nothing else was changed."
        ) from error
    new.reload()
    return new, snapshot


def _with_compose_restart_policy(snapshot: ContainerSnapshot) -> dict[str, Any]:
    """A previous container's snapshot carries ``no``; compose stacks mean ``unless-stopped``."""
    host_config = copy.deepcopy(snapshot.host_config)
    if (host_config.get("RestartPolicy") or {}).get("Name") in (None, "", "no"):
        host_config["RestartPolicy"] = {
            "Name": "unless-stopped",
            "MaximumRetryCount": 0,
        }
    return host_config


def _bring_back(
    previous: Container, name: str, restart_policy: dict[str, Any] | None
) -> Container:
    previous.rename(name)
    if restart_policy:
        previous.update(restart_policy=restart_policy)
    previous.start()
    previous.reload()
    return previous


def restore_previous(
    client: docker.DockerClient, name: str, *, stop_timeout: int = 10
) -> Container:
    """Bring ``<name>-previous`` back as ``name``: the new container is stopped and removed.

    The restored container gets back the restart policy the new one had (it
    was made from the same snapshot). Calling it again after it finished, or
    after a crash half-way, completes the restore.
    """
    previous = previous_container(client, name)
    current = _get(client, name)
    if previous is None:
        if current is not None and current.labels.get(ONEOFF_LABEL) != "True":
            # A crash after the rename back: make sure it runs.
            if current.status != "running":
                current.start()
            raise NoPreviousContainer(
                f"There is no {name}{PREVIOUS_SUFFIX} to bring back; {name} "
                f"runs {current.attrs['Config'].get('Image')}. Restore the earlier "
                "image by recreating the service with it."
            )
        raise NoPreviousContainer(
            f"Neither {name} nor {name}{PREVIOUS_SUFFIX} exists; nothing to restore."
        )
    policy: dict[str, Any] | None = {"Name": "unless-stopped", "MaximumRetryCount": 0}
    if current is not None:
        policy = current.attrs["HostConfig"].get("RestartPolicy") or policy
        current.stop(timeout=stop_timeout)
        current.remove(force=True)
    return _bring_back(previous, name, policy)


def remove_previous(client: docker.DockerClient, name: str) -> bool:
    """Remove ``<name>-previous`` once the update is committed; False if there was none."""
    previous = previous_container(client, name)
    if previous is None:
        return False
    previous.remove(force=True)
    return True
