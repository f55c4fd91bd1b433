"""Updating the agent itself: ask for it, or let it wait for what is in its way.

An agent update never runs beside another run (the runs' one active slot),
nor while a backup or a restore is busy. Asked for while one is, it is
remembered (``AgentState.agent_update_pending``) and started by
``start_pending_agent_update`` as soon as nothing is in the way: when that
run ends (the pipeline queues it) and on every enforcement tick. A critical
agent release is planned that way for the next maintenance window by itself
(``UPDATES_AGENT_AUTO_CRITICAL``), unless the school pinned the agent.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction

from backups import operations as backups
from clms_updates import audit
from clms_updates.actions import VIA_SYSTEM, ActionRefused, Actor
from clms_updates.queueing import queue_on_commit
from updates import scheduling
from updates.actions import rules
from updates.models import AgentRelease, AgentState, UpdateRun
from updates.selfupdate.checking import offered

RUN_TASK = "updates.execute_run"


def plan_update_agent(version: str) -> AgentRelease:
    """The verified agent release ``version`` that may be installed, or why not."""
    release = offered()
    if release is None or release.version != version:
        running = settings.AGENT_VERSION
        pin = settings.UPDATES_AGENT_PIN
        raise ActionRefused(
            f"CLMS Updates {version} is not an agent release this school may install "
            f"now (it runs {running}"
            + (f"; it is pinned to {pin} by UPDATES_AGENT_PIN" if pin else "")
            + "). Check for updates first.",
            code="unknown_version",
            field="version",
        )
    return release


def _in_the_way() -> str:
    """Why an agent update cannot start now ('' when nothing is in the way)."""
    active = UpdateRun.active()
    if active is not None:
        return rules.run_active_message(active)
    return backups.busy_reason()


def update_agent(
    version: str, *, actor: Actor, now: datetime | None = None
) -> UpdateRun | None:
    """Update the agent to ``version`` now, or as soon as nothing is in the way.

    Returns the run, or None when the update waits (for the active run, or a
    busy backup): it starts by itself then.
    """
    rules.require_admin(actor)
    now = rules.now_or(now)
    release = plan_update_agent(version)
    active = UpdateRun.active()
    if active is not None and active.kind == UpdateRun.Kind.AGENT:
        raise ActionRefused(
            f"The agent is already updating itself (run {active.pk}).",
            code="run_active",
            conflict=True,
        )
    blocked = _in_the_way()
    if blocked:
        AgentState.objects.filter(pk=AgentState.load().pk).update(
            agent_update_pending=release.version,
            agent_update_not_before=None,
            agent_update_requested_by=actor.user,
        )
        audit.record(
            "updates.agent_update.requested",
            actor=actor,
            target=f"agent {release.version}",
            waiting=blocked,
        )
        return None
    return _start(release, actor=actor, now=now)


def _start(release: AgentRelease, *, actor: Actor, now: datetime) -> UpdateRun:
    try:
        with transaction.atomic():
            run = UpdateRun.create_active(
                agent_release=release,
                kind=UpdateRun.Kind.AGENT,
                from_version=settings.AGENT_VERSION,
                to_version=release.version,
                scheduled_for=now,
                requested_by=actor.user,
                forced=True,
            )
            AgentState.objects.filter(pk=AgentState.load().pk).update(
                agent_update_pending="",
                agent_update_not_before=None,
                agent_update_requested_by=None,
            )
            audit.record(
                "updates.agent_update",
                actor=actor,
                target=f"run {run.pk}",
                from_version=run.from_version,
                to_version=run.to_version,
            )
            queue_on_commit(RUN_TASK, run.pk)
    except IntegrityError:
        raise ActionRefused(
            rules.run_active_message(UpdateRun.active()),
            code="run_active",
            conflict=True,
        ) from None
    return run


def start_pending_agent_update(*, now: datetime | None = None) -> UpdateRun | None:
    """Start the agent update that waits, if nothing is in its way any more."""
    now = rules.now_or(now)
    state = AgentState.load()
    if not state.agent_update_pending:
        return None
    if state.agent_update_not_before and now < state.agent_update_not_before:
        return None
    if _in_the_way():
        return None
    release = offered()
    if release is None or release.version != state.agent_update_pending:
        AgentState.objects.filter(pk=state.pk).update(agent_update_pending="")
        return None
    # Started on the requester's behalf (the audit names them), by the system.
    actor = Actor(user=state.agent_update_requested_by, address=None, via=VIA_SYSTEM)
    try:
        return _start(release, actor=actor, now=now)
    except ActionRefused:
        return None  # another run took the slot first: the next tick tries again


def plan_critical_agent_update(
    release: AgentRelease, *, now: datetime | None = None
) -> None:
    """A critical agent release waits for the next maintenance window by itself."""
    now = rules.now_or(now)
    if not (release.critical and settings.UPDATES_AGENT_AUTO_CRITICAL):
        return
    state = AgentState.load()
    if state.agent_update_pending == release.version:
        return
    try:
        at = (
            now
            if scheduling.is_inside_window(now)
            else scheduling.next_window_start(now)
        )
    except scheduling.SchedulingError:
        return  # no window at all: the admin applies it from the page
    AgentState.objects.filter(pk=state.pk).update(
        agent_update_pending=release.version,
        agent_update_not_before=at,
        agent_update_requested_by=None,
    )
    audit.record(
        "updates.agent_update.planned",
        actor=Actor.system(),
        target=f"agent {release.version}",
        at=at.isoformat(),
        critical=True,
    )
