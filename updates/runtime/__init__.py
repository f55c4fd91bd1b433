"""The agent's Docker runtime: the CLMS stack's containers, through the Docker SDK.

The pipeline calls these functions with explicit arguments; nothing here reads
or writes models. See ``containers`` for how a service is recreated and restored.
"""

from updates.runtime.containers import (
    find_services,
    previous_container,
    recreate_container,
    remove_previous,
    restore_previous,
)
from updates.runtime.engine import docker_client, engine_version, forget_client
from updates.runtime.envfile import read_env_file, update_env_file
from updates.runtime.errors import (
    DockerRuntimeError,
    DockerUnavailable,
    EnvFileError,
    ImageMismatch,
    ImageNotAvailable,
    ImageReferenceRefused,
    NoPreviousContainer,
    RecreateFailed,
    ServicesNotFound,
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
    PREVIOUS_SUFFIX,
    PROJECT_LABEL,
    SERVICE_LABEL,
    ContainerSnapshot,
    create_from_snapshot,
    snapshot_container,
)

__all__ = [
    "ONEOFF_LABEL",
    "PREVIOUS_SUFFIX",
    "PROJECT_LABEL",
    "SERVICE_LABEL",
    "ContainerSnapshot",
    "DigestReference",
    "DockerRuntimeError",
    "DockerUnavailable",
    "EnvFileError",
    "ImageMismatch",
    "ImageNotAvailable",
    "ImageReferenceRefused",
    "NoPreviousContainer",
    "OneOffResult",
    "ProgressCallback",
    "RecreateFailed",
    "ServicesNotFound",
    "create_from_snapshot",
    "docker_client",
    "engine_version",
    "find_services",
    "forget_client",
    "parse_digest_reference",
    "previous_container",
    "pull_by_digest",
    "read_env_file",
    "recreate_container",
    "remove_previous",
    "restore_previous",
    "run_one_off",
    "snapshot_container",
    "update_env_file",
    "verify_image_digest",
]
