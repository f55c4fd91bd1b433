"""Run a one-off command (a migration) beside a service, with its configuration."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import docker
import requests

from updates.runtime.snapshots import (
    ONEOFF_LABEL,
    ContainerSnapshot,
    create_from_snapshot,
)


@dataclass(frozen=True)
class OneOffResult:
    """How a one-off command ended: exit code (-1 on timeout) and its last log lines."""

    exit_code: int
    log_tail: str
    seconds: float
    timed_out: bool = False

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


def _get(
    client: docker.DockerClient, name: str
) -> docker.models.containers.Container | None:
    try:
        return client.containers.get(name)
    except docker.errors.NotFound:
        return None


def run_one_off(
    client: docker.DockerClient,
    snapshot: ContainerSnapshot,
    image: str,
    command: list[str],
    *,
    purpose: str = "oneoff",
    timeout: float = 600,
    tail: int = 50,
) -> OneOffResult:
    """Run ``command`` in a new container of ``image`` with the service's env, mounts and network.

    The container is named ``<service container>-<purpose>``: if one by that
    name is still running (a worker crashed while waiting for it) it is waited
    for instead of starting a second copy; an exited one is replaced. It has no
    restart policy, health check or published ports, and is removed at the end.
    """
    name = f"{snapshot.name}-{purpose}"
    started = time.monotonic()
    container = _get(client, name)
    if container is not None and container.status != "running":
        container.remove(force=True)
        container = None
    if container is None:
        config = copy.deepcopy(snapshot.config)
        config["Cmd"] = list(command)
        config["Healthcheck"] = {"Test": ["NONE"]}
        config["Labels"] = {**(config.get("Labels") or {}), ONEOFF_LABEL: "True"}
        config["ExposedPorts"] = None
        host_config = copy.deepcopy(snapshot.host_config)
        host_config["RestartPolicy"] = {"Name": "no"}
        host_config["PortBindings"] = {}
        host_config["PublishAllPorts"] = False
        host_config["AutoRemove"] = False
        container = create_from_snapshot(
            client,
            snapshot,
            image=image,
            name=name,
            config=config,
            host_config=host_config,
        )
        container.start()
    timed_out = False
    try:
        exit_code = int(container.wait(timeout=timeout)["StatusCode"])
    except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
        timed_out = True
        exit_code = -1
        container.kill()
    logs = container.logs(tail=tail).decode(errors="replace")
    container.remove(force=True)
    return OneOffResult(exit_code, logs, time.monotonic() - started, timed_out)
