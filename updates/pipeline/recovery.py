"""After a worker dies: take over its runs and finish them; lift stale flags.

``on_worker_start`` is registered with ``clms_updates.lifecycle`` and queues
``recover_runs``. A run whose heartbeat is stale is taken over (one worker
wins the conditional update) and driven on from its checkpoint: a running run
resumes at the step it was in (each step is safe to run again), a rolling-back
run finishes its rollback. A run whose worker is still alive is looked at
again once its lease could have run out. With no active run, a maintenance
flag left behind is lifted (the watchdog).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from clms_updates.queueing import send_now
from updates.models import UpdateRun
from updates.pipeline import maintenance
from updates.pipeline.ending import REPORT_TASK
from updates.pipeline.lease import worker_identity
from updates.pipeline.runner import take_over
from updates.selfupdate import handoff

logger = logging.getLogger(__name__)

RECOVER_TASK = "updates.recover_runs"


@dataclass
class Recovery:
    """What one look found: runs taken over, and when to look again (seconds)."""

    recovered: list[int] = field(default_factory=list)
    recheck_after: float | None = None
    lifted_flag: bool = False
    reports_queued: int = 0


def recover_runs() -> Recovery:
    """Look at every running or rolling-back run once (see the module docstring)."""
    result = Recovery()
    owner = worker_identity()
    lease = settings.UPDATES_RUN_LEASE_SECONDS
    active = UpdateRun.objects.filter(
        state__in=(UpdateRun.State.RUNNING, UpdateRun.State.ROLLING_BACK)
    )
    for run in active:
        if take_over(run.pk, owner):
            result.recovered.append(run.pk)
            continue
        run.refresh_from_db()
        if run.is_terminal:
            continue
        beat = run.heartbeat_at or run.started_at or timezone.now()
        left = lease - (timezone.now() - beat).total_seconds()
        wait = max(1.0, left + 1)
        result.recheck_after = min(result.recheck_after or wait, wait)
    result.reports_queued = _queue_missing_reports()
    handoff.remove_finished_drivers()
    still_active = UpdateRun.objects.filter(
        state__in=(UpdateRun.State.RUNNING, UpdateRun.State.ROLLING_BACK)
    ).exists()
    if not still_active:
        flag = maintenance.current()
        if flag is not None:
            logger.warning(
                "Lifting the maintenance flag left by run %s (no run is active)",
                flag.get("run_id"),
            )
            result.lifted_flag = maintenance.lift()
    return result


def _queue_missing_reports() -> int:
    """Runs that ended in the last week but whose report never reached the vendor.

    A worker killed between a run's end and its report leaves one behind; the
    report task retries while the vendor does not answer.
    """
    if not settings.UPDATES_VENDOR_URL:
        return 0
    since = timezone.now() - timedelta(days=7)
    pending = UpdateRun.objects.filter(
        state__in=(
            UpdateRun.State.SUCCEEDED,
            UpdateRun.State.ROLLED_BACK,
            UpdateRun.State.FAILED,
        ),
        finished_at__gte=since,
        reported_at__isnull=True,
    ).values_list("pk", flat=True)
    count = 0
    for run_id in pending:
        if not send_now(REPORT_TASK, run_id):
            break  # no broker: the next worker start tries again
        count += 1
    return count


def on_worker_start() -> None:
    """Worker start-up hook: queue a look for runs a dead worker left behind."""
    send_now(RECOVER_TASK)
