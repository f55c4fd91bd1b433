"""The agent's Docker engine client and images: pull by digest, verify digests.

Service containers are never created here: a release is applied with Docker
Compose itself (``updates.compose``); only the migration's one-off container
is (``oneoff``). Nothing here reads or writes models.
"""

from updates.runtime.engine import docker_client, engine_version, forget_client
from updates.runtime.errors import (
    DockerRuntimeError,
    DockerUnavailable,
    ImageMismatch,
    ImageNotAvailable,
    ImageReferenceRefused,
)
from updates.runtime.images import (
    DigestReference,
    ProgressCallback,
    parse_digest_reference,
    pull_by_digest,
    verify_image_digest,
)
from updates.runtime.oneoff import OneOffResult, run_one_off
from updates.runtime.snapshots import (
    ONEOFF_LABEL,
    ContainerSnapshot,
    snapshot_container,
)

__all__ = [
    "ONEOFF_LABEL",
    "ContainerSnapshot",
    "DigestReference",
    "DockerRuntimeError",
    "DockerUnavailable",
    "ImageMismatch",
    "ImageNotAvailable",
    "ImageReferenceRefused",
    "OneOffResult",
    "ProgressCallback",
    "docker_client",
    "engine_version",
    "forget_client",
    "parse_digest_reference",
    "pull_by_digest",
    "run_one_off",
    "snapshot_container",
    "verify_image_digest",
]
