"""The agent updates itself: real agent images, real containers, the real vendor.

The agent runs at 1.0.0 as a compose project of its own (``installed_agent``);
the vendor of the test publishes agent releases; the admin updates the agent
from its page. Afterwards exactly one set of agent containers runs, healthy,
with the same data; a broken release leaves 1.0.0 with its database as it
was; a driver killed in the middle still ends with exactly one agent.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.agent_fixtures import AgentInstall, agent_images, installed_agent  # noqa: F401

pytestmark = [
    pytest.mark.services,
    pytest.mark.docker,
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
]

SERVICES = ["beat", "web", "worker"]


def rows_of(agent: AgentInstall) -> dict[str, list[tuple[object, ...]]]:
    """The agent's own data a self-update must keep: audit, checks, settings."""
    return {
        "audit": agent.query(
            "SELECT id, action, target FROM core_auditentry ORDER BY id"
        ),
        "checks": agent.query(
            "SELECT id, outcome FROM updates_updatecheck ORDER BY id"
        ),
        "users": agent.query("SELECT id, username FROM auth_user ORDER BY id"),
    }


def ask_for_update(agent: AgentInstall, version: str) -> None:
    """As the admin: check now, see the agent release, press the button."""
    session = agent.session()
    agent.post_form(session, "/updates/check/")
    page = session.get(f"{agent.url}/updates/", timeout=20).text
    assert f"CLMS Updates {version} is available" in page, page[-3000:]
    answer = agent.post_form(session, "/updates/agent/update/", version=version)
    assert answer.status_code == 200, answer.text[-2000:]
    assert "/updates/runs/" in answer.url, answer.url


def one_agent(agent: AgentInstall, version: str) -> None:
    """Exactly one set of agent containers runs, at ``version``, healthy."""
    containers = agent.containers()
    assert sorted(containers) == SERVICES, agent.logs()
    for service, found in containers.items():
        assert len(found) == 1, (service, [c.name for c in found])
        assert found[0].status == "running", (service, found[0].status)
        labels = found[0].image.labels
        assert labels["org.opencontainers.image.version"] == version, service
    deadline = time.monotonic() + 60
    while agent.extra_containers() and time.monotonic() < deadline:
        time.sleep(1)  # the driver removes itself once it recorded the outcome
    assert not agent.extra_containers(), [c.name for c in agent.extra_containers()]
    agent.wait_healthy()
    assert agent.version() == version


def test_the_agent_updates_itself_from_its_page_and_keeps_its_data(
    installed_agent: AgentInstall,  # noqa: F811
) -> None:
    agent = installed_agent
    agent.publish("1.1.0", "1.1.0")
    before = rows_of(agent)
    env_before = (agent.directory / ".env").read_text()

    ask_for_update(agent, "1.1.0")
    run_id, state, code, message = agent.wait_for_agent_run()

    assert state == "succeeded", (code, message, agent.logs())
    one_agent(agent, "1.1.0")
    after = rows_of(agent)
    for table, rows in before.items():
        assert after[table][: len(rows)] == rows, table
    query = f"SELECT steps FROM updates_updaterun WHERE id = {int(run_id)}"  # noqa: S608
    steps = agent.query(query)[0][0]
    assert [s["name"] for s in steps] == [
        "preflight",
        "fetch",
        "backup",
        "handoff",
        "migrate",
        "trial",
        "switch",
        "verify",
    ]
    # The settings carried over; the project is managed now, and a hand-run
    # `docker compose up -d` changes no container.
    env_after = (agent.directory / ".env").read_text()
    for line in env_before.splitlines():
        if line and not line.startswith("COMPOSE_"):
            assert line in env_after.splitlines(), line
    ids = {s: [c.id for c in cs] for s, cs in agent.containers().items()}
    agent.compose("up", "-d")
    assert {s: [c.id for c in cs] for s, cs in agent.containers().items()} == ids
    audit = agent.query(
        "SELECT action FROM core_auditentry WHERE action LIKE 'updates.agent%'"
    )
    assert ("updates.agent_update",) in audit
    assert ("updates.agent_update.finished",) in audit


@pytest.mark.parametrize(
    ("tag", "code"),
    [
        ("1.1.0-unhealthy", "health_check_failed"),
        ("1.1.0-badmigration", "migration_failed"),
    ],
    ids=["healthz-never-green", "migration-fails"],
)
def test_a_broken_agent_release_leaves_the_school_on_the_old_agent(
    installed_agent: AgentInstall,  # noqa: F811
    tag: str,
    code: str,
) -> None:
    agent = installed_agent
    agent.publish(tag, "1.1.0")
    before = rows_of(agent)
    tables_before = agent.query(
        "SELECT tablename FROM pg_tables WHERE schemaname='public' ORDER BY 1"
    )

    ask_for_update(agent, "1.1.0")
    _, state, error_code, message = agent.wait_for_agent_run()

    assert state == "rolled_back", (error_code, message, agent.logs())
    assert error_code == code
    one_agent(agent, "1.0.0")
    after = rows_of(agent)
    for table, rows in before.items():
        assert after[table][: len(rows)] == rows, table
    # The database is as it was: the broken migration's table is gone.
    assert (
        agent.query(
            "SELECT tablename FROM pg_tables WHERE schemaname='public' ORDER BY 1"
        )
        == tables_before
    )
    page = agent.session().get(f"{agent.url}/updates/", timeout=20).text
    assert "Rolled back" in page
    assert message[:60] in page.replace("&#x27;", "'").replace("&quot;", '"')


@pytest.mark.parametrize("step", ["trial", "switch"])
def test_a_driver_killed_in_the_middle_still_ends_with_exactly_one_agent(
    installed_agent: AgentInstall,  # noqa: F811
    step: str,
) -> None:
    agent = installed_agent
    agent.publish("1.1.0", "1.1.0")
    ask_for_update(agent, "1.1.0")
    agent.wait_for_agent_run(
        timeout=300,
        until=lambda _state: bool(
            agent.query(
                "SELECT 1 FROM updates_updaterun WHERE kind='agent' "  # noqa: S608
                f"AND current_step = '{step}'"
            )
        ),
    )
    drivers = [
        c
        for c in agent.extra_containers()
        if c.labels.get("org.clms-updates.selfupdate") == "driver"
    ]
    assert len(drivers) == 1
    driver = drivers[0]
    driver.reload()
    os.kill(driver.attrs["State"]["Pid"], signal.SIGKILL)  # as when the machine dies
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        driver.reload()
        if driver.attrs["RestartCount"] >= 1 and driver.status == "running":
            break  # the engine brought the driver back
        time.sleep(0.5)
    assert driver.attrs["RestartCount"] >= 1, driver.attrs["State"]

    _, state, code, message = agent.wait_for_agent_run()

    assert state == "succeeded", (code, message, agent.logs())
    one_agent(agent, "1.1.0")
