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


class ServicesNotFound(DockerRuntimeError):
    """No container of the compose project (or of the named service) exists."""


class RecreateFailed(DockerRuntimeError):
    """A service's new container could not be created or started (the old one is back)."""


class NoPreviousContainer(DockerRuntimeError):
    """There is no ``<name>-previous`` container to bring back."""


class EnvFileError(DockerRuntimeError):
    """The compose env file could not be updated (it was left unchanged)."""
