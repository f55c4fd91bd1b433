"""Is an image digest present in its Docker registry? (Registry HTTP API v2.)"""

from __future__ import annotations

import ipaddress
import re

import requests
from django.conf import settings

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
DOCKER_HUB = "registry-1.docker.io"


class RegistryError(ValueError):
    """An image could not be confirmed in its registry; names the image and why."""


def split_reference(reference: str) -> tuple[str, str, str]:
    """``host[:port]/repo@sha256:…`` -> (host, repository path, digest)."""
    name, digest = reference.split("@", 1)
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first, rest, digest
    path = name if "/" in name else f"library/{name}"
    return DOCKER_HUB, path, digest


def _scheme(host: str) -> str:
    hostname = (
        host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:].split("]")[0]
    )
    if hostname == "localhost" or host in settings.VENDOR_REGISTRY_INSECURE_HOSTS:
        return "http"
    if hostname in settings.VENDOR_REGISTRY_INSECURE_HOSTS:
        return "http"
    try:
        if ipaddress.ip_address(hostname).is_loopback:
            return "http"
    except ValueError:
        pass
    return "https"


def _bearer_token(session: requests.Session, challenge: str) -> str | None:
    """Follow a ``WWW-Authenticate: Bearer realm=…`` challenge (token auth)."""
    fields = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    realm = fields.pop("realm", "")
    if not realm:
        return None
    answer = session.get(realm, params=fields, timeout=settings.VENDOR_REGISTRY_TIMEOUT)
    if answer.status_code != 200:
        return None
    data = answer.json()
    return data.get("token") or data.get("access_token")


def check_image(reference: str) -> None:
    """Raise ``RegistryError`` unless ``reference`` (by digest) exists in its registry."""
    host, repository, digest = split_reference(reference)
    url = f"{_scheme(host)}://{host}/v2/{repository}/manifests/{digest}"
    session = requests.Session()
    if settings.VENDOR_REGISTRY_USERNAME:
        session.auth = (
            settings.VENDOR_REGISTRY_USERNAME,
            settings.VENDOR_REGISTRY_PASSWORD,
        )
    headers = {"Accept": MANIFEST_TYPES}
    try:
        answer = session.head(
            url, headers=headers, timeout=settings.VENDOR_REGISTRY_TIMEOUT
        )
        challenge = answer.headers.get("WWW-Authenticate", "")
        if answer.status_code == 401 and challenge.lower().startswith("bearer"):
            token = _bearer_token(session, challenge)
            if token:
                session.auth = None
                headers["Authorization"] = f"Bearer {token}"
                answer = session.head(
                    url, headers=headers, timeout=settings.VENDOR_REGISTRY_TIMEOUT
                )
    except requests.RequestException as e:
        raise RegistryError(
            f"image {reference}: the registry {host} could not be reached ({e}); check "
            "the address and that it is up, then publish again"
        ) from e
    if answer.status_code == 200:
        return
    if answer.status_code == 404:
        raise RegistryError(
            f"image {reference} is not in the registry {host}: push it first (the "
            "digest must be the one `docker push` printed), then publish again"
        )
    if answer.status_code in (401, 403):
        raise RegistryError(
            f"image {reference}: the registry {host} refused access "
            f"(HTTP {answer.status_code}); set VENDOR_REGISTRY_USERNAME and "
            "VENDOR_REGISTRY_PASSWORD to an account that can pull it"
        )
    raise RegistryError(
        f"image {reference}: the registry {host} answered HTTP {answer.status_code}; "
        "nothing was published"
    )
