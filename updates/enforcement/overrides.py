"""Emergency overrides: a school admin lifts the block for a few hours, audited."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from clms_updates import audit
from clms_updates.permissions import is_school_admin
from updates.enforcement.state import enforcement_state
from updates.models import EmergencyOverride

logger = logging.getLogger(__name__)


class OverrideRefused(Exception):
    """An emergency override that may not be granted or revoked; the message says why."""


def grant_override(
    *,
    user: Any,
    reason: str,
    hours: float | None = None,
    request: HttpRequest | None = None,
    now: datetime | None = None,
) -> EmergencyOverride:
    """Lift the block for ``hours`` (at most ``UPDATES_OVERRIDE_MAX_HOURS``), audited.

    Refused (``OverrideRefused``) for anyone but a school admin, without a
    reason, beyond the maximum, or when nothing is blocked.
    """
    now = now or timezone.now()
    limit = settings.UPDATES_OVERRIDE_MAX_HOURS
    hours = limit if hours is None else hours
    if not is_school_admin(user):
        raise OverrideRefused("only a school admin may grant an emergency override")
    reason = (reason or "").strip()
    if len(reason) < 5:
        raise OverrideRefused(
            "give a reason (at least a few words) for the emergency override; it is "
            "kept in the audit log"
        )
    if not 0 < hours <= limit:
        raise OverrideRefused(
            f"an emergency override lasts at most {limit} hours "
            "(UPDATES_OVERRIDE_MAX_HOURS); ask for less"
        )
    state = enforcement_state(now)
    if state.release is None or not state.deadline_passed:
        raise OverrideRefused(
            "nothing is blocked: an override is only needed after a critical "
            "deadline has passed"
        )
    override = EmergencyOverride.objects.create(
        user=user,
        username=user.get_username(),
        reason=reason,
        release_version=state.release.version,
        created_at=now,
        expires_at=now + timedelta(hours=hours),
    )
    audit.record(
        "updates.override.granted",
        user=user,
        request=request,
        target=f"override {override.pk}",
        reason=reason,
        release=state.release.version,
        expires_at=override.expires_at.isoformat(),
        hours=hours,
    )
    logger.warning(
        "Emergency override %s by %s until %s: %s",
        override.pk,
        override.username,
        override.expires_at,
        reason,
    )
    return override


def revoke_override(
    override: EmergencyOverride,
    *,
    user: Any,
    request: HttpRequest | None = None,
    now: datetime | None = None,
) -> EmergencyOverride:
    """End an override early (school admins only), audited."""
    now = now or timezone.now()
    if not is_school_admin(user):
        raise OverrideRefused("only a school admin may revoke an emergency override")
    changed = EmergencyOverride.objects.filter(
        pk=override.pk, revoked_at__isnull=True
    ).update(revoked_at=now, revoked_by=user.get_username())
    if not changed:
        raise OverrideRefused(f"override {override.pk} was already revoked")
    override.refresh_from_db()
    audit.record(
        "updates.override.revoked",
        user=user,
        request=request,
        target=f"override {override.pk}",
        release=override.release_version,
    )
    return override


def record_expired_overrides(now: datetime | None = None) -> int:
    """Audit each override that has run out, once; return how many were recorded.

    Runs at worker start-up and on every tick, so an override that expired
    while nothing ran is still noticed and logged.
    """
    now = now or timezone.now()
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
