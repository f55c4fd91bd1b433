"""Acceptance: a critical release with a deadline, end to end on real services.

The school runs the demo CLMS stack at 1.0.0 whose app asks the agent's
``GET /api/updates/enforcement`` on every operation. The real vendor server
publishes 1.0.2 as critical with a deadline eight days ahead. Before the
deadline: warnings at 7 days, 1 day and 1 hour, and an automatic schedule into
the last maintenance window before it. Time then travels past the deadline
with the schedule missed: pages, API and the demo app are blocked; an
emergency override unblocks for its duration and is audited; applying the
update through the pipeline unblocks for good.
"""

from __future__ import annotations

from datetime import time, timedelta

import pytest
import requests
import time_machine
from django.core import mail
from django.test import Client
from django.utils import timezone

from clms_updates.models import AuditEntry
from devtools.demo_stack import health
from tests.e2e_support import FAST_HEALTH, School, school_fixture  # noqa: F401
from updates import actions, enforcement
from updates.models import AgentState, MaintenanceWindow, UpdateRun
from updates.pipeline import execute_run
from vendor_server import indexing
from vendor_server.publishing import ReleaseDraft, publish

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.services,
    pytest.mark.docker,
    pytest.mark.e2e,
]


@pytest.fixture
def start_demo_stack(start_demo_stack, live_server):  # type: ignore[no-untyped-def]
    """The demo stack, with its app asking this agent whether it is blocked."""

    def start(version: str = "1.0.0", **options: object):  # type: ignore[no-untyped-def]
        options.setdefault(
            "enforcement_url", f"{live_server.url}/api/updates/enforcement"
        )
        return start_demo_stack(version, **options)

    return start


def publish_critical(school: School, version: str, tag: str, deadline) -> None:  # type: ignore[no-untyped-def]
    reference = school.images[tag]
    publish(
        ReleaseDraft(
            version=version,
            changelog=f"Security fix ({tag})",
            critical=True,
            force_after=deadline,
            images=[
                {"service": "app", "reference": reference},
                {"service": "worker", "reference": reference},
            ],
            migration={"service": "app", "command": ["migrate"]},
            health_check=dict(FAST_HEALTH),
        ),
        published_by="e2e",
    )
    indexing.forget_local_caches()


def books(school: School) -> requests.Response:
    return requests.get(f"{school.stack.url}/books", timeout=10)


def test_a_missed_critical_deadline_blocks_until_the_update_is_installed(
    school: School, admin_api, school_admin
) -> None:  # type: ignore[no-untyped-def]
    MaintenanceWindow.objects.create(
        weekdays=list(range(7)), start=time(22, 0), end=time(5, 0)
    )
    start = timezone.now().replace(microsecond=0)
    deadline = start + timedelta(days=8)
    publish_critical(school, "1.0.2", "1.0.2", deadline)
    assert books(school).status_code == 200

    # The agent finds it; before the deadline nothing is blocked.
    check = admin_api.get("/api/updates/check").json()
    assert (check["outcome"], check["found_version"]) == ("ok", "1.0.2"), check
    verdict = Client().get("/api/updates/enforcement").json()
    assert verdict["blocked"] is False
    assert verdict["critical_version"] == "1.0.2"
    assert 7 * 86400 < verdict["seconds_left"] <= 8 * 86400

    # Beat's pass: the update goes into the last window before the deadline.
    mail.outbox.clear()
    first = actions.enforcement_tick(start)
    run = UpdateRun.objects.get(pk=first["scheduled_run"])
    assert run.to_version == "1.0.2"
    assert deadline - timedelta(days=1) < run.scheduled_for < deadline
    assert first["warnings"] == []
    # Warnings at 7 days, 1 day and 1 hour before, once each.
    for before in (timedelta(days=6), timedelta(days=5), timedelta(hours=20)):
        actions.enforcement_tick(deadline - before)
    actions.enforcement_tick(deadline - timedelta(minutes=30))
    actions.enforcement_tick(deadline - timedelta(minutes=20))
    subjects = [m.subject for m in mail.outbox]
    assert len(subjects) == 3, subjects
    assert [
        "7 days" in subjects[0],
        "1 day" in subjects[1],
        "1 hour" in subjects[2],
    ] == [
        True,
        True,
        True,
    ]

    # Travel past the deadline; the scheduled run was missed (no worker ran it).
    with time_machine.travel(deadline + timedelta(hours=1), tick=True):
        run.refresh_from_db()
        assert run.state == UpdateRun.State.SCHEDULED
        assert enforcement.is_blocked()

        # Blocked: the demo app, the agent's pages and its non-update API.
        blocked = books(school)
        assert blocked.status_code == 423
        assert "1.0.2" in blocked.json()["message"]
        page = Client()
        page.force_login(school_admin)
        home = page.get("/")
        assert home.status_code == 423
        assert b'data-testid="blocking-dialog"' in home.content
        api = admin_api.get("/api/library/loans")
        assert api.status_code == 423
        assert api.json()["code"] == "blocked"
        # Updates, backups and status stay usable.
        assert page.get("/updates/").status_code == 200
        assert admin_api.get("/api/updates/checks").status_code == 200

        # An emergency override unblocks for its duration, audited.
        granted = admin_api.post(
            "/api/updates/enforcement/overrides",
            {"reason": "Exam week: update tonight", "hours": 2},
            format="json",
        )
        assert granted.status_code == 201, granted.content
        assert books(school).status_code == 200
        assert page.get("/").status_code != 423
        entry = AuditEntry.objects.get(action="updates.override.granted")
        assert entry.detail["reason"] == "Exam week: update tonight"
        assert entry.username == school_admin.username

    with time_machine.travel(deadline + timedelta(hours=3, minutes=5), tick=True):
        # The override ran out: blocked again, and the expiry is audited.
        actions.enforcement_tick()
        assert AuditEntry.objects.filter(action="updates.override.expired").exists()
        assert books(school).status_code == 423

        # Applying the update (the same pipeline) lifts the block for good.
        execute_run(run.pk)
        run.refresh_from_db()
        assert run.state == UpdateRun.State.SUCCEEDED, run.log
        assert AgentState.load().installed_version == "1.0.2"
        status, body = health(school.stack.health_url)
        assert (status, body["version"]) == (200, "1.0.2")
        assert not enforcement.is_blocked()
        assert books(school).status_code == 200

    with time_machine.travel(deadline + timedelta(days=30), tick=True):
        assert Client().get("/api/updates/enforcement").json()["blocked"] is False
        assert books(school).status_code == 200
