"""The enforcement state: the pending critical release, its deadline, the block."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import semver
from django.utils import timezone

from updates.models import AgentState, AvailableRelease, EmergencyOverride, UpdateRun
from updates.scheduling import format_school_time

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EnforcementState:
    """Where the installation stands against the pending critical release, if any."""

    release: AvailableRelease | None
    installed_version: str
    deadline: datetime | None
    seconds_left: int | None
    deadline_passed: bool
    override: EmergencyOverride | None
    scheduled_run: UpdateRun | None

    @property
    def blocked(self) -> bool:
        """Past the deadline, not updated, and no override in force."""
        return self.deadline_passed and self.override is None

    @property
    def pending(self) -> bool:
        """A critical release waits to be installed (before or after its deadline)."""
        return self.release is not None

    @property
    def message(self) -> str:
        """What the CLMS app and the pages tell users, in one sentence or two."""
        if self.release is None or self.deadline is None:
            return f"CLMS {self.installed_version} has no pending critical update."
        when = format_school_time(self.deadline)
        if self.blocked:
            return (
                f"CLMS is blocked: the critical update to {self.release.version} was "
                f"due by {when} and is not installed. A school admin must apply it on "
                "the Updates page (or grant a temporary emergency override)."
            )
        if self.deadline_passed and self.override is not None:
            return (
                f"The critical update to {self.release.version} was due by {when}; an "
                f"emergency override keeps CLMS usable until "
                f"{format_school_time(self.override.expires_at)}. Apply the update "
                "before then."
            )
        return (
            f"Critical update {self.release.version} must be installed by {when}; "
            "after that CLMS is blocked until it is."
        )

    @property
    def schedule_note(self) -> str:
        """Where the scheduled critical run stands against the deadline, truthfully."""
        run, deadline = self.scheduled_run, self.deadline
        if run is None or deadline is None or self.release is None:
            return ""
        when = format_school_time(run.scheduled_for)
        due = format_school_time(deadline)
        if run.scheduled_for < deadline:
            return (
                f"Critical update CLMS {self.release.version} is scheduled for {when}, "
                f"before its deadline {due}."
            )
        return (
            f"Critical update CLMS {self.release.version} is scheduled for {when}, "
            f"after its deadline {due}: CLMS is blocked from the deadline until it "
            "runs. Move it earlier on the Updates page."
        )

    def as_dict(self) -> dict[str, Any]:
        """The JSON answer of ``GET /api/updates/enforcement``."""
        override = self.override
        run = self.scheduled_run
        return {
            "blocked": self.blocked,
            "message": self.message,
            "installed_version": self.installed_version,
            "critical_version": self.release.version if self.release else None,
            "deadline": self.deadline.isoformat() if self.deadline else None,
            "seconds_left": self.seconds_left,
            "deadline_passed": self.deadline_passed,
            "override": {
                "id": override.pk,
                "by": override.username,
                "reason": override.reason,
                "expires_at": override.expires_at.isoformat(),
            }
            if override
            else None,
            "scheduled_for": run.scheduled_for.isoformat() if run else None,
        }


def _version(text: str) -> semver.Version | None:
    try:
        return semver.Version.parse(text)
    except (ValueError, TypeError):
        return None


def pending_critical_release(
    installed_version: str | None = None,
) -> AvailableRelease | None:
    """The critical release above the installed version with the earliest deadline.

    A critical release that was rolled back still counts: its deadline is a
    security deadline, and only installing it (or a later version) lifts it.
    One the vendor withdrew does not count: it will not be installed.
    """
    installed = _version(installed_version or AgentState.load().installed_version)
    if installed is None:
        return None
    pending = [
        r
        for r in AvailableRelease.objects.filter(
            critical=True, force_after__isnull=False, withdrawn_at__isnull=True
        )
        if (v := _version(r.version)) is not None and v > installed
    ]
    return min(pending, key=lambda r: (r.force_after, r.version), default=None)


def active_override(now: datetime | None = None) -> EmergencyOverride | None:
    """The override in force at ``now``, if any (the one that lasts longest)."""
    now = now or timezone.now()
    return (
        EmergencyOverride.objects.filter(
            revoked_at__isnull=True, created_at__lte=now, expires_at__gt=now
        )
        .order_by("-expires_at")
        .first()
    )


def enforcement_state(now: datetime | None = None) -> EnforcementState:
    """Compute the state from the rows: installed version, releases, overrides."""
    now = now or timezone.now()
    installed = AgentState.load().installed_version
    release = pending_critical_release(installed)
    if release is None or release.force_after is None:
        return EnforcementState(None, installed, None, None, False, None, None)
    seconds_left = int((release.force_after - now).total_seconds())
    passed = now >= release.force_after
    run = UpdateRun.objects.filter(
        state=UpdateRun.State.SCHEDULED, to_version=release.version
    ).first()
    return EnforcementState(
        release=release,
        installed_version=installed,
        deadline=release.force_after,
        seconds_left=seconds_left,
        deadline_passed=passed,
        override=active_override(now) if passed else None,
        scheduled_run=run,
    )


def is_blocked(now: datetime | None = None) -> bool:
    """True while the installation is blocked by a missed critical deadline."""
    return enforcement_state(now).blocked
