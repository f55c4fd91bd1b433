"""Agent releases and the rules of a self-update, in process.

The agent's own releases are checked against the stand-in vendor's second
product (``?product=clms-updates``) with a real GnuPG key; the rules of when
a self-update may start (never beside a CLMS run, a backup or a restore; a
critical one in the next window; a pin) are the actions'. Replacing the
running containers is proven end to end by ``tests/test_e2e_selfupdate.py``.
"""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta

import psycopg
import pytest
import time_machine
from django.test import Client

from backups import locking
from backups.errors import BackupError
from backups.models import Backup
from clms_updates.actions import VIA_PAGE, ActionRefused, Actor
from clms_updates.manifest.freshness import ReplayError
from clms_updates.models import AuditEntry
from updates import actions, scheduling
from updates.models import AgentRelease, AgentState, MaintenanceWindow, UpdateRun
from updates.selfupdate import checking as agent_checking
from updates.selfupdate import database
from updates.tests.conftest import AGENT_PRODUCT
from updates.tests.factories import make_manifest, make_release, make_run

pytestmark = pytest.mark.django_db

# A Wednesday at noon in London; the nightly window is 22:00-05:00 every day.
NOON = datetime(2026, 12, 2, 12, 0, tzinfo=scheduling.school_zone())


def agent_manifest(version: str, **overrides: object) -> object:
    return make_manifest(version, product=AGENT_PRODUCT, **overrides)


@pytest.fixture
def admin(school_admin):  # type: ignore[no-untyped-def]
    return Actor(user=school_admin, address="10.0.0.5", via=VIA_PAGE)


def test_an_agent_release_is_checked_from_its_own_product_beside_clms(
    vendor, school_admin
) -> None:
    vendor.publish([make_manifest("1.1.0")])
    vendor.publish_agent([agent_manifest("1.3.1"), agent_manifest("1.2.0")])

    actions.check_for_updates(actor=Actor.system())

    release = AgentRelease.objects.get()
    assert release.version == "1.3.1"
    assert release.signer_fingerprint == vendor.fingerprint
    assert AgentState.load().agent_index_sequence == 1
    queried = [h for p, h in vendor.requests if p == "index"]
    assert len(queried) == 2  # CLMS's index, then the agent's
    page = Client()
    page.force_login(school_admin)
    text = page.get("/updates/").content.decode()
    assert "CLMS Updates 1.3.1 is available" in text
    assert "Update the agent to 1.3.1" in text
    assert "CLMS 1.1.0" in text  # the CLMS release is still offered beside it


def test_a_document_of_another_product_is_never_an_agent_release(vendor) -> None:
    # A CLMS index served where the agent's should be: refused, nothing stored.
    index = vendor.publish([make_manifest("1.3.1")])
    vendor.agent_index = vendor.index
    vendor.agent_manifests = dict(vendor.manifests)
    assert index.product == "clms"

    with pytest.raises(agent_checking.CheckRefused, match="product 'clms'"):
        agent_checking.check_agent_releases()
    assert not AgentRelease.objects.exists()

    # An agent index listing a manifest signed for CLMS: refused too.
    vendor.publish_agent([make_manifest("1.3.1")])
    with pytest.raises(agent_checking.CheckRefused, match="product"):
        agent_checking.check_agent_releases()
    assert not AgentRelease.objects.exists()


def test_a_replayed_older_agent_index_is_refused(vendor) -> None:
    vendor.publish_agent([agent_manifest("1.3.1")], sequence=5)
    agent_checking.check_agent_releases()
    vendor.publish_agent([agent_manifest("1.2.0")], sequence=4)

    with pytest.raises(ReplayError, match="replayed"):
        agent_checking.check_agent_releases()
    assert AgentState.load().agent_index_sequence == 5
    assert agent_checking.offered().version == "1.3.1"  # type: ignore[union-attr]


def test_an_agent_release_the_index_drops_is_withdrawn(vendor) -> None:
    vendor.publish_agent([agent_manifest("1.3.1")], sequence=1)
    agent_checking.check_agent_releases()
    vendor.publish_agent([], sequence=2)

    found = agent_checking.check_agent_releases()

    assert found.release is None
    assert AgentRelease.objects.get().withdrawn_at is not None
    assert agent_checking.offered() is None


@pytest.mark.parametrize(
    ("pin", "offered", "note"),
    [
        ("1.2.0", "1.2.0", "available"),
        ("1.0.0", None, "runs it already"),
        ("1.9.0", None, "not offered"),
    ],
)
def test_a_pinned_agent_takes_only_its_pin(
    vendor, settings, pin: str, offered: str | None, note: str
) -> None:
    settings.UPDATES_AGENT_PIN = pin
    vendor.publish_agent([agent_manifest("1.3.1"), agent_manifest("1.2.0")])

    found = agent_checking.check_agent_releases()

    assert note in found.note
    assert (found.release.version if found.release else None) == offered
    current = agent_checking.offered()
    assert (current.version if current else None) == offered


