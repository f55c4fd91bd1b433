"""Every entry point of every run action gives the same refusals and the same audit.

One table of actions (schedule, update now, apply a bundle, roll back, cancel,
grant an override) times every entry point that offers it (the page, the API,
the management command): each rule the action checks is broken in turn, and
each entry point must refuse with the action's own message, change nothing
and audit nothing; when nothing is broken, each must record the same audit
entries. The rules are written once, in ``updates.actions``; this proves no
entry point forgets one or adds its own.
"""

from __future__ import annotations

import html
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from clms_updates.actions import VIA_COMMAND, ActionRefused, Actor
from clms_updates.models import AuditEntry
from updates import actions, scheduling
from updates.models import (
    AgentState,
    EmergencyOverride,
    MaintenanceWindow,
    OfflineBundle,
    UpdateRun,
)
from updates.tests.factories import make_release, make_run

pytestmark = pytest.mark.django_db

# A Wednesday at noon in London; the nightly window is 22:00-05:00 every day.
NOON = datetime(2026, 12, 2, 12, 0, tzinfo=scheduling.school_zone())
TONIGHT = NOON.replace(hour=23)
TOMORROW_NOON = NOON + timedelta(days=1)  # outside every window
IN_THREE_NIGHTS = NOON.replace(hour=23) + timedelta(days=3)


@dataclass
class World:
    """The users and clients every entry point is driven with."""

    page: Client
    api: APIClient
    admin: Any


@pytest.fixture
def world(school_admin) -> World:  # type: ignore[no-untyped-def]
    page = Client(REMOTE_ADDR="10.0.0.5")
    page.force_login(school_admin)
    api = APIClient(REMOTE_ADDR="10.0.0.5")
    api.force_authenticate(school_admin)
    with time_machine.travel(NOON, tick=False):
        MaintenanceWindow.objects.create(
            weekdays=list(range(7)), start=time(22, 0), end=time(5, 0)
        )
        AgentState.load()
        AgentState.record_installed("1.0.0")
        yield World(page, api, school_admin)


def _text(response: Any) -> str:
    """What the person sees: the page (messages included) or the API's JSON."""
    if hasattr(response, "json") and "json" in response.get("Content-Type", ""):
        return json.dumps(response.json(), ensure_ascii=False)
    return html.unescape(response.content.decode())


def _command(*args: str) -> str:
    """A management command's output, or its error (what the shell shows)."""
    out = io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=out)
    except CommandError as e:
        return str(e)
    return out.getvalue()


# -- entry points: each takes the world and the version, returns what is shown --

EntryPoint = Callable[[World, str], str]


def _local(moment: datetime) -> dict[str, str]:
    local = moment.astimezone(scheduling.school_zone())
    return {"date": f"{local:%Y-%m-%d}", "time": f"{local:%H:%M}"}


def schedule_page(at: datetime | None) -> EntryPoint:
    def call(world: World, version: str) -> str:
        data = {"version": version, "confirmed": "True"}
        data.update({"when": "at", **_local(at)} if at else {"when": "window"})
        return _text(world.page.post("/updates/schedule/", data, follow=True))

    return call


def schedule_api(at: datetime | None) -> EntryPoint:
    def call(world: World, version: str) -> str:
        data: dict[str, Any] = {"version": version}
        data.update({"at": at.isoformat()} if at else {"next_window": True})
        return _text(world.api.post("/api/updates/schedule", data, format="json"))

    return call


def update_now_page(world: World, version: str) -> str:
    data = {"version": version, "confirmed": "True"}
    return _text(world.page.post("/updates/update-now/", data, follow=True))


def update_now_api(world: World, version: str) -> str:
    return _text(
        world.api.post("/api/updates/update-now", {"version": version}, format="json")
    )


def update_now_command(world: World, version: str) -> str:
    return _command("apply_update", version)


