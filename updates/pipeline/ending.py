"""How every run ends, whatever happened: the same for every kind of run.

Maintenance lifted (if this run raised it), the backup hold released, the
admins alerted when it failed, a rollback's end audited, and the vendor told
(queued again by task name while it does not answer); then an agent update
that waited for the run gets its turn.
"""

from __future__ import annotations

import logging

from backups import operations as backups
from clms_updates import audit
from clms_updates.queueing import send_now
from updates.models import UpdateRun
from updates.pipeline import maintenance, reporting
from updates.pipeline.preparing import hold_name

logger = logging.getLogger(__name__)

REPORT_TASK = "updates.report_run"
PENDING_AGENT_TASK = "updates.start_pending_agent_update"


def finish_run(run: UpdateRun) -> None:
    """Whatever the outcome: lift maintenance, release the hold, report, alert."""
    flag = maintenance.current()
    if flag is not None and flag.get("run_id") in (run.pk, None):
        maintenance.lift()
    try:
        backups.release_hold(hold_name(run))
    except Exception:
        logger.exception("Could not release the backup hold of run %s", run.pk)
    if run.state == UpdateRun.State.FAILED:
        reporting.alert_admins(run)
    if run.kind == UpdateRun.Kind.ROLLBACK:
        audit.record(
            "updates.rollback.finished",
            actor=None,
            target=f"run {run.pk}",
            outcome=run.state,
            from_version=run.from_version,
            to_version=run.to_version,
            error_code=run.error_code,
        )
    if not reporting.send_report(run):
        # The vendor did not take it: a worker retries (or the next start-up).
        send_now(REPORT_TASK, run.pk, countdown=60)
    # An agent update may have been waiting for this run to end.
    send_now(PENDING_AGENT_TASK)
