"""Snapshot a container's configuration, and create a one-off container from it.

A snapshot is the engine's own create-API data taken from ``docker inspect``,
with what the image supplied by default taken out and anonymous volumes
named. The migration's one-off container is made from the snapshot of the
service's own container (which compose created), because Debian's
docker-compose 1.29 cannot ``run`` a one-off container on host networking
("host type networking can't be used with links"); service containers
themselves are only ever made by compose.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Any

import docker
from docker.models.containers import Container

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
ONEOFF_LABEL = "com.docker.compose.oneoff"
# Config keys whose value, when equal to the image's own, is left to the new image.
_IMAGE_DEFAULTS = (
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "User",
    "Healthcheck",
    "StopSignal",
)


@dataclass
class ContainerSnapshot:
    """Everything needed to create a service's container again, as plain JSON data.

    ``config`` and ``host_config`` are the engine's own create-API shapes with
    the old image's defaults (env, labels, command …) taken out, so a new image's
    defaults apply; ``networks`` maps each network to its endpoint settings.
    """

    name: str
    container_id: str
    service: str
    image: str
    image_id: str
    config: dict[str, Any]
    host_config: dict[str, Any]
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContainerSnapshot:
        return cls(**data)

    @property
    def network_mode(self) -> str:
        return str(self.host_config.get("NetworkMode") or "default")


def snapshot_container(
    client: docker.DockerClient, container: Container
) -> ContainerSnapshot:
    """The container's configuration, minus what its image supplies by default."""
    container.reload()
    attrs = container.attrs
    config = copy.deepcopy(attrs["Config"])
    host_config = copy.deepcopy(attrs["HostConfig"])
    try:
        image_config = client.images.get(attrs["Image"]).attrs.get("Config") or {}
    except docker.errors.ImageNotFound:
        image_config = {}
    image_env = set(image_config.get("Env") or [])
    config["Env"] = [item for item in config.get("Env") or [] if item not in image_env]
    image_labels = image_config.get("Labels") or {}
    config["Labels"] = {
        k: v
        for k, v in (config.get("Labels") or {}).items()
        if image_labels.get(k) != v
    }
    for key in _IMAGE_DEFAULTS:
        if key in config and config[key] == image_config.get(key):
            config.pop(key)
    for key in ("ExposedPorts", "Volumes"):
        own = {
            k: v
            for k, v in (config.get(key) or {}).items()
            if k not in (image_config.get(key) or {})
        }
        config[key] = own or None
    # The engine derives these from the container id or the host; keep only set ones.
    if (
        config.get("Hostname") == container.id[:12]
        or host_config.get("NetworkMode") == "host"
    ):
        config.pop("Hostname", None)
        config.pop("Domainname", None)
    config.pop("Image", None)
    _keep_anonymous_volumes(attrs, host_config)
    networks: dict[str, dict[str, Any]] = {}
    mode = host_config.get("NetworkMode") or "default"
    if mode not in ("host", "none") and not mode.startswith("container:"):
        for network, endpoint in (
            attrs["NetworkSettings"].get("Networks") or {}
        ).items():
            aliases = [
                a
                for a in endpoint.get("Aliases") or []
                if not container.id.startswith(a)
            ]
            networks[network] = {
                "Aliases": aliases or None,
                "IPAMConfig": endpoint.get("IPAMConfig"),
                "Links": endpoint.get("Links"),
                "DriverOpts": endpoint.get("DriverOpts"),
            }
    return ContainerSnapshot(
        name=container.name,
        container_id=container.id,
        service=container.labels.get(SERVICE_LABEL, ""),
        image=str(attrs["Config"].get("Image", "")),
        image_id=str(attrs["Image"]),
        config=config,
        host_config=host_config,
        networks=networks,
    )


def _keep_anonymous_volumes(attrs: dict[str, Any], host_config: dict[str, Any]) -> None:
    """Mount the old container's anonymous volumes by name, so their data carries over.

    Without this the new container would get fresh empty volumes for the paths
    declared without a source (``-v /path``, an image's VOLUME); ``docker
    compose`` carries them over the same way.
    """
    names = {
        m.get("Destination"): m.get("Name")
        for m in attrs.get("Mounts") or []
        if m.get("Type") == "volume"
    }
    # A bind without a source ("/cache") is an anonymous volume: name it.
    binds = [bind for bind in host_config.get("Binds") or [] if ":" in bind]
    mounts = host_config.get("Mounts") or []
    for mount in mounts:
        if mount.get("Type") == "volume" and not mount.get("Source"):
            mount["Source"] = names.get(mount.get("Target"))
    covered = {bind.split(":")[1] for bind in binds}
    covered |= {mount.get("Target") for mount in mounts}
    for mount in attrs.get("Mounts") or []:
        if mount.get("Type") == "volume" and mount.get("Destination") not in covered:
            mode = "" if mount.get("RW", True) else ":ro"
            binds.append(f"{mount['Name']}:{mount['Destination']}{mode}")
    host_config["Binds"] = binds or None


def create_from_snapshot(
    client: docker.DockerClient,
    snapshot: ContainerSnapshot,
    *,
    image: str,
    name: str,
    config: dict[str, Any] | None = None,
    host_config: dict[str, Any] | None = None,
) -> Container:
    """Create (not start) a container from the snapshot with ``image``."""
    body = copy.deepcopy(config if config is not None else snapshot.config)
    body["Image"] = image
    body["HostConfig"] = copy.deepcopy(
        host_config if host_config is not None else snapshot.host_config
    )
    networks = list(snapshot.networks.items())
    primary = snapshot.network_mode
    first = [item for item in networks if item[0] == primary] or networks[:1]
    if first:
        body["NetworkingConfig"] = {"EndpointsConfig": {first[0][0]: first[0][1]}}
    created = client.api.create_container_from_config(body, name=name)
    container = client.containers.get(created["Id"])
    # The engine API of this generation accepts one network at create time.
    for network, endpoint in networks:
        if first and network == first[0][0]:
            continue
        client.api.connect_container_to_network(
            container.id,
            network,
            aliases=endpoint.get("Aliases"),
            links=endpoint.get("Links"),
            ipv4_address=(endpoint.get("IPAMConfig") or {}).get("IPv4Address"),
            ipv6_address=(endpoint.get("IPAMConfig") or {}).get("IPv6Address"),
            driver_opt=endpoint.get("DriverOpts"),
        )
    return container