def _bundle(version: str) -> OfflineBundle:
    number = OfflineBundle.objects.count()
    return OfflineBundle.objects.create(
        file_name=f"clms-{version}-{number}.zip",
        sha256=f"{number:02x}" * 32,
        state=OfflineBundle.State.VERIFIED,
        version=version,
    )


def bundle_page(world: World, version: str) -> str:
    bundle = _bundle(version)
    url = f"/updates/offline/bundles/{bundle.pk}/apply/"
    return _text(world.page.post(url, follow=True))


def bundle_api(world: World, version: str) -> str:
    bundle = _bundle(version)
    return _text(world.api.post(f"/api/updates/bundles/{bundle.pk}/apply"))


SCHEDULE_NIGHT = {"page": schedule_page(None), "api": schedule_api(None)}
UPDATE_NOW = {
    "page": update_now_page,
    "api": update_now_api,
    "command": update_now_command,
}
APPLY_BUNDLE = {"page": bundle_page, "api": bundle_api}


# -- the rules, each broken in turn ----------------------------------------------


def withdrawn() -> str:
    make_release("1.1.0", withdrawn_at=NOON - timedelta(hours=1))
    return "1.1.0"


def rolled_back() -> str:
    make_release("1.1.0", rolled_back=True, rolled_back_at=NOON - timedelta(days=1))
    return "1.1.0"


def already_installed() -> str:
    make_release("1.0.0")
    return "1.0.0"


def lower_version() -> str:
    AgentState.record_installed("1.2.0")
    make_release("1.1.0")
    return "1.1.0"


def another_run_active() -> str:
    make_run(make_release("1.0.5"))
    make_release("1.1.0")
    return "1.1.0"


def critical_due_in_two_days() -> str:
    make_release("1.0.9", critical=True, force_after=NOON + timedelta(days=2))
    make_release("1.1.0")
    return "1.1.0"


def fresh_release() -> str:
    make_release("1.1.0")
    return "1.1.0"


def _refusal(check: Callable[[], object]) -> ActionRefused:
    with pytest.raises(ActionRefused) as caught:
        check()
    return caught.value


CASES: list[
    tuple[str, Callable[[], str], dict[str, EntryPoint], Callable[[str], object]]
] = [
    # (rule, set-up returning the version, entry points, the action's own check)
    *[
        (
            rule,
            setup,
            SCHEDULE_NIGHT,
            lambda v: actions.plan_schedule(v, next_window=True),
        )
        for rule, setup in (
            ("withdrawn", withdrawn),
            ("rolled_back", rolled_back),
            ("already_installed", already_installed),
            ("lower_version", lower_version),
            ("run_active", another_run_active),
        )
    ],
    (
        "outside_window",
        fresh_release,
        {"page": schedule_page(TOMORROW_NOON), "api": schedule_api(TOMORROW_NOON)},
        lambda v: actions.plan_schedule(v, at=TOMORROW_NOON),
    ),
    (
        "after_deadline",
        critical_due_in_two_days,
        {"page": schedule_page(IN_THREE_NIGHTS), "api": schedule_api(IN_THREE_NIGHTS)},
        lambda v: actions.plan_schedule(v, at=IN_THREE_NIGHTS),
    ),
    *[
        (rule, setup, points, check)
        for points, check in (
            (UPDATE_NOW, lambda v: actions.plan_update_now(v)),
            (APPLY_BUNDLE, lambda v: actions.plan_update_now(v)),
        )
        for rule, setup in (
            ("withdrawn", withdrawn),
            ("rolled_back", rolled_back),
            ("already_installed", already_installed),
            ("lower_version", lower_version),
            ("run_active", another_run_active),
        )
    ],
]


