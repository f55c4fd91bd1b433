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

from django.utils import timezone

from updates.models import UpdateRun
from updates.pipeline import maintenance
from updates.pipeline.lease import take_over, worker_identity

logger = logging.getLogger(__name__)


@dataclass
class Recovery:
    """What one look found: runs taken over, and when to look again (seconds)."""

    recovered: list[int] = field(default_factory=list)
    recheck_after: float | None = None
    lifted_flag: bool = False
    reports_queued: int = 0


def recover_run(run_id: int, owner: str | None = None) -> bool:
    """Take over run ``run_id`` if its worker is gone and drive it; True if taken."""
    from updates.pipeline.runner import drive

    owner = owner or worker_identity()
    run = take_over(run_id, owner)
    if run is None:
        return False
    logger.warning(
        "Run %s was left %s in step %s by a worker that stopped; taking it over",
        run.pk,
        run.state,
        run.current_step or "?",
    )
    drive(run, owner=owner, resumed=True)
    return True


def recover_runs() -> Recovery:
    """Look at every running or rolling-back run once (see the module docstring)."""
    from django.conf import settings

    result = Recovery()
    owner = worker_identity()
    lease = settings.UPDATES_RUN_LEASE_SECONDS
    active = UpdateRun.objects.filter(
        state__in=(UpdateRun.State.RUNNING, UpdateRun.State.ROLLING_BACK)
    )
    for run in active:
        if recover_run(run.pk, owner):
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
    from django.conf import settings

    from updates.tasks import report_run

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
        try:
            report_run.delay(run_id)
        except Exception:  # no broker: the next worker start tries again
            logger.exception("Could not queue the report of run %s", run_id)
            break
        count += 1
    return count


def on_worker_start() -> None:
    """Worker start-up hook: queue a look for runs a dead worker left behind."""
    from updates.tasks import recover_runs as recover_task

    recover_task.delay()
