"""The run's own record of its steps and of what it changed (its checkpoint).

Each step is an entry in ``UpdateRun.steps`` with its start and end time, so
the page shows where time went and a resumed run knows what is done. The
checkpoint (``UpdateRun.checkpoint``) holds what a later worker needs to
finish or undo the run: the old containers' images, the env file's old
values, whether the migration started. Both are written before the change
they describe goes ahead, so a crash at any point leaves enough to recover.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from clms_updates import progress
from updates.models import UpdateRun

DONE = "done"
RUNNING = "running"
FAILED = "failed"
SKIPPED = "skipped"
WAITING = "waiting"


def step_entry(run: UpdateRun, name: str) -> dict[str, Any] | None:
    """The latest record of step ``name`` on the run, if it ever started."""
    for entry in reversed(run.steps):
        if entry.get("name") == name:
            return dict(entry)
    return None


def is_done(run: UpdateRun, name: str) -> bool:
    """True when step ``name`` finished (done or skipped) on an earlier pass."""
    entry = step_entry(run, name)
    return entry is not None and entry.get("status") in (DONE, SKIPPED)


def begin_step(
    run: UpdateRun,
    name: str,
    message: str,
    *,
    percent: int,
    eta_seconds: int | None = None,
) -> None:
    """Record that step ``name`` starts (again, after a crash) and publish it."""
    now = timezone.now().isoformat()
    entry = step_entry(run, name)
    if entry is not None and entry.get("status") == RUNNING:
        # A worker died inside this step: keep its start, note the resume.
        entry["resumed_at"] = now
        _replace(run, entry)
    else:
        run.steps = [
            *run.steps,
            {
                "name": name,
                "status": RUNNING,
                "started_at": now,
                "finished_at": None,
                "seconds": None,
                "detail": "",
            },
        ]
    progress.publish(
        run,
        message,
        step=name,
        percent=percent,
        eta_seconds=eta_seconds,
        extra_fields=("steps",),
    )


def end_step(
    run: UpdateRun,
    name: str,
    message: str,
    *,
    status: str = DONE,
    detail: str = "",
    percent: int | None = None,
    eta_seconds: int | None = None,
) -> None:
    """Record how step ``name`` ended (done, skipped or failed) and publish it."""
    entry = step_entry(run, name) or {"name": name, "started_at": None}
    finished = timezone.now()
    entry["status"] = status
    entry["finished_at"] = finished.isoformat()
    entry["detail"] = detail[:2000]
    if entry.get("started_at"):
        started = _parse(entry["started_at"])
        entry["seconds"] = round((finished - started).total_seconds(), 2)
    if step_entry(run, name) is None:
        run.steps = [*run.steps, entry]
    else:
        _replace(run, entry)
    progress.publish(
        run,
        message,
        step=name,
        percent=percent,
        eta_seconds=eta_seconds,
        extra_fields=("steps",),
    )


def _replace(run: UpdateRun, entry: dict[str, Any]) -> None:
    steps = list(run.steps)
    for i in range(len(steps) - 1, -1, -1):
        if steps[i].get("name") == entry["name"]:
            steps[i] = entry
            break
    run.steps = steps


def _parse(value: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(value)


def save_checkpoint(run: UpdateRun, **values: Any) -> None:
    """Merge ``values`` into the run's checkpoint and write it at once."""
    run.checkpoint = {**run.checkpoint, **values}
    run.save(update_fields=["checkpoint"])