@pytest.mark.parametrize(
    ("rule", "setup", "points", "check"),
    CASES,
    ids=[
        f"{rule}-{'+'.join(points)}-{i}" for i, (rule, _, points, _) in enumerate(CASES)
    ],
)
def test_every_entry_point_refuses_the_same_way_and_changes_nothing(
    world: World,
    rule: str,
    setup: Callable[[], str],
    points: dict[str, EntryPoint],
    check: Callable[[str], object],
) -> None:
    version = setup()
    refusal = _refusal(lambda: check(version))
    assert refusal.code == rule
    runs_before = UpdateRun.objects.count()
    for name, point in points.items():
        shown = point(world, version)
        assert refusal.message in shown, f"{name} did not say why:\n{shown[-3000:]}"
        assert UpdateRun.objects.count() == runs_before, name
        assert not AuditEntry.objects.exists(), (name, list(AuditEntry.objects.all()))


def _entries() -> list[tuple[str, str, dict[str, Any]]]:
    """The audit entries so far, without what differs by nature (ids, times)."""
    rows = []
    for entry in AuditEntry.objects.order_by("id"):
        detail = {k: v for k, v in entry.detail.items() if k not in ("scheduled_for",)}
        rows.append((entry.action, entry.username, detail))
    return rows


def _reset() -> None:
    AuditEntry.objects.all().delete()
    UpdateRun.objects.all().delete()
    OfflineBundle.objects.all().delete()


@pytest.mark.parametrize(
    "points",
    [SCHEDULE_NIGHT, UPDATE_NOW, APPLY_BUNDLE],
    ids=["schedule", "update-now", "apply-bundle"],
)
def test_every_entry_point_records_the_same_audit_entries(
    world: World, points: dict[str, EntryPoint]
) -> None:
    fresh_release()
    seen: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for name, point in points.items():
        point(world, "1.1.0")
        assert UpdateRun.objects.filter(to_version="1.1.0").count() == 1, name
        entries = _entries()
        assert entries, f"{name} recorded nothing"
        seen[name] = [(action, detail) for action, _, detail in entries]
        # Who and through what: the admin's login over HTTP; the shell otherwise.
        who = "" if name == "command" else world.admin.username
        assert {user for _, user, _ in entries} == {who}, name
        vias = set(AuditEntry.objects.values_list("via", flat=True))
        assert vias == {VIA_COMMAND if name == "command" else name}, name
        _reset()
    first = next(iter(seen.values()))
    for name, entries in seen.items():
        assert entries == first, name


def test_outside_the_windows_update_now_is_an_audited_override_everywhere(
    world: World,
) -> None:
    fresh_release()
    for name, point in UPDATE_NOW.items():
        point(world, "1.1.0")
        override = AuditEntry.objects.get(action="updates.override")
        assert override.detail["what"] == "run outside the maintenance windows", name
        _reset()


def test_a_rolled_back_release_is_retried_only_with_an_audited_override(
    world: World,
) -> None:
    rolled_back()
    answer = world.api.post(
        "/api/updates/update-now", {"version": "1.1.0", "force": True}, format="json"
    )
    assert answer.status_code == 201, answer.content
    what = AuditEntry.objects.get(action="updates.override").detail["what"]
    assert "retry a version that was rolled back" in what


def test_rollback_refusals_are_the_same_on_the_page_the_api_and_the_command(
    world: World,
) -> None:
    refusal = _refusal(lambda: actions.roll_back(actor=Actor.command(), reason="x y z"))
    assert refusal.code == "no_previous_version"
    shown = [
        _text(
            world.page.post(
                "/updates/rollback/",
                {"reason": "loans are slow", "understood": "on"},
                follow=True,
            )
        ),
        _text(world.api.post("/api/updates/rollback", {"reason": "loans"})),
        _command("rollback_update", "--reason", "loans are slow"),
    ]
    for text in shown:
        assert refusal.message in text
    assert not UpdateRun.objects.exists()
    assert not AuditEntry.objects.exists()


