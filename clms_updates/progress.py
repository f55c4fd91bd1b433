"""The one progress publisher: update the row, then tell the run's WebSocket group.

Long work (update runs, backups) reports progress only through ``publish``. The
row is the source of truth; the socket just pushes each change and, on connect,
the current state (``snapshot``), so a page that reloads mid-run catches up.

A model takes part by inheriting ``TrackedProgress`` and registering its kind in
its app's ``ready()``::

    progress.register_kind("backup", "backups.Backup", can_view=is_school_viewer)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.apps import apps
from django.db import models, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

# The log on a row is kept to its tail so rows stay small.
LOG_LIMIT_CHARS = 64_000


class ProgressPayload(TypedDict):
    """What a page receives over the socket (short keys; no secrets, ever)."""

    type: Literal["progress.event"]
    event: Literal["snapshot", "update"]
    kind: str
    id: int
    state: str
    step: str
    percent: int
    message: str
    eta_seconds: int | None
    # New log lines for an update; the whole retained log for a snapshot.
    log: str
    at: str


class TrackedProgress(models.Model):
    """Fields every tracked job carries: where it is, how far, what it says."""

    current_step = models.CharField(max_length=32, blank=True)
    percent = models.PositiveSmallIntegerField(default=0)
    message = models.CharField(max_length=500, blank=True)
    eta_seconds = models.PositiveIntegerField(null=True, blank=True)
    log = models.TextField(blank=True)
    progress_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def progress_state(self) -> str:
        """The job's lifecycle state as a string (``state`` or ``status`` field)."""
        return str(getattr(self, "state", None) or getattr(self, "status", ""))


@dataclass(frozen=True)
class Kind:
    """A registered kind of tracked job."""

    name: str
    model_label: str
    can_view: Callable[[Any], bool]

    def model(self) -> type[TrackedProgress]:
        model: type[TrackedProgress] = apps.get_model(self.model_label)
        return model


_kinds: dict[str, Kind] = {}


def register_kind(
    name: str, model_label: str, *, can_view: Callable[[Any], bool]
) -> None:
    """Make ``model_label`` followable at ``/ws/progress/<name>/<id>/``."""
    _kinds[name] = Kind(name, model_label, can_view)


def get_kind(name: str) -> Kind | None:
    return _kinds.get(name)


def kind_of(instance: TrackedProgress) -> str:
    label = instance._meta.label
    for kind in _kinds.values():
        if kind.model_label == label:
            return kind.name
    raise LookupError(f"{label} is not registered with clms_updates.progress")


def group_name(kind: str, object_id: int) -> str:
    """The Channels group of one job."""
    return f"progress.{kind}.{object_id}"


def _payload(
    instance: TrackedProgress, event: Literal["snapshot", "update"], log: str
) -> ProgressPayload:
    return {
        "type": "progress.event",
        "event": event,
        "kind": kind_of(instance),
        "id": int(instance.pk),
        "state": instance.progress_state,
        "step": instance.current_step,
        "percent": instance.percent,
        "message": instance.message,
        "eta_seconds": instance.eta_seconds,
        "log": log,
        "at": (instance.progress_at or timezone.now()).isoformat(),
    }


def snapshot(instance: TrackedProgress) -> ProgressPayload:
    """The job's whole current state, sent when a socket connects."""
    return _payload(instance, "snapshot", instance.log)


def publish(
    instance: TrackedProgress,
    message: str,
    *,
    step: str | None = None,
    percent: int | None = None,
    eta_seconds: int | None = None,
    extra_fields: tuple[str, ...] = (),
) -> ProgressPayload:
    """Record progress on the row, then push it to whoever follows the job.

    ``extra_fields`` names other fields the caller changed on ``instance`` that
    must be saved in the same write (the state, timings). The push waits for
    the surrounding transaction to commit, so a follower never sees a state
    that is then rolled back. A channel layer that is down is logged, never
    raised: progress must not break the work it describes.
    """
    now = timezone.now()
    if step is not None:
        instance.current_step = step
    if percent is not None:
        instance.percent = max(0, min(100, int(percent)))
    instance.eta_seconds = eta_seconds
    instance.message = message[:500]
    line = f"[{timezone.localtime(now):%H:%M:%S}] {message}\n"
    instance.log = (instance.log + line)[-LOG_LIMIT_CHARS:]
    instance.progress_at = now
    fields = ["current_step", "percent", "eta_seconds", "message", "log", "progress_at"]
    instance.save(update_fields=fields + [f for f in extra_fields if f not in fields])

    payload = _payload(instance, "update", line)
    transaction.on_commit(lambda: send(payload))
    return payload


def send(payload: ProgressPayload) -> None:
    """Send one payload to its job's group, logging instead of raising on failure."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(
            group_name(payload["kind"], payload["id"]), dict(payload)
        )
    except Exception as e:  # Redis down: the row still holds the truth.
        logger.warning(
            "Could not push progress for %s %s: %s", payload["kind"], payload["id"], e
        )
