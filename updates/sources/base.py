"""The source abstraction and the registry that orders sources by setting."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

logger = logging.getLogger(__name__)


class SourceError(Exception):
    """A source could not deliver a document; the message says why and what to do."""


class SourceUnavailable(SourceError):
    """The source did not answer (refused connection, timeout, DNS): try the next one."""


class SourceRefused(SourceError):
    """The source answered, but with something the agent refuses (size, status, scheme)."""


class SourceNotFound(SourceRefused):
    """The source does not have what was asked for (404)."""


class SourceRateLimited(SourceError):
    """The source answered 429: it is up, but asks the agent to come back later."""

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class SourceNotConfigured(Exception):
    """A source named in ``UPDATES_SOURCES`` lacks the settings it needs."""


@dataclass(frozen=True)
class SignedDocument:
    """Bytes as a source delivered them and the detached signature over them."""

    data: bytes
    signature: str


class Source(ABC):
    """Somewhere signed metadata comes from: vendor server, LAN mirror, offline folder."""

    name: str = ""

    @abstractmethod
    def fetch_index(self) -> SignedDocument:
        """The signed release index (unverified)."""

    @abstractmethod
    def fetch_manifest(self, version: str) -> SignedDocument:
        """The signed manifest of ``version`` (unverified)."""

    def fetch_keys(self) -> str:
        """Armored public key(s) this source offers; trusted only if pinned."""
        raise SourceRefused(f"source {self.name} does not publish keys")

    def fetch_roots(self, after: int) -> list[SignedDocument]:
        """The signed root documents after version ``after``, in order (unverified).

        A source that publishes none answers an empty list: the agent then
        keeps the root it has.
        """
        return []


SourceFactory = Callable[[], Source]

_registry: dict[str, SourceFactory] = {}


def register_source(name: str, factory: SourceFactory) -> None:
    """Make ``name`` usable in ``UPDATES_SOURCES``; ``factory`` may raise ``SourceNotConfigured``."""
    _registry[name] = factory


def registered_source_names() -> list[str]:
    return sorted(_registry)


def configured_sources() -> list[Source]:
    """The sources of ``UPDATES_SOURCES`` in order, skipping (and logging) unusable ones."""
    sources: list[Source] = []
    for name in settings.UPDATES_SOURCES:
        factory = _registry.get(name)
        if factory is None:
            logger.info(
                "Update source %r is skipped: it is not available in this version", name
            )
            continue
        try:
            sources.append(factory())
        except SourceNotConfigured as e:
            logger.info("Update source %r is skipped: %s", name, e)
    return sources
