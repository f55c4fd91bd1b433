"""Celery tasks of critical deadlines and the offline folder (thin: one logic call).

Listed in ``CELERY_IMPORTS`` and run by the beat entries of
``CELERY_BEAT_SCHEDULE`` (both in the settings). Importing this module also
registers the start-up hook that audits overrides which expired while no
worker ran.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from clms_updates import lifecycle

logger = logging.getLogger(__name__)


@shared_task(name="updates.enforcement_tick", ignore_result=True)
def enforcement_tick() -> dict[str, Any]:
    """Beat: expire overrides, plan the critical update, send due warnings."""
    from updates import enforcement

    return enforcement.enforcement_tick()


@shared_task(name="updates.offline_scan", ignore_result=True)
def offline_scan() -> list[str]:
    """Beat: look for new bundles in the offline folder; returns their states."""
    from updates.offline import scan_offline_folder

    return [f"{b.file_name}: {b.state}" for b in scan_offline_folder()]


def queue_run_now(run_id: int) -> None:
    """After the transaction commits, hand a run due now to a worker at once.

    The beat trigger ``scheduling`` created stays as the fallback; the run's
    conditional claim makes sure only one of the two drives it.
    """
    from django.db import transaction

    from updates.tasks import execute_run

    def send() -> None:
        try:
            execute_run.delay(run_id)
        except Exception as e:  # broker down: the beat trigger still starts it
            logger.warning("Could not queue run %s at once: %s", run_id, e)

    transaction.on_commit(send)


@lifecycle.on_worker_start
def record_expired_overrides_at_start() -> None:
    """At worker start-up: audit overrides that ran out while nothing was running."""
    from updates import enforcement

    count = enforcement.record_expired_overrides()
    if count:
        logger.warning(
            "%s emergency override(s) expired while the agent was down", count
        )
