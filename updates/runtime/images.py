"""Pull images by digest, with byte progress, and check what was pulled."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import docker
import requests
from docker.models.images import Image

from updates.runtime.errors import (
    DockerUnavailable,
    ImageMismatch,
    ImageNotAvailable,
    ImageReferenceRefused,
)

ProgressCallback = Callable[[int, int], None]
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class DigestReference:
    """``repository@sha256:…``: the only form of image reference the agent pulls."""

    repository: str
    digest: str

    def __str__(self) -> str:
        return f"{self.repository}@{self.digest}"


def parse_digest_reference(reference: str) -> DigestReference:
    """Split ``repo@sha256:<64 hex>``; refuse tags and anything malformed."""
    repository, at, digest = reference.strip().partition("@")
    last_component = repository.rsplit("/", 1)[-1]
    if not at or ":" in last_component or not repository:
        raise ImageReferenceRefused(
            f"Image reference {reference!r} names no digest (or also a tag); the agent "
            "pulls images only as repository@sha256:<digest> from a signed manifest, "
            "because a tag can be moved to other content. Nothing was pulled."
        )
    if not _DIGEST.match(digest):
        raise ImageReferenceRefused(
            f"Image reference {reference!r} has a malformed digest; expected "
            "sha256: followed by 64 lowercase hex digits. Nothing was pulled."
        )
    return DigestReference(repository, digest)


class _ByteProgress:
    """Sums the per-layer byte counts of a pull's event stream."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self.callback = callback
        self.done: dict[str, int] = {}
        self.total: dict[str, int] = {}

    def feed(self, event: dict[str, object]) -> None:
        layer = str(event.get("id", ""))
        status = str(event.get("status", ""))
        detail = event.get("progressDetail") or {}
        if not layer or not isinstance(detail, dict):
            return
        if status == "Downloading" and detail.get("total"):
            self.total[layer] = int(detail["total"])
            self.done[layer] = int(detail.get("current", 0))
        elif status in ("Download complete", "Pull complete") and layer in self.total:
            self.done[layer] = self.total[layer]
        else:
            return
        self.report()

    def report(self) -> None:
        if self.callback is not None:
            self.callback(sum(self.done.values()), sum(self.total.values()))


def pull_by_digest(
    client: docker.DockerClient,
    reference: str,
    *,
    progress: ProgressCallback | None = None,
) -> Image:
    """Pull ``repo@sha256:…`` and return the image once its digest is confirmed.

    ``progress(done_bytes, total_bytes)`` is called as layers download (totals
    grow as the engine learns each layer's size; layers already present count
    nothing) and once at the end. Tags are refused; the pulled image must list
    the expected digest among its RepoDigests, or ImageMismatch is raised.
    """
    ref = parse_digest_reference(reference)
    tracker = _ByteProgress(progress)
    try:
        for event in client.api.pull(
            ref.repository, tag=ref.digest, stream=True, decode=True
        ):
            if "error" in event:
                raise ImageNotAvailable(
                    f"Pulling {ref} failed: {event['error']}. Check that the registry "
                    "is reachable and holds this release; nothing was changed."
                )
            tracker.feed(event)
    except docker.errors.NotFound as error:
        raise ImageNotAvailable(
            f"The registry has no image {ref} ({error.explanation}). The release names "
            "an image that was not published or was deleted; nothing was changed."
        ) from error
    except docker.errors.APIError as error:
        raise ImageNotAvailable(
            f"Pulling {ref} failed: {error.explanation or error}. Check the registry "
            "address and credentials; nothing was changed."
        ) from error
    except requests.RequestException as error:
        raise DockerUnavailable(
            f"The Docker engine stopped answering while pulling {ref}: {error}"
        ) from error
    tracker.report()
    try:
        image = client.images.get(str(ref))
    except docker.errors.ImageNotFound as error:
        raise ImageMismatch(
            f"The engine reported {ref} pulled but holds no image under that digest; "
            "it was not used."
        ) from error
    verify_image_digest(image, str(ref))
    return image


def verify_image_digest(image: Image, reference: str) -> None:
    """Raise ImageMismatch unless ``image`` carries exactly the digest of ``reference``."""
    ref = parse_digest_reference(reference)
    repo_digests = image.attrs.get("RepoDigests") or []
    if str(ref) not in repo_digests:
        raise ImageMismatch(
            f"Image {image.short_id} does not carry digest {ref.digest} for "
            f"{ref.repository} (it carries: {', '.join(repo_digests) or 'none'}). "
            "It does not match the signed release and was not used."
        )
