"""Tell the vendor how a run ended; tell the admins at once when it failed.

The report follows the vendor school API contract (``POST reports``) with the
agent's own vendor settings and HTTP client (``updates.sources.VendorSource``).
A vendor that does not answer never changes the run's outcome: the report is
retried later by a task, and the run records when it was delivered.
"""

from __future__ import annotations

import logging
from urllib.parse import urljoin

import requests
from django.conf import settings
from django.utils import timezone

from clms_updates.notify import notify
from updates.models import UpdateRun
from updates.sources import SourceNotConfigured, SourceRefused, VendorSource
from updates.sources.vendor import check_url_allowed

logger = logging.getLogger(__name__)

OUTCOMES = {
    UpdateRun.State.SUCCEEDED: "succeeded",
    UpdateRun.State.ROLLED_BACK: "rolled_back",
    UpdateRun.State.FAILED: "failed",
}
LOG_EXCERPT_CHARS = 4000


def report_body(run: UpdateRun) -> dict[str, object]:
    """The report per the contract: versions, outcome, duration, error code, log tail."""
    duration = 0
    if run.started_at and run.finished_at:
        duration = max(0, int((run.finished_at - run.started_at).total_seconds()))
    body: dict[str, object] = {
        "run_id": run.pk,
        "from_version": run.from_version,
        "to_version": run.to_version,
        "outcome": OUTCOMES[UpdateRun.State(run.state)],
        "kind": "rollback" if run.kind == UpdateRun.Kind.ROLLBACK else "update",
        "duration_seconds": duration,
        "error_code": run.error_code,
        "log_excerpt": run.log[-LOG_EXCERPT_CHARS:],
    }
    if run.kind == UpdateRun.Kind.AGENT:
        body["product"] = settings.UPDATES_AGENT_PRODUCT
    return body


def send_report(run: UpdateRun) -> bool:
    """POST the report once; True when the vendor stored it (or none is configured).

    Raises nothing: a failure is logged and False returned so a task retries.
    """
    if run.state not in OUTCOMES or run.reported_at is not None:
        return True
    try:
        source = VendorSource.from_settings()
    except SourceNotConfigured as e:
        logger.info("Run %s not reported: %s", run.pk, e)
        return True
    url = urljoin(source.base_url, "reports")
    try:
        check_url_allowed(url)
        response = source.session.post(
            url,
            json=report_body(run),
            headers={
                "Authorization": f"Bearer {source.api_key}",
                "X-CLMS-Version": source.installed_version,
                "X-Agent-Version": settings.AGENT_VERSION,
                "Accept": "application/json",
            },
            timeout=settings.UPDATES_SOURCE_TIMEOUT_SECONDS,
        )
    except (requests.RequestException, SourceRefused) as e:
        logger.warning("Reporting run %s to the vendor failed: %s", run.pk, e)
        return False
    if response.status_code != 201:
        logger.warning(
            "The vendor refused the report of run %s (%s): %s",
            run.pk,
            response.status_code,
            response.text[:300],
        )
        # A 4xx will not get better by retrying; only retry server-side trouble.
        return response.status_code < 500 and response.status_code != 429
    run.reported_at = timezone.now()
    run.save(update_fields=["reported_at"])
    return True


def alert_admins(run: UpdateRun) -> None:
    """Tell the admins at once that a run failed, with what to do next."""
    rolled = any(s.get("name", "").startswith("rollback") for s in run.steps)
    if not settings.ADMIN_EMAILS:
        logger.error("Run %s failed and no ADMIN_EMAILS is set to tell", run.pk)
    notify(
        "run_failed",
        {"run": run, "rolled": rolled, "log_tail": run.log[-3000:]},
        key=f"run {run.pk}",
    )
