"""Actions of critical deadlines: overrides, moving or planning the critical update.

Emergency overrides lift the block for at most ``UPDATES_OVERRIDE_MAX_HOURS``
with a reason; every grant, revocation and expiry is audited. The critical
update is planned by beat into the last maintenance window before its
deadline (``plan_critical_update``, the system acting) unless a run is
already pending, and an admin may move it earlier (``move_critical_update``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction

from clms_updates import audit
from clms_updates.actions import VIA_SCHEDULE, ActionRefused, Actor
from clms_updates.notify import notify
from updates.actions import rules
from updates.actions.runs import cancel_run, schedule_update
from updates.actions.selfupdate import start_pending_agent_update
from updates.enforcement.deadlines import critical_slot_start, send_deadline_warnings
from updates.enforcement.state import enforcement_state
from updates.models import EmergencyOverride, UpdateRun

logger = logging.getLogger(__name__)


def grant_override(
    *,
    actor: Actor,
    reason: str,
    hours: float | None = None,
    now: datetime | None = None,
) -> EmergencyOverride:
    """Lift the block for ``hours`` (at most ``UPDATES_OVERRIDE_MAX_HOURS``), audited.

    Refused without a reason, beyond the maximum, or when nothing is blocked.
    """
    rules.require_admin(actor)
    now = rules.now_or(now)
    limit = settings.UPDATES_OVERRIDE_MAX_HOURS
    hours = limit if hours is None else hours
    text = (reason or "").strip()
    if len(text) < 5:
        raise ActionRefused(
            "Give a reason (at least a few words) for the emergency override; it is "
            "kept in the audit log.",
            code="reason_required",
            field="reason",
        )
    if not 0 < hours <= limit:
        raise ActionRefused(
            f"An emergency override lasts at most {limit} hours "
            "(UPDATES_OVERRIDE_MAX_HOURS); ask for less.",
            code="too_long",
            field="hours",
        )
    state = enforcement_state(now)
    if state.release is None or not state.deadline_passed:
        raise ActionRefused(
            "Nothing is blocked: an override is only needed after a critical "
            "deadline has passed.",
            code="not_blocked",
            conflict=True,
        )
    with transaction.atomic():
        override = EmergencyOverride.objects.create(
            user=actor.user,
            username=actor.username or actor.describe(),
            reason=text,
            release_version=state.release.version,
            created_at=now,
            expires_at=now + timedelta(hours=hours),
        )
        audit.record(
            "updates.override.granted",
            actor=actor,
            target=f"override {override.pk}",
            reason=text,
            release=state.release.version,
            expires_at=override.expires_at.isoformat(),
            hours=hours,
        )
    logger.warning(
        "Emergency override %s by %s until %s: %s",
        override.pk,
        override.username,
        override.expires_at,
        text,
    )
    notify(
        "override_granted",
        {"override": override},
        key=f"override {override.pk}",
        email=False,
    )
    return override


def revoke_override(
    override_id: int, *, actor: Actor, now: datetime | None = None
) -> EmergencyOverride:
    """End an override early, audited."""
    rules.require_admin(actor)
    now = rules.now_or(now)
    with transaction.atomic():
        changed = EmergencyOverride.objects.filter(
            pk=override_id, revoked_at__isnull=True
        ).update(revoked_at=now, revoked_by=actor.username or actor.describe())
        override = EmergencyOverride.objects.filter(pk=override_id).first()
        if override is None:
            raise ActionRefused(
                f"There is no override {override_id}.",
                code="unknown_override",
                field="override",
            )
        if not changed:
            raise ActionRefused(
                f"Override {override_id} was already revoked.",
                code="already_revoked",
                conflict=True,
            )
        audit.record(
            "updates.override.revoked",
            actor=actor,
            target=f"override {override.pk}",
            release=override.release_version,
        )
    return override


def expire_overrides(now: datetime | None = None) -> int:
    """Audit each override that has run out, once; return how many were recorded.

    Runs at worker start-up and on every tick, so an override that expired
    while nothing ran is still noticed and logged.
    """
    now = rules.now_or(now)
    count = 0
    for override in EmergencyOverride.objects.filter(
        expires_at__lte=now, expiry_recorded_at__isnull=True
    ):
        marked = EmergencyOverride.objects.filter(
            pk=override.pk, expiry_recorded_at__isnull=True
        ).update(expiry_recorded_at=now)
        if not marked:
            continue
        count += 1
        if override.revoked_at is None:
            audit.record(
                "updates.override.expired",
                target=f"override {override.pk}",
                release=override.release_version,
                expired_at=override.expires_at.isoformat(),
            )
            logger.warning(
                "Emergency override %s expired at %s; the block applies again if the "
                "critical update is still missing",
                override.pk,
                override.expires_at,
            )
    return count


def plan_critical_update(now: datetime | None = None) -> UpdateRun | None:
    """Schedule the pending critical release before its deadline; return the new run.

    1. Nothing to do when no critical release is pending, its deadline passed,
       or any run is already pending (an admin's earlier schedule wins; the
       schedule rules keep it before the deadline).
    2. Otherwise the run goes into the last maintenance window starting before
       the deadline; without one, one hour before the deadline (or now),
       overriding the windows, since a missed deadline blocks the school.
    """
    now = rules.now_or(now)
    state = enforcement_state(now)
    release = state.release
    if release is None or state.deadline is None or state.deadline_passed:
        return None
    if UpdateRun.active() is not None:
        return None
    at = critical_slot_start(state.deadline, now)
    outside = at is None
    if at is None:
        at = max(now, state.deadline - timedelta(hours=1))
    actor = Actor.system(VIA_SCHEDULE)
    try:
        with transaction.atomic():
            run = schedule_update(
                release.version, actor=actor, at=at, force=outside, now=now
            )
            audit.record(
                "updates.critical.scheduled",
                actor=actor,
                target=f"run {run.pk}",
                release=release.version,
                deadline=state.deadline.isoformat(),
                scheduled_for=at.isoformat(),
                outside_window=outside,
            )
    except ActionRefused as e:
        logger.info("Critical update %s not scheduled: %s", release.version, e)
        return None
    return run


def move_critical_update(
    at: datetime, *, actor: Actor, now: datetime | None = None
) -> UpdateRun:
    """Move the scheduled critical update to ``at`` (UTC), before the deadline.

    The old run is cancelled and the new one created in one transaction, so
    the periodic pass cannot slip its own schedule in between. A time outside
    the maintenance windows is allowed (an audited override): the admin chose it.
    """
    rules.require_admin(actor)
    now = rules.now_or(now)
    state = enforcement_state(now)
    if state.release is None or state.deadline is None:
        raise ActionRefused(
            "No critical update is pending.", code="no_critical_update", conflict=True
        )
    if not now - rules.NOW_SLACK <= at < state.deadline:
        raise ActionRefused(
            f"Choose a time from now until the deadline "
            f"({rules.school_time(state.deadline)}).",
            code="after_deadline",
            field="at",
        )
    with transaction.atomic():
        if state.scheduled_run is not None:
            cancel_run(state.scheduled_run.pk, actor=actor)
        run = schedule_update(
            state.release.version, actor=actor, at=at, force=True, now=now
        )
        audit.record(
            "updates.critical.moved",
            actor=actor,
            target=f"run {run.pk}",
            release=state.release.version,
            scheduled_for=at.isoformat(),
        )
    return run


def enforcement_tick(now: datetime | None = None) -> dict[str, Any]:
    """The periodic pass: record expired overrides, plan the update, send warnings."""
    now = rules.now_or(now)
    expired = expire_overrides(now)
    run = plan_critical_update(now)
    warned = send_deadline_warnings(now)
    agent_run = start_pending_agent_update(now=now)
    return {
        "expired_overrides": expired,
        "scheduled_run": run.pk if run else None,
        "warnings": warned,
        "agent_run": agent_run.pk if agent_run else None,
    }
