"""The beat task of critical deadlines (thin: one action call).

Listed in ``CELERY_IMPORTS`` and scheduled by ``clms_updates.periodic``.
Importing this module also registers the start-up hook that audits overrides
which expired while no worker ran.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from clms_updates import lifecycle
from updates import actions

logger = logging.getLogger(__name__)


@shared_task(name="updates.enforcement_tick", ignore_result=True)
def enforcement_tick() -> dict[str, Any]:
    """Beat: expire overrides, plan the critical update, send due warnings."""
    return actions.enforcement_tick()


@lifecycle.on_worker_start
def record_expired_overrides_at_start() -> None:
    """At worker start-up: audit overrides that ran out while nothing was running."""
    count = actions.expire_overrides()
    if count:
        logger.warning(
            "%s emergency override(s) expired while the agent was down", count
        )
