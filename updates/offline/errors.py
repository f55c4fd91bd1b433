"""Why a bundle was refused: a short machine code and a sentence for the admin."""

from __future__ import annotations


class BundleError(Exception):
    """Something about an offline bundle stops it; ``code`` names the rule broken."""

    code = "error"
    # The bundle's version once its signed manifest was read ("" before).
    version = ""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code:
            self.code = code


class BundleRefused(BundleError):
    """The bundle breaks a rule: it is quarantined and never applied."""

    code = "refused"


class BundleNotReady(BundleError):
    """A transient problem (Docker down, disk full): the bundle stays and is retried."""

    code = "not_ready"
