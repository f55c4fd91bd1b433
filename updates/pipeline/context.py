"""What every step works with: the run, its plan, the engine, the lease."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
from django.conf import settings

from updates import runtime
from updates.models import UpdateRun
from updates.pipeline.errors import StepFailed
from updates.pipeline.lease import Lease
from updates.pipeline.plan import Plan

# Step name -> (percent at its start, typical seconds) for percent and ETA.
STEP_SHAPE: dict[str, tuple[int, int]] = {
    "preflight": (0, 2),
    "fetch": (5, 10),
    "verify": (30, 1),
    "backup": (33, 10),
    "maintenance": (55, 1),
    "apply": (57, 3),
    "migrate": (70, 5),
    "health": (80, 5),
    "commit": (95, 1),
}
STEP_ORDER = tuple(STEP_SHAPE)


def eta_after(step: str) -> int:
    """Typical seconds left from the start of ``step`` to the end of the run."""
    index = STEP_ORDER.index(step)
    return sum(STEP_SHAPE[name][1] for name in STEP_ORDER[index:])


@dataclass
class Context:
    """A run being driven: its row, its plan, the engine, and the lease."""

    run: UpdateRun
    plan: Plan
    lease: Lease | None = None
    started: float = field(default_factory=time.monotonic)
    _client: docker.DockerClient | None = None

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            try:
                self._client = runtime.docker_client()
            except runtime.DockerUnavailable as e:
                raise StepFailed("docker_unavailable", str(e), transient=True) from None
        return self._client

    @property
    def project(self) -> str:
        return str(settings.CLMS_COMPOSE_PROJECT)

    @property
    def checkpoint(self) -> dict[str, Any]:
        return self.run.checkpoint

    def env_file(self) -> Path:
        """The compose env file the preflight chose (setting, else compose label)."""
        return Path(self.checkpoint["env_file"])

    def container_names(self) -> dict[str, str]:
        """Container name -> service, for the services this run changes."""
        return dict(self.checkpoint.get("containers") or {})

    def image_for_reference(self, reference: str) -> str:
        """What to run for ``reference``: as fetched (an offline image's id) or itself."""
        return str(
            (self.checkpoint.get("local_images") or {}).get(reference, reference)
        )

    def image_for(self, service: str) -> str:
        """What to run for ``service``'s image in the plan (see ``image_for_reference``)."""
        return self.image_for_reference(self.plan.images[service])

    def check_lease(self) -> None:
        if self.lease is not None:
            self.lease.check()
