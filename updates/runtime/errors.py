"""Errors of the Docker runtime, each naming what happened and what to do next."""

from __future__ import annotations


class DockerRuntimeError(RuntimeError):
    """Base of every error the Docker runtime raises."""


class DockerUnavailable(DockerRuntimeError):
    """The Docker engine named by DOCKER_HOST does not answer."""


class ImageReferenceRefused(DockerRuntimeError):
    """An image reference without a digest (a tag) was given: tags are never pulled."""


class ImageNotAvailable(DockerRuntimeError):
    """The registry does not have the image, or the pull failed on the way."""


class ImageMismatch(DockerRuntimeError):
    """The image in the engine does not carry the digest the release names."""