def test_cancel_refuses_a_run_that_is_not_scheduled_on_the_page_and_the_api(
    world: World,
) -> None:
    run = make_run(make_release("1.1.0"))
    run.cancel()
    refusal = _refusal(lambda: actions.cancel_run(run.pk, actor=Actor.command()))
    page = _text(world.page.post(f"/updates/runs/{run.pk}/cancel/", follow=True))
    api = _text(world.api.delete(f"/api/updates/cancel/{run.pk}"))
    assert refusal.message in page and refusal.message in api
    assert not AuditEntry.objects.exists()


def test_an_override_is_refused_alike_before_the_deadline_and_audited_alike_after(
    world: World,
) -> None:
    make_release("1.0.9", critical=True, force_after=NOON + timedelta(hours=2))
    refusal = _refusal(
        lambda: actions.grant_override(
            actor=Actor.command(), reason="open day at the library"
        )
    )
    data = {"reason": "open day at the library", "hours": 2}
    page = _text(world.page.post("/updates/enforcement/", data, follow=True))
    api = _text(
        world.api.post("/api/updates/enforcement/overrides", data, format="json")
    )
    assert refusal.message in page and refusal.message in api
    assert not EmergencyOverride.objects.exists()

    with time_machine.travel(NOON + timedelta(hours=3), tick=False):
        world.page.post("/updates/enforcement/", data)
        world.api.post("/api/updates/enforcement/overrides", data, format="json")
    granted = AuditEntry.objects.filter(action="updates.override.granted")
    details = [
        {k: v for k, v in e.detail.items() if k != "expires_at"} for e in granted
    ]
    assert len(details) == 2 and details[0] == details[1]
    assert set(granted.values_list("via", flat=True)) == {"page", "api"}
    assert set(granted.values_list("address", flat=True)) == {"10.0.0.5"}


@pytest.mark.services
def test_a_run_scheduled_into_an_open_window_goes_to_a_worker_at_once_everywhere(
    world: World, redis_url: str, django_capture_on_commit_callbacks: Any
) -> None:
    import redis

    broker = redis.Redis.from_url(redis_url)
    fresh_release()
    with time_machine.travel(TONIGHT, tick=False):  # the window is open
        for name, point in SCHEDULE_NIGHT.items():
            broker.delete("celery")
            with django_capture_on_commit_callbacks(execute=True):
                point(world, "1.1.0")
            queued = [
                json.loads(message)["headers"]["task"]
                for message in broker.lrange("celery", 0, -1)
            ]
            assert queued.count("updates.execute_run") == 1, (name, queued)
            _reset()
    broker.delete("celery")


def test_the_banner_tells_the_truth_about_a_critical_run_and_its_deadline(
    world: World,
) -> None:
    from updates.enforcement.state import enforcement_state

    release = make_release("1.0.9", critical=True, force_after=NOON + timedelta(days=2))
    before = actions.schedule_update("1.0.9", actor=Actor.command(), at=TONIGHT)
    assert "before its deadline" in enforcement_state().schedule_note
    # The vendor brought the deadline forward, past the planned run.
    release.force_after = NOON + timedelta(hours=2)
    release.save()
    note = enforcement_state().schedule_note
    assert "after its deadline" in note and "before its deadline" not in note
    page = _text(world.page.get("/updates/"))
    assert note in page
    assert before.state == UpdateRun.State.SCHEDULED


def test_a_bundle_of_a_rolled_back_release_is_applied_only_with_an_audited_override(
    world: World,
) -> None:
    rolled_back()
    bundle = _bundle("1.1.0")
    refused = world.api.post(f"/api/updates/bundles/{bundle.pk}/apply")
    assert refused.status_code == 409 and refused.json()["code"] == "rolled_back"
    applied = world.api.post(
        f"/api/updates/bundles/{bundle.pk}/apply", {"force": True}, format="json"
    )
    assert applied.status_code == 201, applied.content
    what = AuditEntry.objects.get(action="updates.override").detail["what"]
    assert "retry a version that was rolled back" in what
    assert AuditEntry.objects.filter(action="updates.bundle.apply").count() == 1
