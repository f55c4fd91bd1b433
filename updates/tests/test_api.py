"""The /api/updates/ REST API: auth, permissions, throttling, validation, filters."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine
from django.urls import include, path
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from clms_updates.models import AuditEntry
from updates.models import BlackoutPeriod, MaintenanceWindow, UpdateCheck, UpdateRun
from updates.tests.factories import (
    make_manifest,
    make_release,
    make_run,
    make_weeknight_window,
)

pytestmark = pytest.mark.django_db

# A Friday noon in winter (Europe/London = UTC); tonight's window opens at 22:00.
FRIDAY_NOON = datetime(2030, 1, 4, 12, 0, tzinfo=UTC)


@pytest.fixture
def frozen():  # type: ignore[no-untyped-def]
    with time_machine.travel(FRIDAY_NOON, tick=True) as traveller:
        yield traveller


# ---------------------------------------------------------------------------
# Auth and permissions
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method,url",
    [
        ("get", "/api/updates/check"),
        ("get", "/api/updates/latest"),
        ("get", "/api/updates/checks"),
        ("post", "/api/updates/schedule"),
        ("get", "/api/updates/status/1"),
        ("get", "/api/updates/history"),
        ("delete", "/api/updates/cancel/1"),
        ("post", "/api/updates/rollback"),
        ("get", "/api/updates/windows"),
        ("get", "/api/updates/blackouts"),
        ("get", "/api/updates/audit"),
    ],
)
def test_every_route_needs_authentication(method: str, url: str) -> None:
    response = getattr(APIClient(), method)(url)
    assert response.status_code in (401, 403)
    assert "credentials" in response.json()["detail"]


def test_a_token_authenticates(school_viewer) -> None:
    token = Token.objects.create(user=school_viewer)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get("/api/updates/latest").status_code == 200


def test_a_user_outside_the_school_groups_is_refused(outsider) -> None:
    client = APIClient()
    client.force_authenticate(outsider)
    assert client.get("/api/updates/latest").status_code == 403


def test_viewers_read_but_cannot_write(viewer_api) -> None:
    make_release("1.1.0")
    assert viewer_api.get("/api/updates/history").status_code == 200
    response = viewer_api.post(
        "/api/updates/schedule", {"version": "1.1.0"}, format="json"
    )
    assert response.status_code == 403
    assert viewer_api.put("/api/updates/windows", [], format="json").status_code == 403
    assert viewer_api.get("/api/updates/audit").status_code == 403


def test_every_route_is_throttled_with_retry_after(viewer_api, settings) -> None:
    settings.UPDATES_API_THROTTLE = "3/minute"
    codes = [viewer_api.get("/api/updates/latest").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    response = viewer_api.get("/api/updates/history")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0


# ---------------------------------------------------------------------------
# Check and latest
# ---------------------------------------------------------------------------


def test_check_returns_the_verified_release_and_is_audited(admin_api, vendor) -> None:
    vendor.publish([make_manifest("1.1.0")])
    body = admin_api.get("/api/updates/check").json()
    assert body["outcome"] == "ok"
    assert body["release"]["version"] == "1.1.0"
    assert "Faster loans" in body["release"]["changelog"]
    entry = AuditEntry.objects.get(action="updates.check")
    assert entry.username == "school-admin-user" and entry.address == "127.0.0.1"

    latest = admin_api.get("/api/updates/latest").json()
    assert latest["release"]["version"] == "1.1.0"
    assert latest["agent"]["installed_version"] == "1.0.0"
    assert latest["last_check"]["outcome"] == "ok"


def test_check_shows_the_refusal_reason(admin_api, vendor) -> None:
    vendor.publish([make_manifest("1.1.0")])
    text, signature = vendor.index
    vendor.index = (text.replace("1.1.0", "1.1.1"), signature)
    body = admin_api.get("/api/updates/check").json()
    assert body["outcome"] == "refused"
    assert "does not verify" in body["reason"]
    assert body["release"] is None


def test_a_session_get_answers_from_a_recent_check_a_token_checks_each_time(
    school_admin, vendor
) -> None:
    """A page of another site can make the browser send the cookie with a GET:
    that costs the agent at most one check a minute. A token (no browser) and
    a POST (CSRF-protected) check every time."""
    vendor.publish([make_manifest("1.1.0")])
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(school_admin)
    first = browser.get("/api/updates/check").json()
    for _ in range(5):
        assert browser.get("/api/updates/check").json()["id"] == first["id"]
    assert UpdateCheck.objects.count() == 1
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=61)):
        assert browser.get("/api/updates/check").json()["id"] != first["id"]
    assert UpdateCheck.objects.count() == 2

    # A POST from the browser needs its CSRF token: a cross-site form has none.
    assert browser.post("/api/updates/check").status_code == 403
    assert UpdateCheck.objects.count() == 2

    token = Token.objects.create(user=school_admin)
    script = APIClient()
    script.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    script.get("/api/updates/check")
    script.post("/api/updates/check")
    assert UpdateCheck.objects.count() == 4


def test_past_checks_list_their_refusal_reasons(
    admin_api, viewer_api, vendor, settings
) -> None:
    vendor.publish([make_manifest("1.1.0")])
    settings.UPDATES_VENDOR_KEY_FINGERPRINTS = ["0" * 40]
    admin_api.get("/api/updates/check")
    settings.UPDATES_VENDOR_KEY_FINGERPRINTS = [vendor.fingerprint]
    admin_api.get("/api/updates/check")
    # Checking is an admin's action everywhere (the page says so too).
    assert viewer_api.get("/api/updates/check").status_code == 403
    refused = viewer_api.get("/api/updates/checks", {"outcome": "refused"}).json()
    assert refused["count"] == 1
    assert "not a pinned vendor key" in refused["results"][0]["reason"]
    assert viewer_api.get("/api/updates/checks").json()["count"] == 2


def test_latest_without_releases_says_so(viewer_api) -> None:
    body = viewer_api.get("/api/updates/latest").json()
    assert body["release"] is None and body["last_check"] is None


def test_a_withdrawn_release_is_not_latest_and_cannot_be_scheduled(
    admin_api, frozen
) -> None:
    make_weeknight_window()
    make_release("1.1.0", withdrawn_at=FRIDAY_NOON - timedelta(hours=1))
    assert admin_api.get("/api/updates/latest").json()["release"] is None
    response = schedule(admin_api, version="1.1.0", next_window=True)
    # Refused by the installation's state: 409, as every route that schedules.
    assert response.status_code == 409
    assert "withdrawn by the vendor" in response.json()["version"][0]
    assert not UpdateRun.objects.exists()


# ---------------------------------------------------------------------------
# Schedule: validation
# ---------------------------------------------------------------------------


def schedule(client, **data):  # type: ignore[no-untyped-def]
    return client.post("/api/updates/schedule", data, format="json")


def test_schedule_into_the_next_window(admin_api, frozen) -> None:
    make_weeknight_window()
    make_release("1.1.0")
    response = schedule(admin_api, version="1.1.0", next_window=True)
    assert response.status_code == 201, response.json()
    run = response.json()
    assert run["scheduled_for"].startswith("2030-01-04T22:00:00")
    assert run["state"] == "scheduled"
    assert AuditEntry.objects.filter(action="updates.schedule").count() == 1


def test_a_school_time_without_offset_is_school_time(
    admin_api, frozen, settings
) -> None:
    settings.UPDATES_SCHOOL_TIME_ZONE = "Europe/Paris"
    MaintenanceWindow.objects.create(
        weekdays=list(range(7)), start=time(22, 0), end=time(5, 0)
    )
    make_release("1.1.0")
    response = schedule(admin_api, version="1.1.0", at="2030-01-04T23:30:00")
    assert response.status_code == 201, response.json()
    assert response.json()["scheduled_for"].startswith("2030-01-04T22:30:00")


def test_a_time_in_the_dst_gap_is_a_field_error(admin_api, settings) -> None:
    make_release("1.1.0")
    with time_machine.travel(datetime(2030, 3, 1, tzinfo=UTC), tick=True):
        response = schedule(
            admin_api, version="1.1.0", at="2030-03-31T01:30:00", force=True
        )
    assert response.status_code == 400
    assert "does not exist" in response.json()["at"][0]


def test_an_unknown_version_is_a_field_error(admin_api) -> None:
    response = schedule(admin_api, version="9.9.9", next_window=True)
    assert response.status_code == 400
    assert "not a verified available release" in response.json()["version"][0]


def test_a_past_time_is_a_field_error(admin_api, frozen) -> None:
    make_release("1.1.0")
    response = schedule(admin_api, version="1.1.0", at="2030-01-03T22:30:00Z")
    assert response.status_code == 400
    assert "in the past" in response.json()["at"][0]


def test_a_time_outside_the_windows_needs_force(admin_api, frozen) -> None:
    make_weeknight_window()
    make_release("1.1.0")
    response = schedule(admin_api, version="1.1.0", at="2030-01-04T15:00:00Z")
    assert response.status_code == 400
    assert "outside every maintenance window" in response.json()["at"][0]

    response = schedule(
        admin_api, version="1.1.0", at="2030-01-04T15:00:00Z", force=True
    )
    assert response.status_code == 201
    assert response.json()["forced"] is True
    assert AuditEntry.objects.filter(action="updates.override").exists()


def test_a_time_in_a_blackout_needs_force(admin_api, frozen) -> None:
    make_weeknight_window()
    BlackoutPeriod.objects.create(
        start_date=FRIDAY_NOON.date(), end_date=FRIDAY_NOON.date(), reason="Exams"
    )
    make_release("1.1.0")
    response = schedule(admin_api, version="1.1.0", at="2030-01-04T22:30:00Z")
    assert response.status_code == 400
    assert "blackout" in response.json()["at"][0]


def test_a_second_pending_run_is_refused(admin_api, frozen) -> None:
    make_weeknight_window()
    make_release("1.1.0")
    assert schedule(admin_api, version="1.1.0", next_window=True).status_code == 201
    response = schedule(admin_api, version="1.1.0", next_window=True)
    assert response.status_code == 409
    assert "already scheduled" in response.json()["non_field_errors"][0]


def test_a_rolled_back_version_needs_an_admin_override(admin_api, frozen) -> None:
    make_weeknight_window()
    make_release("1.1.0", rolled_back=True)
    response = schedule(admin_api, version="1.1.0", next_window=True)
    assert response.status_code == 409
    assert "was rolled back" in response.json()["version"][0]
    assert (
        schedule(admin_api, version="1.1.0", next_window=True, force=True).status_code
        == 201
    )


def test_time_and_next_window_are_exclusive(admin_api, frozen) -> None:
    make_release("1.1.0")
    response = schedule(admin_api, version="1.1.0")
    assert response.status_code == 400
    assert "either a time" in response.json()["at"][0]


# ---------------------------------------------------------------------------
# Status, history, cancel, rollback
# ---------------------------------------------------------------------------


def test_status_shows_one_run(viewer_api) -> None:
    run = make_run()
    body = viewer_api.get(f"/api/updates/status/{run.pk}").json()
    assert body["id"] == run.pk and body["state"] == "scheduled"
    assert viewer_api.get("/api/updates/status/99999").status_code == 404


def test_history_is_paginated_and_filtered(viewer_api) -> None:
    release = make_release("1.1.0")
    other = make_release("1.2.0")
    for i in range(30):
        make_run(
            other if i % 3 == 0 else release,
            state=UpdateRun.State.CANCELLED,
            created_at=FRIDAY_NOON - timedelta(days=i),
        )
    page = viewer_api.get("/api/updates/history").json()
    assert page["count"] == 30 and len(page["results"]) == 25 and page["next"]

    by_version = viewer_api.get("/api/updates/history", {"version": "1.2.0"}).json()
    assert by_version["count"] == 10
    by_status = viewer_api.get("/api/updates/history", {"status": "succeeded"}).json()
    assert by_status["count"] == 0
    by_date = viewer_api.get(
        "/api/updates/history", {"date_from": "2029-12-31", "date_to": "2030-01-04"}
    ).json()
    assert by_date["count"] == 5
    bad = viewer_api.get("/api/updates/history", {"status": "nonsense"})
    assert bad.status_code == 400 and "status" in bad.json()


def test_cancel_a_scheduled_run(admin_api) -> None:
    run = make_run()
    response = admin_api.delete(f"/api/updates/cancel/{run.pk}")
    assert response.status_code == 200
    assert response.json()["state"] == "cancelled"
    assert AuditEntry.objects.get(action="updates.cancel").target == f"run {run.pk}"
    again = admin_api.delete(f"/api/updates/cancel/{run.pk}")
    assert again.status_code == 409
    assert "only a scheduled run can be cancelled" in again.json()["detail"]


def test_rollback_without_an_earlier_version_is_a_conflict(admin_api) -> None:
    response = admin_api.post("/api/updates/rollback", {}, format="json")
    assert response.status_code == 409
    assert "no earlier version" in response.json()["detail"]


def test_rollback_creates_a_rollback_run_and_is_audited(admin_api) -> None:
    from updates.models import AgentState

    make_run(make_release("1.1.0"), state=UpdateRun.State.SUCCEEDED)
    AgentState.objects.update_or_create(pk=1, defaults={"installed_version": "1.1.0"})
    response = admin_api.post(
        "/api/updates/rollback", {"reason": "loans page broken"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["kind"] == "rollback"
    assert response.json()["to_version"] == "1.0.0"
    entry = AuditEntry.objects.get(action="updates.rollback")
    assert entry.detail["reason"] == "loans page broken"


# ---------------------------------------------------------------------------
# Windows, blackouts, audit
# ---------------------------------------------------------------------------


def test_windows_are_replaced_as_a_whole(admin_api) -> None:
    make_weeknight_window()
    response = admin_api.put(
        "/api/updates/windows",
        [{"weekdays": [5, 6, 5], "start": "01:00", "end": "06:00"}],
        format="json",
    )
    assert response.status_code == 200, response.json()
    windows = admin_api.get("/api/updates/windows").json()
    assert len(windows) == 1 and windows[0]["weekdays"] == [5, 6]
    assert AuditEntry.objects.filter(action="updates.windows").exists()


def test_bad_windows_are_field_errors_and_change_nothing(admin_api) -> None:
    make_weeknight_window()
    response = admin_api.put(
        "/api/updates/windows",
        [{"weekdays": [7], "start": "01:00", "end": "01:00"}],
        format="json",
    )
    assert response.status_code == 400
    assert "weekdays" in response.json()["0"]
    assert MaintenanceWindow.objects.count() == 1


def test_blackouts_are_validated_and_replaced(admin_api) -> None:
    bad = admin_api.put(
        "/api/updates/blackouts",
        [{"start_date": "2030-05-10", "end_date": "2030-05-01"}],
        format="json",
    )
    assert bad.status_code == 400 and "end_date" in bad.json()["0"]
    good = admin_api.put(
        "/api/updates/blackouts",
        [{"start_date": "2030-05-01", "end_date": "2030-05-20", "reason": "Exams"}],
        format="json",
    )
    assert good.status_code == 200
    assert BlackoutPeriod.objects.get().reason == "Exams"


def test_admins_see_the_audit_log(admin_api) -> None:
    run = make_run()
    admin_api.delete(f"/api/updates/cancel/{run.pk}")
    body = admin_api.get("/api/updates/audit", {"action": "updates.cancel"}).json()
    assert body["count"] == 1
    assert body["results"][0]["username"] == "school-admin-user"


# ---------------------------------------------------------------------------
# OpenAPI
# ---------------------------------------------------------------------------


def test_the_updates_schema_validates_without_warnings() -> None:
    patterns = [path("api/updates/", include("updates.api.urls"))]
    GENERATOR_STATS.reset()
    schema = SchemaGenerator(patterns=patterns).get_schema(request=None, public=True)
    validate_schema(schema)
    assert not GENERATOR_STATS, "drf-spectacular reported warnings or errors"
    assert "/api/updates/schedule" in schema["paths"]
