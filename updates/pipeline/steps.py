"""The steps of an update in their order, each safe to run again after a crash.

``preparing`` holds the steps before anything changes, ``changing`` the ones
that change the stack. Every step takes the ``Context`` and returns a summary
for its record (``None``: nothing to do), or raises ``StepFailed``.
"""

from __future__ import annotations

from collections.abc import Callable

from updates.pipeline.changing import apply, check_health, commit, migrate
from updates.pipeline.context import Context
from updates.pipeline.preparing import (
    backup,
    fetch,
    hold_name,
    maintenance_on,
    preflight,
    verify,
)

__all__ = ["STEPS", "STEP_MESSAGES", "hold_name"]

STEPS: dict[str, Callable[[Context], str | None]] = {
    "preflight": preflight,
    "fetch": fetch,
    "verify": verify,
    "backup": backup,
    "maintenance": maintenance_on,
    "apply": apply,
    "migrate": migrate,
    "health": check_health,
    "commit": commit,
}

STEP_MESSAGES = {
    "preflight": "Checking the engine, disk, backup target and current health",
    "fetch": "Downloading the new images by digest",
    "verify": "Verifying the signature and every image digest",
    "backup": "Backing up the CLMS database (and verifying the backup)",
    "maintenance": "Putting CLMS into maintenance mode",
    "apply": "Recreating the CLMS containers on the new images",
    "migrate": "Migrating the CLMS database",
    "health": "Waiting for the new version to pass its health check",
    "commit": "Committing: removing the old containers",
}
