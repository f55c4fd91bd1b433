"""The rules a run must pass before it exists, each written once.

Every action that creates a run (schedule, update now, apply a bundle, move
or plan the critical update, roll back) asks these; none of the entry points
checks a rule itself. Each refusal is an ``ActionRefused`` naming the field,
the rule (``code``) and what to do. Rules that an admin may lift (a time
outside the maintenance windows, retrying a rolled-back release) return what
was lifted, so the action audits it as an override.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from clms_updates.actions import ActionRefused, Actor
from clms_updates.manifest import ManifestError, parse_version
from clms_updates.permissions import require_school_admin
from updates import scheduling
from updates.enforcement.state import enforcement_state
from updates.models import AgentState, AvailableRelease, UpdateRun

# "Now" as an admin means it: a time up to this far in the past still counts.
NOW_SLACK = timedelta(minutes=1)

OVERRIDE_WINDOW = "run outside the maintenance windows"
OVERRIDE_ROLLED_BACK = "retry a version that was rolled back"


def school_time(moment: datetime) -> str:
    """``Tue 01 Dec 2026, 22:00 GMT``: how every rule names a time (as the pages)."""
    return scheduling.format_school_time(moment)


def require_admin(actor: Actor) -> None:
    """Changes over HTTP need a school admin (see ``require_school_admin``)."""
    require_school_admin(actor)


def require_release(version: str) -> AvailableRelease:
    """The verified available release ``version``, or refused (field ``version``)."""
    release = AvailableRelease.objects.filter(version=str(version).strip()).first()
    if release is None:
        raise ActionRefused(
            f"{version or 'That version'} is not a verified available release; "
            "press “Check now” (or check for updates) and pick a version it found.",
            code="unknown_release",
            field="version",
        )
    return release


def release_overrides(release: AvailableRelease, *, force: bool) -> list[str]:
    """The release may be installed over what runs now; returns the overrides used.

    Refused: the installed version, a lower one, one ``min_version`` does not
    allow from here, one the vendor withdrew; a rolled-back one unless
    ``force`` (then ``OVERRIDE_ROLLED_BACK`` is returned for the audit).
    """
    installed_text = AgentState.load().installed_version
    try:
        installed = parse_version(installed_text, field_name="installed version")
        target = parse_version(release.version)
    except ManifestError as e:
        raise ActionRefused(str(e), code="bad_version", field="version") from None
    if target == installed:
        raise ActionRefused(
            f"CLMS {release.version} is already installed; there is nothing to update.",
            code="already_installed",
            field="version",
            conflict=True,
        )
    if target < installed:
        raise ActionRefused(
            f"CLMS {release.version} is lower than the installed {installed_text}; an "
            "update never moves down. To go back, roll back (that is audited).",
            code="lower_version",
            field="version",
            conflict=True,
        )
    if release.min_version and installed < parse_version(release.min_version):
        raise ActionRefused(
            f"CLMS {release.version} can only be installed over {release.min_version} "
            f"or later and {installed_text} is installed; install the stepping-stone "
            "release first.",
            code="min_version",
            field="version",
            conflict=True,
        )
    if release.withdrawn:
        assert release.withdrawn_at is not None
        raise ActionRefused(
            f"CLMS {release.version} was withdrawn by the vendor on "
            f"{school_time(release.withdrawn_at)} (it is no longer in the vendor's "
            "signed index), so it cannot be installed; wait for the vendor's next "
            "release.",
            code="withdrawn",
            field="version",
            conflict=True,
        )
    if release.rolled_back:
        if not force:
            when = (
                f" on {school_time(release.rolled_back_at)}"
                if release.rolled_back_at
                else ""
            )
            raise ActionRefused(
                f"CLMS {release.version} was rolled back{when}, so it is not retried "
                "unless an admin overrides that (the override is audited): tick "
                "“Retry it anyway”, send force: true, or pass --force.",
                code="rolled_back",
                field="version",
                conflict=True,
            )
        return [OVERRIDE_ROLLED_BACK]
    return []


def time_overrides(
    at: datetime, *, now: datetime, force: bool, now_requested: bool = False
) -> list[str]:
    """``at`` is usable: not in the past, inside a window unless ``force``.

    ``now_requested`` is an admin's "start now": outside the windows it is
    an override of its own accord (returned for the audit), never a refusal.
    """
    if at < now - NOW_SLACK:
        raise ActionRefused(
            f"{school_time(at)} is in the past; choose a future time.",
            code="in_the_past",
            field="at",
        )
    if scheduling.is_inside_window(at):
        return []
    if force or now_requested:
        return [OVERRIDE_WINDOW]
    raise ActionRefused(
        f"{school_time(at)} is outside every maintenance window (or on a blackout "
        "date). Pick a time inside a window, ask for the next window, or override "
        "the windows (audited).",
        code="outside_window",
        field="at",
    )


def check_before_deadline(at: datetime, *, now: datetime) -> None:
    """While a critical deadline is ahead, no run may be planned after it.

    A run after the deadline would leave CLMS blocked before it starts, and as
    the one active run it would keep the critical update from being planned.
    """
    state = enforcement_state(now)
    if state.release is None or state.deadline is None or state.deadline_passed:
        return
    if at >= state.deadline:
        raise ActionRefused(
            f"CLMS {state.release.version} is a critical update due by "
            f"{school_time(state.deadline)}; a run at {school_time(at)} would start "
            "after that, with CLMS already blocked. Choose a time before the "
            "deadline.",
            code="after_deadline",
            field="at",
        )


def next_window(now: datetime) -> datetime:
    """The start of the next maintenance window, or refused (field ``when``)."""
    try:
        return scheduling.next_window_start(now)
    except scheduling.SchedulingError as e:
        raise ActionRefused(
            f"{str(e).capitalize()}.", code="no_window", field="when"
        ) from None


def require_no_active_run() -> None:
    """Only one run at a time (the database enforces it too, against races)."""
    active = UpdateRun.active()
    if active is not None:
        raise ActionRefused(
            run_active_message(active), code="run_active", conflict=True
        )


def run_active_message(active: UpdateRun | None) -> str:
    if active is None:
        return (
            "Another run is already pending; cancel it first or wait for it to finish."
        )
    return (
        f"Run {active.pk} (CLMS {active.to_version}) is already "
        f"{active.get_state_display().lower()}. Cancel it first or wait for it to "
        "finish."
    )


def require_reason(reason: str, *, what: str) -> str:
    """A person's reason for an audited change (at least a few characters)."""
    text = (reason or "").strip()
    if len(text) < 3:
        raise ActionRefused(
            f"Say why you {what}; the reason is kept in the audit log.",
            code="reason_required",
            field="reason",
        )
    return text


def now_or(now: datetime | None) -> datetime:
    return now or timezone.now()
