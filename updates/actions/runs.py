"""Actions on update runs: schedule, update now, apply a bundle, cancel, roll back.

Each one checks every rule (``rules``), creates or changes the run in one
transaction with its audit entries, and queues the work on commit: a run due
now goes to a worker at once (``updates.execute_run``), and its beat trigger
stays as the fallback; the run's conditional claim makes sure only one of the
two drives it. ``background=False`` leaves the run to the caller instead (a
command that drives the pipeline in the foreground).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction

from clms_updates import audit
from clms_updates.actions import ActionRefused, Actor
from clms_updates.queueing import queue_on_commit
from updates import scheduling
from updates.actions import rules
from updates.models import AgentState, AvailableRelease, OfflineBundle, UpdateRun

RUN_TASK = "updates.execute_run"
# A run planned this close to now starts at once instead of waiting for beat.
START_NOW_WITHIN = timedelta(minutes=1)


@dataclass(frozen=True)
class SchedulePlan:
    """What a schedule would do, once every rule passed (shown before confirming)."""

    release: AvailableRelease
    at: datetime
    overrides: list[str] = field(default_factory=list)
    how: str = "at"

    @property
    def forced(self) -> bool:
        return bool(self.overrides)

    @property
    def inside_window(self) -> bool:
        return rules.OVERRIDE_WINDOW not in self.overrides


def plan_schedule(
    version: str,
    *,
    at: datetime | None = None,
    next_window: bool = False,
    force: bool = False,
    now: datetime | None = None,
) -> SchedulePlan:
    """Check every rule of scheduling ``version``; what it would do, or refused.

    ``at`` is an aware time; ``next_window`` asks for the next maintenance
    window instead. ``force`` is an admin's audited override: a time outside
    the windows, or a retry of a rolled-back release.
    """
    now = rules.now_or(now)
    release = rules.require_release(version)
    overrides = rules.release_overrides(release, force=force)
    if next_window:
        if at is not None:
            raise ActionRefused(
                "Give either a time or the next maintenance window, not both.",
                code="time_and_window",
                field="at",
            )
        at, how = rules.next_window(now), "window"
    elif at is None:
        raise ActionRefused(
            "Give either a time (school time) or ask for the next maintenance window.",
            code="no_time",
            field="at",
        )
    else:
        how = "at"
    overrides += rules.time_overrides(at, now=now, force=force)
    rules.check_before_deadline(at, now=now)
    rules.require_no_active_run()
    return SchedulePlan(release, at, overrides, how)


def plan_update_now(
    version: str, *, force: bool = False, now: datetime | None = None
) -> SchedulePlan:
    """Every rule of starting ``version`` now (outside a window it is an override)."""
    now = rules.now_or(now)
    release = rules.require_release(version)
    overrides = rules.release_overrides(release, force=force)
    overrides += rules.time_overrides(now, now=now, force=force, now_requested=True)
    rules.require_no_active_run()
    return SchedulePlan(release, now, overrides, "now")


def schedule_update(
    version: str,
    *,
    actor: Actor,
    at: datetime | None = None,
    next_window: bool = False,
    force: bool = False,
    now: datetime | None = None,
) -> UpdateRun:
    """Schedule ``version`` at ``at`` or in the next window (see ``plan_schedule``)."""
    rules.require_admin(actor)
    now = rules.now_or(now)
    plan = plan_schedule(version, at=at, next_window=next_window, force=force, now=now)
    return _create_update_run(plan, actor=actor, now=now)


def update_now(
    version: str,
    *,
    actor: Actor,
    force: bool = False,
    background: bool = True,
    now: datetime | None = None,
) -> UpdateRun:
    """Start ``version`` now (see ``plan_update_now``); a worker takes it at once."""
    rules.require_admin(actor)
    now = rules.now_or(now)
    plan = plan_update_now(version, force=force, now=now)
    return _create_update_run(plan, actor=actor, now=now, background=background)


def apply_bundle(
    bundle_id: int, *, actor: Actor, force: bool = False, now: datetime | None = None
) -> UpdateRun:
    """Install a verified offline bundle's release now, through the same pipeline."""
    rules.require_admin(actor)
    now = rules.now_or(now)
    bundle = OfflineBundle.objects.filter(pk=bundle_id).first()
    if bundle is None:
        raise ActionRefused(
            f"There is no offline bundle {bundle_id}; scan the offline folder again.",
            code="unknown_bundle",
            field="bundle",
        )
    if bundle.state != OfflineBundle.State.VERIFIED:
        raise ActionRefused(
            f"{bundle.file_name} is {bundle.get_state_display().lower()}; only a "
            "verified bundle can be applied.",
            code="bundle_not_verified",
            field="bundle",
            conflict=True,
        )
    plan = plan_update_now(bundle.version, force=force, now=now)
    plan = SchedulePlan(plan.release, plan.at, plan.overrides, "bundle")
    with transaction.atomic():
        run = _create_update_run(plan, actor=actor, now=now)
        audit.record(
            "updates.bundle.apply",
            actor=actor,
            target=f"run {run.pk}",
            bundle=bundle.file_name,
            version=bundle.version,
        )
    return run


