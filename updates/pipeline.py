"""The update pipeline (preflight → … → commit, rollback on failure).

Placeholder until the pipeline is built: ``execute_run`` claims the run, so a
cancelled or already-taken run is never executed, and then fails it with
``pipeline_unavailable`` because applying is not possible in this version.
"""

from __future__ import annotations

import logging

from updates.models import UpdateRun

logger = logging.getLogger(__name__)


def execute_run(run_id: int) -> None:
    """Claim run ``run_id`` and drive it; a run that is not scheduled is left alone."""
    run = UpdateRun.claim(run_id)
    if run is None:
        logger.info(
            "Run %s is not scheduled (cancelled, taken or gone); skipped", run_id
        )
        return
    run.fail(
        "pipeline_unavailable",
        "This agent version cannot apply updates yet (the update pipeline is not "
        "installed); nothing was changed. Update the agent, then schedule again.",
    )
