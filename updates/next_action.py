"""Where the installation stands, and the one action that moves it on.

Every state an admin can find the installation in has exactly one next step
here, so no page is a dead end: the update manager shows it as its first card,
the API answers it in ``GET /api/updates/latest``, and the tests walk the whole
table. The rules behind each step (what may be installed, what a deadline
blocks) stay in ``updates.actions``; this only reads the rows and names the
action that passes them.

=============== =========================================== ====================
Situation       What is true                                 Next action
=============== =========================================== ====================
needs_input     a run waits for settings the school gives    Give the settings
running         an update or rollback is in progress         Follow the progress
blocked         a critical deadline passed, not installed    Apply it now / Start it now
overridden      blocked, but an emergency override holds     Apply it now / Start it now
scheduled       a run waits for its time                     See the scheduled run
rolled_back     the only release offered was rolled back     Retry it anyway
available       a verified release is offered                Update now
offline         nothing offered and no source answers        Apply an offline bundle
up_to_date      nothing offered                              Check now
=============== =========================================== ====================
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from urllib.parse import urlencode

from django.urls import reverse
from django.utils import timezone

from updates import releases
from updates.enforcement.state import enforcement_state
from updates.models import AgentState, AvailableRelease, UpdateRun
from updates.scheduling import format_school_time


class Situation(StrEnum):
    NEEDS_INPUT = "needs_input"
    RUNNING = "running"
    BLOCKED = "blocked"
    OVERRIDDEN = "overridden"
    SCHEDULED = "scheduled"
    ROLLED_BACK = "rolled_back"
    AVAILABLE = "available"
    OFFLINE = "offline"
    UP_TO_DATE = "up_to_date"


@dataclass(frozen=True)
class NextAction:
    """The installation's situation in words, and the step a school admin takes."""

    situation: Situation
    title: str
    sentence: str
    label: str
    url: str
    method: str = "get"  # "post": a button in a form (with the CSRF token)
    release: AvailableRelease | None = None
    run: UpdateRun | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "situation": str(self.situation),
            "title": self.title,
            "sentence": self.sentence,
            "action": self.label,
            "url": self.url,
            "method": self.method.upper(),
            "version": self.release.version if self.release else None,
            "run": str(self.run.pk) if self.run else None,
        }


def install_url(release: AvailableRelease) -> str:
    """The confirmation page of installing ``release`` now (with the retry
    override when it was rolled back here)."""
    query = {"version": release.version}
    if release.rolled_back:
        query["force"] = "on"
    return f"{reverse('updates:update_now')}?{urlencode(query)}"


def next_action(now: datetime | None = None) -> NextAction:
    now = now or timezone.now()
    agent = AgentState.load()
    active = UpdateRun.active()
    state = enforcement_state(now)
    release = releases.latest_release()

    if active is not None and active.state == UpdateRun.State.WAITING:
        return NextAction(
            Situation.NEEDS_INPUT,
            f"CLMS {active.to_version} needs your input",
            active.error_message or "The release asks for settings the school gives.",
            "Give the settings",
            reverse("updates:manager") + "#settings",
            run=active,
        )
    if active is not None and active.state != UpdateRun.State.SCHEDULED:
        return NextAction(
            Situation.RUNNING,
            f"{active.get_kind_display()} in progress",
            f"CLMS {active.from_version} → {active.to_version}: "
            f"{active.message or 'starting'} ({active.percent}%).",
            "Follow the progress",
            reverse("updates:run", args=[active.pk]),
            run=active,
        )
    if state.deadline_passed and state.release is not None:
        situation = Situation.BLOCKED if state.blocked else Situation.OVERRIDDEN
        title = (
            "CLMS is blocked until the critical update is installed"
            if state.blocked
            else "An emergency override keeps CLMS usable for now"
        )
        if active is not None and active.kind == UpdateRun.Kind.UPDATE:
            return NextAction(
                situation,
                title,
                f"{state.message} An update to {active.to_version} is scheduled for "
                f"{format_school_time(active.scheduled_for)}; start it now instead.",
                "Start it now",
                reverse("updates:start_now", args=[active.pk]),
                method="post",
                release=state.release,
                run=active,
            )
        target = release or state.release
        return NextAction(
            situation,
            title,
            state.message,
            f"Apply CLMS {target.version} now…",
            install_url(target),
            release=target,
        )
    if active is not None:
        sentence = (
            state.schedule_note
            if state.scheduled_run is not None and state.scheduled_run.pk == active.pk
            else f"CLMS {active.to_version} is scheduled for "
            f"{format_school_time(active.scheduled_for)}. You can start it now or "
            "cancel it until then."
        )
        return NextAction(
            Situation.SCHEDULED,
            f"CLMS {active.to_version} is scheduled",
            sentence,
            "See the scheduled run",
            reverse("updates:run", args=[active.pk]),
            run=active,
        )
    if release is not None and release.rolled_back:
        when = (
            f" on {format_school_time(release.rolled_back_at)}"
            if release.rolled_back_at
            else ""
        )
        due = f" {state.message}" if state.release == release else ""
        return NextAction(
            Situation.ROLLED_BACK,
            f"CLMS {release.version} was rolled back",
            f"CLMS {release.version} was rolled back{when}, so it is not installed "
            "again on its own. Once the cause is fixed, retry it (the override is "
            f"recorded in the audit log).{due}",
            "Retry it anyway…",
            install_url(release),
            release=release,
        )
    if release is not None:
        due = f" {state.message}" if state.release == release else ""
        return NextAction(
            Situation.AVAILABLE,
            f"CLMS {release.version} is available",
            f"A verified release above the installed {agent.installed_version}.{due}",
            "Update now…",
            install_url(release),
            release=release,
        )
    if agent.offline:
        since = (
            f" since {format_school_time(agent.offline_since)}"
            if agent.offline_since
            else ""
        )
        return NextAction(
            Situation.OFFLINE,
            "No update source answers",
            f"The agent is offline{since}: {agent.offline_reason or 'no source answered'}. "
            "A signed offline bundle on a USB stick or a LAN share updates it too.",
            "Apply an offline bundle",
            reverse("updates:offline"),
        )
    return NextAction(
        Situation.UP_TO_DATE,
        f"CLMS {agent.installed_version} is up to date",
        f"CLMS {agent.installed_version} is the newest verified release the agent "
        "knows of.",
        "Check now",
        reverse("updates:check"),
        method="post",
    )