def _create_update_run(
    plan: SchedulePlan, *, actor: Actor, now: datetime, background: bool = True
) -> UpdateRun:
    """Create the run of a checked plan, audit it (and its overrides), queue it."""
    with transaction.atomic():
        run = _create_run(
            actor=actor,
            kind=UpdateRun.Kind.UPDATE,
            release=plan.release,
            to_version=plan.release.version,
            at=plan.at,
            forced=plan.forced,
            trigger=background,
        )
        audit.record(
            "updates.schedule",
            actor=actor,
            target=f"run {run.pk}",
            version=run.to_version,
            scheduled_for=run.scheduled_for.isoformat(),
            forced=run.forced,
            how=plan.how,
        )
        if plan.overrides:
            audit.record(
                "updates.override",
                actor=actor,
                target=f"run {run.pk}",
                version=run.to_version,
                what="; ".join(plan.overrides),
            )
        if background:
            start_if_due(run, now)
    return run


def _create_run(
    *,
    actor: Actor,
    kind: str,
    release: AvailableRelease | None,
    to_version: str,
    at: datetime,
    forced: bool,
    trigger: bool = True,
) -> UpdateRun:
    """Create a scheduled run and its beat trigger; the one-run rule decides races."""
    installed = AgentState.load().installed_version
    try:
        with transaction.atomic():
            run = UpdateRun.create_active(
                release=release,
                kind=kind,
                from_version=installed,
                to_version=to_version,
                scheduled_for=at,
                requested_by=actor.user,
                forced=forced,
            )
            if trigger:
                scheduling.plan_trigger(run, at)
    except IntegrityError:
        raise ActionRefused(
            rules.run_active_message(UpdateRun.active()),
            code="run_active",
            conflict=True,
        ) from None
    run.publish_scheduled()
    return run


def start_if_due(run: UpdateRun, now: datetime) -> None:
    """A run due within a minute goes to a worker now, to start at its very time."""
    if run.scheduled_for <= now + START_NOW_WITHIN:
        wait = max(0.0, (run.scheduled_for - now).total_seconds())
        queue_on_commit(RUN_TASK, run.pk, countdown=wait or None)


def _scheduled_run(run_id: int, doing: str, *, kind: str | None = None) -> UpdateRun:
    """The scheduled run ``run_id``, locked for this transaction, or refused."""
    run = UpdateRun.objects.select_for_update().filter(pk=run_id).first()
    if run is None or (kind is not None and run.kind != kind):
        raise ActionRefused(
            f"There is no run {run_id}.", code="unknown_run", field="run"
        )
    if run.state != UpdateRun.State.SCHEDULED:
        raise ActionRefused(
            f"Run {run.pk} is {run.get_state_display().lower()}; only a scheduled "
            f"run can be {doing}.",
            code="not_scheduled",
            conflict=True,
        )
    return run


def cancel_run(
    run_id: int, *, actor: Actor, reason: str = "", code: str = "cancelled"
) -> UpdateRun:
    """Cancel a scheduled run and its beat trigger; it will never run.

    ``reason`` (and ``code``) are recorded on the run when the cancel is not
    an admin's own (a release the vendor withdrew).
    """
    rules.require_admin(actor)
    with transaction.atomic():
        run = _scheduled_run(run_id, "cancelled")
        run.cancel(reason, code=code)
        scheduling.drop_trigger(run)
        detail = {"version": run.to_version}
        if reason:
            detail["reason"] = reason
        audit.record("updates.cancel", actor=actor, target=f"run {run.pk}", **detail)
    return run


def start_now(run_id: int, *, actor: Actor, now: datetime | None = None) -> UpdateRun:
    """Start a scheduled update now instead of at its time (a missed critical
    deadline, an admin who is ready early).

    The scheduled run is cancelled and an update to the same version started
    in one transaction, through every rule of "update now"; a retry of a
    rolled-back release that was scheduled as one stays one.
    """
    rules.require_admin(actor)
    now = rules.now_or(now)
    with transaction.atomic():
        run = _scheduled_run(run_id, "started now", kind=UpdateRun.Kind.UPDATE)
        release = rules.require_release(run.to_version)
        force = release.rolled_back and run.forced
        cancel_run(run.pk, actor=actor, reason="started now instead")
        return update_now(run.to_version, actor=actor, force=force, now=now)


def plan_roll_back() -> str:
    """The version a rollback would go back to, or refused saying why there is none."""
    target = scheduling.previous_version()
    if target is None:
        installed = AgentState.load().installed_version
        raise ActionRefused(
            f"There is no earlier version to roll back to: CLMS {installed} was not "
            "installed by an update this agent recorded. To go back further, "
            "restore a backup from the Backups page.",
            code="no_previous_version",
            conflict=True,
        )
    rules.require_no_active_run()
    return target


def roll_back(
    *,
    actor: Actor,
    reason: str,
    background: bool = True,
    now: datetime | None = None,
) -> UpdateRun:
    """Go back to the version installed before this one, now, audited with why."""
    rules.require_admin(actor)
    now = rules.now_or(now)
    target = plan_roll_back()
    why = rules.require_reason(reason, what="roll back")
    with transaction.atomic():
        run = _create_run(
            actor=actor,
            kind=UpdateRun.Kind.ROLLBACK,
            release=None,
            to_version=target,
            at=now,
            forced=True,
            trigger=background,
        )
        audit.record(
            "updates.rollback",
            actor=actor,
            target=f"run {run.pk}",
            from_version=run.from_version,
            to_version=run.to_version,
            reason=why,
        )
        if background:
            start_if_due(run, now)
    return run
