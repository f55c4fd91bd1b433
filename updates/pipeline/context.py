"""What every step works with: the run, its plan, the engine, the lease."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
from django.conf import settings

from clms_updates import progress
from updates import runtime
from updates.compose.project import Layout
from updates.models import UpdateRun
from updates.pipeline.errors import StepFailed
from updates.pipeline.lease import Lease
from updates.pipeline.plan import Plan


@dataclass(frozen=True)
class Step:
    """One step of a run: what it does, and its shape on the progress bar.

    ``share`` is the part of the progress bar (percent) the step fills and
    ``seconds`` how long it typically takes (for the ETA); the tables of
    steps are ``steps.UPDATE_STEPS`` and ``rollback.ROLLBACK_STEPS``.
    """

    name: str
    run: Callable[[Context], str | None]
    message: str
    label: str
    share: int
    seconds: int


@dataclass(frozen=True)
class Position:
    """Where a step sits in its table: its percent at start and the work after it."""

    step: Step
    start_percent: int
    seconds_after: int

    def percent_at(self, fraction: float) -> int:
        """The progress bar when the step is ``fraction`` (0-1) done."""
        fraction = min(max(fraction, 0.0), 1.0)
        return self.start_percent + int(self.step.share * fraction)


def positions(steps: tuple[Step, ...]) -> dict[str, Position]:
    """Each step of a table with its starting percent and the seconds after it."""
    found: dict[str, Position] = {}
    percent = 0
    for index, step in enumerate(steps):
        after = sum(s.seconds for s in steps[index + 1 :])
        found[step.name] = Position(step, percent, after)
        percent += step.share
    return found


@dataclass
class Context:
    """A run being driven: its row, its plan, the engine, and the lease."""

    run: UpdateRun
    plan: Plan
    lease: Lease | None = None
    started: float = field(default_factory=time.monotonic)
    _client: docker.DockerClient | None = None
    # The step being driven now and when it started (set by the runner).
    position: Position | None = None
    step_started: float = field(default_factory=time.monotonic)

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

    def layout(self) -> Layout:
        """The project as it was when the run started (recorded by the preflight)."""
        return Layout.from_dict(self.checkpoint["layout"])

    def target(self) -> Layout:
        """The project the run moves to (recorded by the apply step)."""
        return Layout.from_dict(self.checkpoint["target"])

    def snapshot_file(self) -> Path:
        """Where the project's files as they were before the run are kept."""
        return Path(self.checkpoint["snapshot"])

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

    def eta_seconds(self, fraction: float = 0.0) -> int | None:
        """Seconds left in the run, from how far the current step is and its clock.

        A step half done after 20 s has about 20 s left, whatever its typical
        time said; before any progress its typical time stands.
        """
        if self.position is None:
            return None
        elapsed = time.monotonic() - self.step_started
        if fraction > 0.05:
            left = elapsed * (1 - fraction) / fraction
        else:
            left = max(self.position.step.seconds - elapsed, 1)
        return int(left + self.position.seconds_after + 0.5)

    def report(
        self, fraction: float, message: str, *, step_left: float | None = None
    ) -> None:
        """Progress inside the current step: ``fraction`` (0-1) of it is done.

        ``step_left`` is what the step knows is left of it at most (a wait
        with a timeout), used instead of the estimate from its clock.
        """
        percent = self.position.percent_at(fraction) if self.position else None
        eta = self.eta_seconds(fraction)
        if step_left is not None and self.position is not None:
            eta = int(step_left + self.position.seconds_after + 0.5)
        progress.publish(self.run, message, percent=percent, eta_seconds=eta)
