"""The Docker SDK client, created lazily from ``settings.DOCKER_HOST``."""

from __future__ import annotations

import threading

import docker
import requests
from django.conf import settings

from updates.runtime.errors import DockerUnavailable

_clients: dict[str, docker.DockerClient] = {}
_lock = threading.Lock()


def docker_client(
    docker_host: str | None = None, *, timeout: int = 60
) -> docker.DockerClient:
    """A client for the engine at ``docker_host`` (default ``settings.DOCKER_HOST``).

    Created on first use and reused; the engine is pinged once when the client
    is created so that an unreachable engine fails here, with its address.
    """
    host = docker_host or settings.DOCKER_HOST
    with _lock:
        client = _clients.get(host)
        if client is None:
            try:
                client = docker.DockerClient(base_url=host, timeout=timeout)
                client.ping()
            except (docker.errors.DockerException, requests.RequestException) as error:
                raise DockerUnavailable(
                    f"The Docker engine at DOCKER_HOST={host} did not answer ({error}). "
                    "Nothing was changed. Check that dockerd is running and that "
                    "DOCKER_HOST points at its socket, then try again."
                ) from error
            _clients[host] = client
        return client


def forget_client(docker_host: str | None = None) -> None:
    """Drop the cached client (after an engine restart, or between tests)."""
    host = docker_host or settings.DOCKER_HOST
    with _lock:
        client = _clients.pop(host, None)
    if client is not None:
        client.close()


def engine_version(client: docker.DockerClient) -> dict[str, str]:
    """The engine's version and API version, or DockerUnavailable (for preflight)."""
    try:
        info = client.version()
    except (docker.errors.DockerException, requests.RequestException) as error:
        raise DockerUnavailable(
            f"The Docker engine stopped answering ({error}); check that dockerd is "
            "running and DOCKER_HOST points at it."
        ) from error
    return {
        "version": str(info.get("Version", "")),
        "api_version": str(info.get("ApiVersion", "")),
    }
