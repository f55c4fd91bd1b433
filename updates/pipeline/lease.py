"""Who drives a run: a lease kept alive by a heartbeat, so a dead worker is noticed.

A worker that claims or takes over a run writes its name and a heartbeat on
the row and refreshes the heartbeat from a background thread. A run whose
heartbeat is older than ``UPDATES_RUN_LEASE_SECONDS`` has lost its worker
(killed, the machine rebooted); the next worker to start takes it over with a
conditional update, so exactly one does. A worker whose heartbeat write finds
the row taken by another stops at the next step boundary (``LeaseLost``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import datetime, timedelta
from types import TracebackType

from django.conf import settings
from django.db import connection
from django.utils import timezone

from updates.models import UpdateRun
from updates.pipeline.errors import LeaseLost

logger = logging.getLogger(__name__)


def worker_identity() -> str:
    """A name unique to this process (host, pid and a random part)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def stale_before() -> datetime:
    """Heartbeats older than this belong to a worker presumed dead."""
    return timezone.now() - timedelta(seconds=settings.UPDATES_RUN_LEASE_SECONDS)


class Lease:
    """Hold the lease on ``run`` while the block runs; a thread beats the heart.

    ``check()`` raises ``LeaseLost`` once another worker has taken the run.
    """

    def __init__(self, run: UpdateRun, owner: str | None = None) -> None:
        self.run = run
        self.owner = owner or worker_identity()
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Lease:
        UpdateRun.objects.filter(pk=self.run.pk).update(
            worker=self.owner, heartbeat_at=timezone.now()
        )
        self.run.worker = self.owner
        interval = max(0.5, settings.UPDATES_RUN_LEASE_SECONDS / 3)
        self._thread = threading.Thread(
            target=self._beat,
            args=(interval,),
            name=f"lease-{self.run.pk}",
            daemon=True,
        )
        self._thread.start()
        return self

    def _beat(self, interval: float) -> None:
        try:
            while not self._stop.wait(interval):
                kept = UpdateRun.objects.filter(
                    pk=self.run.pk, worker=self.owner
                ).update(heartbeat_at=timezone.now())
                if not kept:
                    logger.warning(
                        "Run %s was taken over by another worker; this one stops",
                        self.run.pk,
                    )
                    self.lost.set()
                    return
        except Exception:  # the database went away: the work itself will notice
            logger.exception("Heartbeat of run %s failed", self.run.pk)
        finally:
            connection.close()

    def check(self) -> None:
        """Raise ``LeaseLost`` when another worker owns the run now."""
        if self.lost.is_set():
            raise LeaseLost(f"run {self.run.pk} is driven by another worker now")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if not self.lost.is_set():
            UpdateRun.objects.filter(pk=self.run.pk, worker=self.owner).update(
                heartbeat_at=None
            )


def take_over(run_id: int, owner: str) -> UpdateRun | None:
    """Adopt a running or rolling-back run whose worker stopped beating.

    One conditional ``UPDATE … WHERE heartbeat is stale``: of two workers
    starting together, exactly one gets the run. ``None`` if it is alive or over.
    """
    return UpdateRun.take_over(run_id, worker=owner, stale_before=stale_before())
