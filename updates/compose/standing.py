"""How the school's stack stands against its project, noted on the agent's state.

After every run (and whenever asked, ``actions.check_drift``) the agent
compares the running containers with the project (``stack.drift``) and keeps
the named volumes of services a release removed, with the version that left
them. The update manager shows both.
"""

from __future__ import annotations

import hashlib

import docker
from django.utils import timezone

from clms_updates import composecli as cli
from clms_updates.notify import notify
from updates.compose import stack
from updates.compose.project import Layout
from updates.models import AgentState


def record(
    layout: Layout,
    client: docker.DockerClient,
    *,
    left_by: str = "",
    volumes_before: set[str] | None = None,
) -> list[str]:
    """Check the stack for drift and note it, and any volume left behind; the drift."""
    found = stack.drift(layout, client)
    state = AgentState.load()
    try:
        declared = set((stack.resolved(layout).get("volumes") or {}).keys())
    except cli.ComposeFailed:
        declared = set()
    left = dict(state.left_volumes or {})
    for name in sorted((volumes_before or set()) - declared):
        left.setdefault(name, {"left_by": left_by, "at": timezone.now().isoformat()})
    for name in declared:
        left.pop(name, None)
    AgentState.objects.filter(pk=state.pk).update(
        drift=found, drift_checked_at=timezone.now(), left_volumes=left
    )
    if found and found != (state.drift or []):
        notify(
            "drift_found",
            {"drift": found},
            key=hashlib.sha256("\n".join(found).encode()).hexdigest(),
            email=False,
        )
    return found