def test_a_failing_agent_check_never_fails_the_clms_check(vendor) -> None:
    vendor.publish([make_manifest("1.1.0")])
    vendor.agent_index = ("{not json", "no signature")

    check = actions.check_for_updates(actor=Actor.system())

    assert check.outcome == "ok", check.reason
    assert check.found_version == "1.1.0"
    assert not AgentRelease.objects.exists()


def _offer(version: str = "1.3.1", **overrides: object) -> AgentRelease:
    manifest = agent_manifest(version, **overrides)
    values = dict(
        version=version,
        channel="stable",
        critical=manifest.critical,  # type: ignore[attr-defined]
        manifest_text=manifest.to_bytes().decode(),  # type: ignore[attr-defined]
        signature="(test)",
        signer_fingerprint="A" * 40,
        index_sequence=1,
        verified_at=NOON,
    )
    return AgentRelease.objects.create(**values)


def test_updating_the_agent_starts_an_agent_run_and_audits_it(admin) -> None:
    _offer()

    run = actions.update_agent("1.3.1", actor=admin)

    assert run is not None
    assert run.kind == UpdateRun.Kind.AGENT
    assert (run.from_version, run.to_version) == ("1.0.0", "1.3.1")
    assert UpdateRun.active() == run
    entry = AuditEntry.objects.get(action="updates.agent_update")
    assert entry.target == f"run {run.pk}"
    assert entry.address == "10.0.0.5"


@pytest.mark.parametrize("version", ["1.2.0", "0.9.0", ""])
def test_only_the_offered_agent_release_can_be_installed(admin, version) -> None:
    _offer()
    with pytest.raises(ActionRefused) as refused:
        actions.update_agent(version, actor=admin)
    assert refused.value.field == "version"
    assert "Check for updates first" in str(refused.value)
    assert not UpdateRun.objects.exists()


def test_a_viewer_cannot_update_the_agent(school_viewer) -> None:
    _offer()
    with pytest.raises(ActionRefused):
        actions.update_agent("1.3.1", actor=Actor(user=school_viewer, via=VIA_PAGE))
    assert not UpdateRun.objects.exists()


def test_no_clms_run_starts_while_the_agent_updates_itself(admin) -> None:
    _offer()
    make_release("1.1.0")
    agent_run = actions.update_agent("1.3.1", actor=admin)
    assert agent_run is not None

    with pytest.raises(ActionRefused) as refused:
        actions.update_now("1.1.0", actor=admin, force=True)
    assert refused.value.conflict
    with pytest.raises(ActionRefused):
        actions.update_agent("1.3.1", actor=admin)
    assert list(UpdateRun.objects.all()) == [agent_run]


def test_asked_during_a_clms_run_it_waits_then_starts_when_the_run_ends(
    admin,
) -> None:
    _offer()
    clms_run = make_run(state=UpdateRun.State.RUNNING, scheduled_for=NOON)

    assert actions.update_agent("1.3.1", actor=admin) is None

    state = AgentState.load()
    assert state.agent_update_pending == "1.3.1"
    assert AuditEntry.objects.get(action="updates.agent_update.requested")
    assert actions.start_pending_agent_update() is None  # the run is still active
    clms_run.state = UpdateRun.State.SUCCEEDED
    clms_run.save()  # the run ends: its active slot is free

    run = actions.start_pending_agent_update()

    assert run is not None
    assert run.kind == UpdateRun.Kind.AGENT
    assert run.requested_by == admin.user
    assert AgentState.load().agent_update_pending == ""
    started = AuditEntry.objects.get(action="updates.agent_update")
    assert started.via == "system"


def test_a_busy_backup_or_a_held_backup_lock_keeps_it_waiting(admin) -> None:
    _offer()
    backup = Backup.objects.create(name="b1", status=Backup.Status.RUNNING)
    assert actions.update_agent("1.3.1", actor=admin) is None
    Backup.objects.filter(pk=backup.pk).update(status=Backup.Status.VERIFIED)

    # A restore marks no row busy, but it holds the backup job lock.
    with locking.exclusive():
        assert actions.start_pending_agent_update() is None
    assert not UpdateRun.objects.exists()

    assert actions.start_pending_agent_update() is not None


