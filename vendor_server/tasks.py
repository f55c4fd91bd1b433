"""Beat tasks of the vendor server: keep the index fresh, flush check-ins."""

from __future__ import annotations

import logging

from celery import Task, shared_task

from vendor_server import actions, checkins, indexing

logger = logging.getLogger(__name__)


@shared_task(
    name="vendor.refresh_index", bind=True, max_retries=3, default_retry_delay=60
)
def refresh_index(self: Task) -> bool:
    """Re-sign the index (new sequence and expiry) well before it expires."""
    refreshed = indexing.refresh_if_expiring()
    if refreshed:
        logger.info("Index re-signed at sequence %s", indexing.current_sequence())
    return refreshed


@shared_task(name="vendor.tell_silent_schools", ignore_result=True)
def tell_silent_schools() -> int:
    """Tell staff of schools whose agents stopped polling (once per set of schools)."""
    return actions.tell_silent_schools()


@shared_task(name="vendor.prune_checkins", ignore_result=True)
def prune_checkins() -> int:
    """Delete the check-in history older than VENDOR_CHECKIN_KEEP_DAYS."""
    return checkins.prune_checkins()


@shared_task(
    name="vendor.flush_checkins", bind=True, max_retries=3, default_retry_delay=10
)
def flush_checkins(self: Task) -> int:
    """Write the check-ins buffered in the cache to the database."""
    return checkins.flush_checkins()
