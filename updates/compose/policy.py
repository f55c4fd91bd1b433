"""What a release's compose project may do on the school's server.

A compose file is code the vendor runs on the school's machine, so before
anything runs the agent holds the release's project (as compose resolves it,
the school's values filled in, without the school's own override file) to the
school's policy. Refused unless the policy allows that item
(``CLMS_COMPOSE_ALLOW``):

- ``privileged``: a privileged container;
- ``network_mode:host`` (or ``:container``), ``pid:host``, ``ipc:host``,
  ``userns_mode:host``: sharing the host's namespaces;
- ``docker_socket``: mounting the Docker socket (control of the whole host);
- ``cap_add:<CAP>`` (or ``cap_add:*``): added capabilities;
- ``devices``: host devices;
- ``security_opt``: weakened confinement (``seccomp``/``apparmor`` unconfined …);
- ``bind:<path>``: a bind mount outside the directories the school declared
  for CLMS (``CLMS_COMPOSE_BIND_DIRS``; the project folder and the CLMS state
  folder always count).

A refusal names the service and the key; nothing has changed then.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.conf import settings

SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")


class PolicyRefused(Exception):
    """The release's project does something the school's policy does not allow."""


def allowed_items() -> set[str]:
    return {item.strip() for item in settings.CLMS_COMPOSE_ALLOW if item.strip()}


def bind_roots() -> list[Path]:
    roots = [Path(p) for p in settings.CLMS_COMPOSE_BIND_DIRS if p]
    if settings.CLMS_PROJECT_DIR:
        roots.append(Path(settings.CLMS_PROJECT_DIR))
    roots.append(Path(settings.CLMS_STATE_DIR))
    return [r.resolve() for r in roots]


def _mount_sources(spec: dict[str, Any]) -> Iterable[tuple[str, str]]:
    """(type, source) of every mount of a resolved service."""
    for volume in spec.get("volumes") or []:
        if isinstance(volume, str):
            source = volume.split(":", 1)[0] if ":" in volume else ""
            kind = "bind" if source.startswith(("/", ".", "~")) else "volume"
            yield kind, source
        elif isinstance(volume, dict):
            yield str(volume.get("type", "volume")), str(volume.get("source") or "")


def _inside(path: Path, roots: list[Path]) -> bool:
    resolved = path.resolve()
    return any(resolved == root or root in resolved.parents for root in roots)


def problems(project: dict[str, Any]) -> list[str]:
    """Every item of the resolved ``project`` the policy refuses, named."""
    allow = allowed_items()
    roots = bind_roots()
    found: list[str] = []
    services = project.get("services") or {}
    for name, spec in sorted(services.items()):
        if not isinstance(spec, dict):
            continue
        where = f"service {name}"
        if spec.get("privileged") and "privileged" not in allow:
            found.append(f"{where}: privileged: true (a privileged container)")
        for key in ("network_mode", "pid", "ipc", "userns_mode"):
            value = str(spec.get(key) or "")
            mode = value.split(":", 1)[0]
            if mode in ("host", "container", "service") and key == "network_mode":
                if f"network_mode:{mode}" not in allow:
                    found.append(f"{where}: network_mode: {value} (the host's network)")
            elif value == "host" and f"{key}:host" not in allow:
                found.append(f"{where}: {key}: host (the host's {key} namespace)")
        for cap in spec.get("cap_add") or []:
            if f"cap_add:{cap}" not in allow and "cap_add:*" not in allow:
                found.append(f"{where}: cap_add: {cap} (an added capability)")
        if spec.get("devices") and "devices" not in allow:
            found.append(f"{where}: devices (access to host devices)")
        weak = [
            opt
            for opt in spec.get("security_opt") or []
            if "unconfined" in str(opt) or "no-new-privileges:false" in str(opt)
        ]
        if weak and "security_opt" not in allow:
            found.append(f"{where}: security_opt: {', '.join(map(str, weak))}")
        for kind, source in _mount_sources(spec):
            if kind != "bind" or not source:
                continue
            if source in SOCKETS or source.endswith("docker.sock"):
                if "docker_socket" not in allow:
                    found.append(
                        f"{where}: volumes: {source} (the Docker socket: control of "
                        "the whole server)"
                    )
                continue
            if not _inside(Path(source), roots) and f"bind:{source}" not in allow:
                found.append(
                    f"{where}: volumes: {source} (a bind mount outside the folders "
                    "declared for CLMS, CLMS_COMPOSE_BIND_DIRS)"
                )
    return found


def check(project: dict[str, Any], *, version: str) -> None:
    """Raise ``PolicyRefused`` naming every item the school's policy refuses."""
    refused = problems(project)
    if refused:
        raise PolicyRefused(
            f"CLMS {version} asks for what this school's policy does not allow: "
            + "; ".join(refused)
            + ". Nothing was changed. If the school accepts it, add the item to "
            "CLMS_COMPOSE_ALLOW (or the folder to CLMS_COMPOSE_BIND_DIRS) and "
            "restart the agent."
        )
