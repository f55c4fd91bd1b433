"""Celery tasks of the school agent: thin wrappers that load ids and call logic."""

from __future__ import annotations

import logging
import random

from celery import Task, shared_task
from django.conf import settings

from clms_updates.actions import VIA_SCHEDULE, ActionRefused, Actor
from updates import actions, pipeline
from updates.models import UpdateRun
from updates.pipeline import reporting

logger = logging.getLogger(__name__)


@shared_task(name="updates.check", ignore_result=True)
def check_for_updates(trigger: str = "periodic") -> str:
    """Run one check for updates (the system acting); returns its outcome."""
    return actions.check_for_updates(
        actor=Actor.system(VIA_SCHEDULE), trigger=trigger
    ).outcome


@shared_task(name="updates.periodic_check", ignore_result=True)
def periodic_check() -> int:
    """Fired by beat: queue the check after a random jitter so schools spread out.

    Returns the delay chosen (seconds).
    """
    jitter = random.randint(0, settings.UPDATES_CHECK_JITTER_MINUTES * 60)  # noqa: S311
    check_for_updates.apply_async(kwargs={"trigger": "periodic"}, countdown=jitter)
    return jitter


@shared_task(name="updates.check_drift", ignore_result=True)
def check_drift() -> list[str]:
    """Fired by beat: note how the stack differs from its project (not during a run)."""
    try:
        return actions.check_drift(actor=Actor.system(VIA_SCHEDULE))
    except ActionRefused as e:
        logger.info("Drift not checked: %s", e.message)
        return []


@shared_task(name="updates.start_pending_agent_update", ignore_result=True)
def start_pending_agent_update() -> int | None:
    """Start the agent update that waited for another run, if nothing is in its way."""
    run = actions.start_pending_agent_update()
    return run.pk if run else None


@shared_task(name="updates.execute_run", ignore_result=True)
def execute_run(run_id: int) -> None:
    """Fired by beat at the run's time: hand the run to the pipeline."""
    pipeline.execute_run(run_id)


@shared_task(name="updates.recover_runs", bind=True, ignore_result=True)
def recover_runs(self: Task) -> list[int]:
    """Take over runs a dead worker left; look again while a live one holds a lease."""
    result = pipeline.recover_runs()
    if result.recheck_after is not None:
        self.apply_async(countdown=result.recheck_after)
    return result.recovered


@shared_task(
    name="updates.report_run",
    bind=True,
    ignore_result=True,
    max_retries=8,
    default_retry_delay=300,
)
def report_run(self: Task, run_id: int) -> None:
    """Deliver a run's outcome report to the vendor, retrying while it does not answer."""
    try:
        run = UpdateRun.objects.get(pk=run_id)
    except UpdateRun.DoesNotExist:
        logger.info("Run %s is gone; its report is dropped", run_id)
        return
    if not reporting.send_report(run):
        raise self.retry()
