"""The release's own health check: N consecutive good answers within a timeout.

Docker's HEALTHCHECK only says a process answers; the release says what a
healthy CLMS looks like (path, status, a body field's value). While waiting,
the new containers are watched too, so one that crashes at start fails the
check at once instead of after the whole timeout.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import requests
from django.conf import settings

from clms_updates.manifest import HealthCheck
from updates.pipeline.errors import StepFailed

# One probe never waits longer than this for an answer.
PROBE_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class Probe:
    """One answer (or none) and whether it counts as healthy."""

    status: int
    body: dict[str, Any]
    healthy: bool
    reason: str


def for_version(spec: HealthCheck, *, written_for: str, version: str) -> HealthCheck:
    """``spec`` as it applies to ``version`` when it was written for ``written_for``.

    A release's check may demand its own version in a body field
    (``body_value`` equal to the release's version). Checking another version
    with it (the installed one before an update, the old one after a
    rollback) expects that version there instead; every other part (path,
    status, a field whose value is not the release's version) applies as is.
    """
    if spec.body_field and spec.body_value and spec.body_value == written_for:
        return replace(spec, body_value=version)
    return spec


def health_url(spec: HealthCheck) -> str:
    return settings.CLMS_APP_URL.rstrip("/") + spec.path


def probe(
    spec: HealthCheck, *, expect_version: str | None = None, url: str | None = None
) -> Probe:
    """Ask once; healthy when status, body field and (if reported) version match."""
    url = url or health_url(spec)
    try:
        response = requests.get(url, timeout=PROBE_TIMEOUT_SECONDS)
    except requests.RequestException as e:
        return Probe(0, {}, False, f"no answer from {url} ({type(e).__name__})")
    try:
        body = response.json()
    except (ValueError, json.JSONDecodeError):
        body = {}
    if not isinstance(body, dict):
        body = {}
    if response.status_code != spec.expected_status:
        said = ""
        if spec.body_field and spec.body_field in body:
            said = f" with {spec.body_field}={body[spec.body_field]!r}"
        return Probe(
            response.status_code,
            body,
            False,
            f"{url} answered {response.status_code}{said}, expected "
            f"{spec.expected_status}",
        )
    if spec.body_field:
        value = body.get(spec.body_field)
        if value is None or (spec.body_value and str(value) != spec.body_value):
            return Probe(
                response.status_code,
                body,
                False,
                f"{url} answered {spec.body_field}={value!r}, expected "
                f"{spec.body_value or 'a value'!r}",
            )
    reported = body.get("version")
    if expect_version and reported is not None and str(reported) != expect_version:
        return Probe(
            response.status_code,
            body,
            False,
            f"{url} reports version {reported}, expected {expect_version}",
        )
    return Probe(response.status_code, body, True, "healthy")


def wait_healthy(
    spec: HealthCheck,
    *,
    expect_version: str | None = None,
    crashed: Callable[[], str | None] | None = None,
    on_probe: Callable[[Probe, int], None] | None = None,
    timeout_seconds: float | None = None,
    code: str = "health_check_failed",
) -> Probe:
    """Probe until ``spec.successes`` healthy answers in a row, or raise ``StepFailed``.

    ``crashed()`` returns a reason when a watched container died; that fails
    the check at once with code ``container_crashed``.
    """
    timeout = timeout_seconds if timeout_seconds is not None else spec.timeout_seconds
    deadline = time.monotonic() + timeout
    streak = 0
    last = Probe(0, {}, False, "not asked yet")
    interval = spec.interval_ms / 1000
    while True:
        last = probe(spec, expect_version=expect_version)
        streak = streak + 1 if last.healthy else 0
        if on_probe is not None:
            on_probe(last, streak)
        if streak >= spec.successes:
            return last
        if crashed is not None:
            reason = crashed()
            if reason:
                raise StepFailed("container_crashed", reason)
        if time.monotonic() + interval > deadline:
            raise StepFailed(
                code,
                f"CLMS did not pass its health check ({spec.successes} good answers in "
                f"a row at {health_url(spec)}) within {timeout:g} s; last answer: "
                f"{last.reason}.",
            )
        time.sleep(interval)
