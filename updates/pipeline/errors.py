"""Why a pipeline step stopped: a code for the vendor and a message for the admin."""

from __future__ import annotations

from clms_updates.manifest.compose import Setting


class StepFailed(Exception):
    """A step could not do its work; the run fails or rolls back.

    ``code`` is short and stable (it is reported to the vendor and filtered on);
    the message says what happened, why, and what to do next. ``transient``
    marks failures worth retrying later (an engine or registry that did not
    answer) when nothing was changed yet.
    """

    def __init__(self, code: str, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.transient = transient


class LeaseLost(Exception):
    """Another worker took the run over (this one was thought dead); stop touching it."""


class NeedsInput(Exception):
    """The release needs settings the school has not given: the run waits for them."""

    def __init__(self, missing: list[Setting]) -> None:
        names = ", ".join(s.name for s in missing)
        super().__init__(
            f"CLMS needs your input before it can update: {names}. Give the values "
            "on the Updates page (or PUT /api/updates/settings); the update then "
            "goes ahead."
        )
        self.missing = missing