def test_a_critical_agent_release_installs_itself_in_the_next_window() -> None:
    MaintenanceWindow.objects.create(
        weekdays=list(range(7)), start=time(22, 0), end=time(5, 0)
    )
    release = _offer(critical=True, force_after=NOON + timedelta(days=3))

    with time_machine.travel(NOON, tick=False):
        actions.plan_critical_agent_update(release)
        assert actions.start_pending_agent_update() is None  # not before 22:00
    state = AgentState.load()
    assert state.agent_update_pending == "1.3.1"
    assert state.agent_update_not_before == NOON.replace(hour=22)
    assert AuditEntry.objects.get(action="updates.agent_update.planned")

    with time_machine.travel(NOON.replace(hour=22, minute=5), tick=False):
        result = actions.enforcement_tick()
    assert result["agent_run"] is not None
    assert UpdateRun.objects.get().kind == UpdateRun.Kind.AGENT


@pytest.mark.parametrize("setting", ["pin", "auto_off", "not_critical"])
def test_a_critical_agent_release_waits_for_the_admin_when_the_school_says_so(
    settings, setting: str
) -> None:
    MaintenanceWindow.objects.create(
        weekdays=list(range(7)), start=time(22, 0), end=time(5, 0)
    )
    if setting == "pin":
        settings.UPDATES_AGENT_PIN = "1.2.0"
    if setting == "auto_off":
        settings.UPDATES_AGENT_AUTO_CRITICAL = False
    critical = setting != "not_critical"
    release = _offer(
        critical=critical, force_after=NOON + timedelta(days=3) if critical else None
    )

    with time_machine.travel(NOON, tick=False):
        actions.plan_critical_agent_update(release)
    with time_machine.travel(NOON.replace(hour=23), tick=False):
        actions.enforcement_tick()

    assert AgentState.load().agent_update_pending == ""
    assert not UpdateRun.objects.exists()


def test_the_api_shows_the_agent_and_updates_it(admin_api, school_admin) -> None:
    _offer()
    overview = admin_api.get("/api/updates/agent").json()
    assert overview["running"] == "1.0.0"
    assert overview["release"]["version"] == "1.3.1"

    bad = admin_api.post("/api/updates/agent/update", {"version": "2.0.0"})
    assert bad.status_code == 400
    assert "Check for updates first" in str(bad.json())

    started = admin_api.post("/api/updates/agent/update", {"version": "1.3.1"})
    assert started.status_code == 201, started.json()
    assert started.json()["to_version"] == "1.3.1"

    again = admin_api.post("/api/updates/agent/update", {"version": "1.3.1"})
    assert again.status_code == 409


def test_the_api_answers_202_when_the_update_waits(admin_api) -> None:
    _offer()
    make_run(state=UpdateRun.State.RUNNING)
    answer = admin_api.post("/api/updates/agent/update", {"version": "1.3.1"})
    assert answer.status_code == 202
    assert answer.json()["code"] == "waiting"
    assert AgentState.load().agent_update_pending == "1.3.1"


@pytest.fixture
def agent_database(settings, postgres_url):  # type: ignore[no-untyped-def]
    """A scratch PostgreSQL database standing in for the agent's own."""
    name = f"agentdb_{uuid.uuid4().hex[:10]}"
    base = postgres_url.rpartition("/")[0]
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = f"{base}/{name}"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CREATE TABLE audit (id int PRIMARY KEY, what text)")
        connection.execute(
            "INSERT INTO audit SELECT n, 'entry ' || n FROM generate_series(1, 500) n"
        )
    settings.DATABASE_URL = url
    yield url
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _tables(url: str) -> dict[str, int]:
    with psycopg.connect(url) as connection:
        names = [
            r[0]
            for r in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname='public' ORDER BY 1"
            )
        ]
        return {
            n: connection.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0]  # type: ignore[index]  # noqa: S608
            for n in names
        }


@pytest.mark.services
def test_the_agent_database_comes_back_exactly_as_it_was_checked(
    agent_database, tmp_path
) -> None:
    saved = database.back_up(tmp_path / "agent" / "run-1.dump")
    assert saved["rows"] == 500
    assert (tmp_path / "agent" / "run-1.dump").stat().st_mode & 0o777 == 0o600
    # The new agent's migration changes rows and adds a table.
    with psycopg.connect(agent_database, autocommit=True) as connection:
        connection.execute("DELETE FROM audit WHERE id > 100")
        connection.execute("CREATE TABLE added_by_new_agent (id int)")

    assert database.restore(saved) == 500

    assert _tables(agent_database) == {"audit": 500}


@pytest.mark.services
def test_a_copy_changed_after_it_was_checked_is_never_restored(
    agent_database, tmp_path
) -> None:
    saved = database.back_up(tmp_path / "run-1.dump")
    with (tmp_path / "run-1.dump").open("ab") as f:
        f.write(b"\0")
    with psycopg.connect(agent_database, autocommit=True) as connection:
        connection.execute("DELETE FROM audit WHERE id > 100")

    with pytest.raises(BackupError, match="changed since it was verified"):
        database.restore(saved)
    assert _tables(agent_database) == {"audit": 100}  # left alone, not half-restored
