"""Removing the images of older releases once nothing needs them.

Each update pulls new images and never needed the ones two versions back
again, so without this the disk fills up (the failure users of other updaters
report most). Only image references this agent knows from verified releases
are touched, each is untagged rather than force-removed: an image that a
container still uses, or that another name still holds, stays.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import docker
from docker.errors import APIError, ImageNotFound

logger = logging.getLogger(__name__)


@dataclass
class Cleaned:
    """What a clean-up removed, how many bytes that freed, what it left in use."""

    removed: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    in_use: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if not self.removed:
            return "no image of an older release to remove"
        mib = self.freed_bytes / (1024 * 1024)
        return (
            f"removed {len(self.removed)} image(s) of older releases, freeing "
            f"{mib:.0f} MiB"
        )


def _image_id(client: docker.DockerClient, reference: str) -> str | None:
    try:
        return str(client.images.get(reference).id)
    except ImageNotFound:
        return None


def remove_unused(
    client: docker.DockerClient, old: Iterable[str], *, keep: Iterable[str]
) -> Cleaned:
    """Untag each ``old`` reference no container uses and ``keep`` does not name."""
    cleaned = Cleaned()
    keep_ids = {i for i in (_image_id(client, ref) for ref in keep) if i}
    used = {str(c.attrs.get("Image", "")) for c in client.containers.list(all=True)}
    for reference in sorted(set(old) - set(keep)):
        try:
            image = client.images.get(reference)
        except ImageNotFound:
            continue
        if image.id in keep_ids or image.id in used:
            cleaned.in_use.append(reference)
            continue
        size = int(image.attrs.get("Size") or 0)
        try:
            client.images.remove(reference)
        except APIError as e:  # in use after all, or a daemon refusal: keep it
            logger.info("Image %s is kept: %s", reference, e)
            cleaned.in_use.append(reference)
            continue
        cleaned.removed.append(reference)
        if _image_id(client, str(image.id)) is None:
            cleaned.freed_bytes += size
    return cleaned
