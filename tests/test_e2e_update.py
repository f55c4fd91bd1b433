"""Acceptance: a school finds an update on the real vendor server, schedules it in
its own time zone, and beat and a worker apply it at that time with nothing lost."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone

from backups.models import Backup
from devtools.demo_stack import health
from tests.e2e_support import School, school_fixture  # noqa: F401  (fixture)
from updates import runtime, scheduling
from updates.compose import stack
from updates.models import AgentState, MaintenanceWindow, UpdateRun
from updates.pipeline import maintenance
from updates.tests.pipeline_fixtures import library_rows
from vendor_server.models import UpdateReport

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.services,
    pytest.mark.docker,
    pytest.mark.e2e,
]

STEPS = [
    "preflight",
    "fetch",
    "verify",
    "backup",
    "maintenance",
    "apply",
    "migrate",
    "health",
    "commit",
]


def test_an_update_found_on_the_vendor_server_runs_at_the_chosen_school_time(
    school: School, admin_api
) -> None:  # type: ignore[no-untyped-def]
    rows_before = library_rows(school.database_url)
    school.publish("1.0.1", "1.0.1")

    check = admin_api.get("/api/updates/check")
    assert check.status_code == 200, check.content
    assert check.json()["outcome"] == "ok", check.json()
    assert check.json()["found_version"] == "1.0.1"

    # Tonight's window is open now, in the school's zone.
    local_now = timezone.now().astimezone(scheduling.school_zone())
    MaintenanceWindow.objects.create(
        weekdays=list(range(7)),
        start=time(0, 0),
        end=time(23, 59),
    )
    if local_now.time() >= time(23, 58):
        pytest.skip("too close to midnight for a same-day window")
    beat = school.start_beat()
    school.start_worker()
    local_now = timezone.now().astimezone(scheduling.school_zone())
    at = (local_now + timedelta(seconds=6)).replace(microsecond=0, tzinfo=None)
    answer = admin_api.post(
        "/api/updates/schedule",
        {"version": "1.0.1", "at": at.isoformat()},
        format="json",
    )
    assert answer.status_code == 201, answer.content
    run_id = answer.json()["id"]

    run = school.wait_until_over(run_id, timeout=150)

    assert run.state == UpdateRun.State.SUCCEEDED, run.log + school.logs()
    assert run.started_at >= run.scheduled_for
    assert run.scheduled_for == scheduling.local_to_utc(at)
    assert "updates.execute_run" in beat.tail(20000)
    backup = Backup.objects.get(pk=run.backup_id)
    assert backup.status == Backup.Status.VERIFIED
    assert backup.clms_version == "1.0.0"
    status, body = health(school.stack.health_url)
    assert (status, body["version"], body["status"]) == (200, "1.0.1", "ok")
    client = runtime.docker_client()
    images = {
        c.name: c.attrs["Config"]["Image"]
        for cs in stack.service_containers(client, school.stack.project).values()
        for c in cs
    }
    assert set(images.values()) == {school.images["1.0.1"]}
    assert library_rows(school.database_url) == rows_before
    assert AgentState.load().installed_version == "1.0.1"
    assert maintenance.current() is None

    history = admin_api.get("/api/updates/history").json()["results"]
    listed = next(item for item in history if item["id"] == run_id)
    assert listed["state"] == "succeeded"
    assert [step["name"] for step in listed["steps"]] == STEPS
    assert all(
        datetime.fromisoformat(step["finished_at"])
        >= datetime.fromisoformat(step["started_at"])
        for step in listed["steps"]
    )
    report = UpdateReport.objects.get(run_id=run_id)
    assert (report.outcome, report.from_version, report.to_version) == (
        "succeeded",
        "1.0.0",
        "1.0.1",
    )
