"""The one client of the vendor's Docker registry (Registry HTTP API v2).

Publishing checks that every image a release names is in its registry
(``check_image``); ``build_bundle`` fetches each image's registry manifest
(``fetch_manifest``) and checks that it hashes to the signed digest. Both go
through ``_request``: plain HTTP only to loopback and the insecure hosts
(``VENDOR_REGISTRY_INSECURE_HOSTS``), IPv6 hosts in brackets, basic auth from
``VENDOR_REGISTRY_USERNAME``/``_PASSWORD``, and the bearer-token challenge a
registry behind a token server answers with.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import re
from typing import Any

import requests
from django.conf import settings

# What a manifest of one image (not an index of several platforms) may be.
IMAGE_MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
)
ANY_MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    *IMAGE_MANIFEST_TYPES,
)
DOCKER_HUB = "registry-1.docker.io"


class RegistryError(ValueError):
    """An image could not be confirmed in its registry; names the image and why."""


def split_reference(reference: str) -> tuple[str, str, str]:
    """``host[:port]/repo@sha256:…`` -> (host, repository path, digest).

    The host may be an IPv6 address in brackets (``[::1]:5000``).
    """
    name, _, digest = reference.partition("@")
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first, rest, digest
    path = name if "/" in name else f"library/{name}"
    return DOCKER_HUB, path, digest


def _hostname(host: str) -> str:
    """The host without its port (brackets of an IPv6 address removed)."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def base_url(host: str) -> str:
    """``http`` for loopback and the insecure hosts, else ``https``."""
    hostname = _hostname(host)
    insecure = settings.VENDOR_REGISTRY_INSECURE_HOSTS
    plain = hostname == "localhost" or host in insecure or hostname in insecure
    with contextlib.suppress(ValueError):
        plain = plain or ipaddress.ip_address(hostname).is_loopback
    return f"{'http' if plain else 'https'}://{host}"


def _bearer_token(session: requests.Session, challenge: str) -> str | None:
    """Follow a ``WWW-Authenticate: Bearer realm=…`` challenge (token auth)."""
    fields = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    realm = fields.pop("realm", "")
    if not realm:
        return None
    answer = session.get(realm, params=fields, timeout=settings.VENDOR_REGISTRY_TIMEOUT)
    if answer.status_code != 200:
        return None
    try:
        data = answer.json()
    except ValueError:
        return None
    token = data.get("token") or data.get("access_token")
    return str(token) if token else None


def split_tagged(reference: str) -> tuple[str, str, str]:
    """``host[:port]/repo:tag`` (no digest) -> (host, repository path, tag)."""
    name, tag = reference, "latest"
    last = reference.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = reference.rsplit(":", 1)
    host, repository, _ = split_reference(name + "@")
    return host, repository, tag


def _request(
    method: str, reference: str, accept: tuple[str, ...], *, tagged: bool = False
) -> requests.Response:
    """``method`` the manifest of ``reference``, following a bearer challenge once."""
    if tagged:
        host, repository, digest = split_tagged(reference)
    else:
        host, repository, digest = split_reference(reference)
    url = f"{base_url(host)}/v2/{repository}/manifests/{digest}"
    session = requests.Session()
    if settings.VENDOR_REGISTRY_USERNAME:
        session.auth = (
            settings.VENDOR_REGISTRY_USERNAME,
            settings.VENDOR_REGISTRY_PASSWORD,
        )
    headers = {"Accept": ", ".join(accept)}
    timeout = settings.VENDOR_REGISTRY_TIMEOUT
    try:
        answer = session.request(method, url, headers=headers, timeout=timeout)
        challenge = answer.headers.get("WWW-Authenticate", "")
        if answer.status_code == 401 and challenge.lower().startswith("bearer"):
            token = _bearer_token(session, challenge)
            if token:
                session.auth = None
                headers["Authorization"] = f"Bearer {token}"
                answer = session.request(method, url, headers=headers, timeout=timeout)
    except requests.RequestException as e:
        raise RegistryError(
            f"image {reference}: the registry {host} could not be reached ({e}); check "
            "the address and that it is up, then try again"
        ) from e
    if answer.status_code == 200:
        return answer
    if answer.status_code == 404:
        raise RegistryError(
            f"image {reference} is not in the registry {host}: push it first (the "
            "digest must be the one `docker push` printed), then try again"
        )
    if answer.status_code in (401, 403):
        raise RegistryError(
            f"image {reference}: the registry {host} refused access "
            f"(HTTP {answer.status_code}); set VENDOR_REGISTRY_USERNAME and "
            "VENDOR_REGISTRY_PASSWORD to an account that can pull it"
        )
    raise RegistryError(
        f"image {reference}: the registry {host} answered HTTP {answer.status_code}"
    )


def resolve_tag(reference: str) -> str:
    """Pin ``repo:tag`` to the digest the registry holds for it now (``repo@sha256:…``)."""
    answer = _request("HEAD", reference, ANY_MANIFEST_TYPES, tagged=True)
    digest = answer.headers.get("Docker-Content-Digest", "")
    if not digest.startswith("sha256:") or len(digest) != 71:
        answer = _request("GET", reference, ANY_MANIFEST_TYPES, tagged=True)
        digest = "sha256:" + hashlib.sha256(answer.content).hexdigest()
    host, repository, _ = split_tagged(reference)
    prefix = "" if host == DOCKER_HUB else f"{host}/"
    return f"{prefix}{repository}@{digest}"


def check_image(reference: str) -> None:
    """Raise ``RegistryError`` unless ``reference`` (by digest) exists in its registry."""
    _request("HEAD", reference, ANY_MANIFEST_TYPES)


def fetch_manifest(reference: str) -> bytes:
    """The registry manifest of the single-platform image ``repo@sha256:…``.

    Checked: it hashes to the digest, and it is an image manifest naming a
    config blob (not an index of several platforms).
    """
    _, _, digest = split_reference(reference)
    blob = _request("GET", reference, IMAGE_MANIFEST_TYPES).content
    if "sha256:" + hashlib.sha256(blob).hexdigest() != digest:
        raise RegistryError(
            f"the registry returned a manifest for {reference} that does not hash to "
            "its digest; nothing was used"
        )
    config_digest(blob, reference)
    return blob


def config_digest(blob: bytes, reference: str) -> str:
    """The config digest a single-platform image manifest names (the image id)."""
    try:
        data: Any = json.loads(blob)
        media_type = data.get("mediaType", IMAGE_MANIFEST_TYPES[1])
        digest = str(data["config"]["digest"])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise RegistryError(
            f"{reference} is not a single-platform image manifest (an index?); "
            "publish the platform's own digest"
        ) from None
    if media_type not in IMAGE_MANIFEST_TYPES or not digest.startswith("sha256:"):
        raise RegistryError(f"{reference} is a {media_type}, not an image manifest")
    return digest
