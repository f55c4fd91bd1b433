"""Celery tasks of the school agent: thin wrappers that load ids and call logic."""

from __future__ import annotations

import logging
import random

from celery import shared_task
from django.conf import settings

logger = logging.getLogger(__name__)


@shared_task(name="updates.check", ignore_result=True)
def check_for_updates(trigger: str = "periodic") -> str:
    """Run one check for updates; returns its outcome."""
    from updates import checking

    return checking.run_check(trigger=trigger).outcome


@shared_task(name="updates.periodic_check", ignore_result=True)
def periodic_check() -> int:
    """Fired by beat: queue the check after a random jitter so schools spread out.

    Returns the delay chosen (seconds).
    """
    jitter = random.randint(0, settings.UPDATES_CHECK_JITTER_MINUTES * 60)  # noqa: S311
    check_for_updates.apply_async(kwargs={"trigger": "periodic"}, countdown=jitter)
    return jitter


@shared_task(name="updates.execute_run", ignore_result=True)
def execute_run(run_id: int) -> None:
    """Fired by beat at the run's time: hand the run to the pipeline."""
    from updates import pipeline

    pipeline.execute_run(run_id)
