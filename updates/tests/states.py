"""Installation states the page and walk tests set up, one function each.

``STATES`` maps a state's name to its arrangement and the situation
``updates.next_action`` must find in it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from django.utils import timezone

from updates.models import AgentState, EmergencyOverride, UpdateRun
from updates.next_action import Situation
from updates.tests.factories import make_release, make_run


def installed(version: str = "1.0.2") -> None:
    AgentState.objects.update_or_create(pk=1, defaults={"installed_version": version})
    AgentState.load()


def critical(*, hours: float, rolled_back: bool = False):  # type: ignore[no-untyped-def]
    now = timezone.now()
    return make_release(
        "1.0.3",
        critical=True,
        force_after=now + timedelta(hours=hours),
        rolled_back=rolled_back,
        rolled_back_at=now - timedelta(minutes=5) if rolled_back else None,
    )


def up_to_date() -> None:
    installed()


def available() -> None:
    installed()
    make_release("1.1.0")


def rolled_back() -> None:
    installed()
    make_release("1.1.0", rolled_back=True, rolled_back_at=timezone.now())


def scheduled() -> None:
    installed()
    make_run(make_release("1.1.0"), from_version="1.0.2")


def running() -> None:
    installed()
    make_run(
        make_release("1.1.0"),
        from_version="1.0.2",
        state=UpdateRun.State.RUNNING,
        started_at=timezone.now(),
    )


def needs_input() -> None:
    installed()
    make_run(
        make_release("1.1.0"),
        from_version="1.0.2",
        state=UpdateRun.State.WAITING,
        error_message="CLMS 1.1.0 needs SMTP_HOST.",
    )


def blocked_after_a_rollback_below_it() -> None:
    """Issue 15's dead end: 1.0.3 (critical, due) was rolled back to 1.0.2."""
    installed()
    critical(hours=-1, rolled_back=True)


def blocked_with_a_run_after_the_deadline() -> None:
    installed()
    release = critical(hours=-1)
    make_run(release, from_version="1.0.2")


def overridden() -> None:
    blocked_after_a_rollback_below_it()
    EmergencyOverride.objects.create(
        username="school-admin-user",
        reason="exams",
        release_version="1.0.3",
        expires_at=timezone.now() + timedelta(hours=2),
    )


def offline() -> None:
    installed()
    AgentState.objects.update(
        offline=True,
        offline_since=timezone.now(),
        offline_reason="vendor: connection refused",
    )


STATES: dict[str, tuple[Callable[[], None], Situation]] = {
    "up to date": (up_to_date, Situation.UP_TO_DATE),
    "update available": (available, Situation.AVAILABLE),
    "rolled back": (rolled_back, Situation.ROLLED_BACK),
    "scheduled": (scheduled, Situation.SCHEDULED),
    "running": (running, Situation.RUNNING),
    "needs input": (needs_input, Situation.NEEDS_INPUT),
    "blocked after a rollback below it": (
        blocked_after_a_rollback_below_it,
        Situation.BLOCKED,
    ),
    "blocked with a run after the deadline": (
        blocked_with_a_run_after_the_deadline,
        Situation.BLOCKED,
    ),
    "overridden": (overridden, Situation.OVERRIDDEN),
    "offline": (offline, Situation.OFFLINE),
}


def critical_run_after_its_deadline() -> None:
    """A run planned before the critical release arrived, for after its deadline."""
    installed()
    release = critical(hours=2)
    make_run(
        release, from_version="1.0.2", scheduled_for=timezone.now() + timedelta(hours=3)
    )


def critical_run_before_its_deadline() -> None:
    installed()
    release = critical(hours=5)
    make_run(
        release, from_version="1.0.2", scheduled_for=timezone.now() + timedelta(hours=1)
    )


STATES.update(
    {
        "critical run after its deadline": (
            critical_run_after_its_deadline,
            Situation.SCHEDULED,
        ),
        "critical run before its deadline": (
            critical_run_before_its_deadline,
            Situation.SCHEDULED,
        ),
    }
)
