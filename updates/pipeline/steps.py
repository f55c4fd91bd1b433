"""The steps of an update, in their order: one table the runner drives.

Each step takes the ``Context`` and returns a summary for its record
(``None``: nothing to do), or raises ``StepFailed``; each is safe to run again
after a crash. ``preparing`` holds the steps before anything changes,
``changing`` the ones that change the stack; the rollback's own steps are
``rollback.ROLLBACK_STEPS``.
"""

from __future__ import annotations

from updates.pipeline.changing import apply, check_health, commit, migrate
from updates.pipeline.context import Position, Step, positions
from updates.pipeline.preparing import (
    backup,
    fetch,
    maintenance_on,
    preflight,
    verify,
)

UPDATE_STEPS: tuple[Step, ...] = (
    Step(
        "preflight",
        preflight,
        "Checking the engine, disk, backup target and current health",
        "Preflight checks",
        share=5,
        seconds=2,
    ),
    Step(
        "fetch",
        fetch,
        "Downloading the new images by digest",
        "Download images",
        share=25,
        seconds=10,
    ),
    Step(
        "verify",
        verify,
        "Verifying the signature and every image digest",
        "Verify images",
        share=3,
        seconds=1,
    ),
    Step(
        "backup",
        backup,
        "Backing up the CLMS database (and verifying the backup)",
        "Back up the database",
        share=22,
        seconds=10,
    ),
    Step(
        "maintenance",
        maintenance_on,
        "Putting CLMS into maintenance mode",
        "Maintenance mode on",
        share=2,
        seconds=1,
    ),
    Step(
        "apply",
        apply,
        "Recreating the CLMS containers on the new images",
        "Replace containers",
        share=13,
        seconds=3,
    ),
    Step(
        "migrate",
        migrate,
        "Migrating the CLMS database",
        "Migrate the database",
        share=10,
        seconds=5,
    ),
    Step(
        "health",
        check_health,
        "Waiting for the new version to pass its health check",
        "Health check",
        share=15,
        seconds=5,
    ),
    Step(
        "commit",
        commit,
        "Committing: removing the old containers",
        "Finish",
        share=5,
        seconds=1,
    ),
)

UPDATE_POSITIONS: dict[str, Position] = positions(UPDATE_STEPS)
