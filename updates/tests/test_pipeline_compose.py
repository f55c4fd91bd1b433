"""Compose releases through the pipeline, against the real engine and compose CLI.

The demo stack starts at 1.0.0 as a school installed it before compose
releases; 1.1.0 (``devtools.demo_stack.releases``) adds a ``search`` service
with its own volume and a required secret, 1.2.0 removes it again. Each test
checks what an admin would: the project folder, ``docker compose ps`` and
``docker compose up -d`` run by hand in it, the rows of the library.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from pathlib import Path

import docker
import psycopg
import pytest
import yaml

from clms_updates import composecli
from clms_updates.actions import Actor
from devtools.demo_stack import health, releases
from devtools.services import free_port
from updates import actions, pipeline, runtime
from updates.compose import project, stack
from updates.models import AgentState, UpdateRun
from updates.tests.pipeline_fixtures import *  # noqa: F403
from updates.tests.pipeline_fixtures import AgentStack

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.services,
    pytest.mark.docker,
]

SEARCH_KEY = "search-key-7f3a"


def run_now(release) -> UpdateRun:  # type: ignore[no-untyped-def]
    run = actions.update_now(release.version, actor=Actor.command(), background=False)
    pipeline.execute_run(run.pk)
    run.refresh_from_db()
    return run


def folder(agent_stack: AgentStack) -> Path:
    return agent_stack.stack.env_file.parent


def compose_by_hand(directory: Path, *args: str) -> str:
    """What an admin types in the project folder: no flags, the folder's .env only."""
    result = subprocess.run(
        [*composecli.find_cli().argv, *args],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        # As an admin's shell: the folder's .env decides, not the test's env.
        env={
            "PATH": os.environ["PATH"],
            "DOCKER_HOST": os.environ["DOCKER_HOST"],
            "COMPOSE_INTERACTIVE_NO_CLI": "1",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def container_ids(agent_stack: AgentStack) -> dict[str, list[str]]:
    return stack.container_ids(runtime.docker_client(), agent_stack.project)


def every_row(database_url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table of the library database, in a stable order."""
    with psycopg.connect(database_url) as connection:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "ORDER BY tablename"
            )
        ]
        return {
            table: connection.execute(
                f'SELECT * FROM "{table}" ORDER BY 1'  # noqa: S608
            ).fetchall()
            for table in tables
        }


def project_files(directory: Path) -> dict[str, str]:
    """The files that describe the installation (the snapshots and staging left out)."""
    return {
        name: (directory / name).read_text()
        for name in (project.COMPOSE_NAME, project.ENV_NAME, project.OVERRIDE_NAME)
        if (directory / name).exists()
    }


def release_110(agent_stack: AgentStack, **options: object):  # type: ignore[no-untyped-def]
    text = releases.compose_file(agent_stack.images["1.1.0"], search=True, **options)  # type: ignore[arg-type]
    return agent_stack.release_for("1.1.0", compose=text)


def install_110(agent_stack: AgentStack) -> UpdateRun:
    """1.0.0 -> 1.1.0 with the search key given up front (through the action)."""
    release = release_110(agent_stack)
    actions.provide_settings({"SEARCH_API_KEY": SEARCH_KEY}, actor=Actor.command())
    run = run_now(release)
    assert run.state == UpdateRun.State.SUCCEEDED, run.log
    return run


# ---------------------------------------------------------------------------
# Adding a service that needs a new setting
# ---------------------------------------------------------------------------


def test_a_release_adding_a_service_waits_for_its_setting_then_runs_it_as_compose_would(
    agent_stack: AgentStack,
) -> None:
    before_ids = container_ids(agent_stack)
    before_files = project_files(folder(agent_stack))
    release = release_110(agent_stack)

    run = run_now(release)

    assert run.state == UpdateRun.State.WAITING, run.log
    assert run.error_code == "needs_input"
    assert "SEARCH_API_KEY" in run.error_message
    assert container_ids(agent_stack) == before_ids
    assert project_files(folder(agent_stack)) == before_files
    assert AgentState.load().installed_version == "1.0.0"

    actions.provide_settings({"SEARCH_API_KEY": SEARCH_KEY}, actor=Actor.command())
    run.refresh_from_db()
    assert run.state == UpdateRun.State.SCHEDULED
    pipeline.execute_run(run.pk)
    run.refresh_from_db()

    assert run.state == UpdateRun.State.SUCCEEDED, run.log
    assert health(agent_stack.stack.health_url)[1]["version"] == "1.1.0"
    directory = folder(agent_stack)
    env_file = directory / project.ENV_NAME
    assert env_file.stat().st_mode & 0o777 == 0o600
    env = project.read_env(env_file)
    assert env["SEARCH_API_KEY"] == SEARCH_KEY
    # The old env file's values carried over; the new setting got its default.
    assert env["CLMS_DATABASE_URL"] == agent_stack.database_url
    assert env["CLMS_SEARCH_PORT"] == "8091"
    assert SEARCH_KEY not in run.log
    # The compose CLI, run by hand in the folder, sees the same project ...
    listed = compose_by_hand(directory, "ps")
    for service in ("app", "worker", "search"):
        assert f"_{service}_" in listed or f"-{service}-" in listed, listed
    # ... and `up -d` by hand changes no container.
    after = container_ids(agent_stack)
    assert sorted(after) == ["app", "search", "worker"]
    compose_by_hand(directory, "up", "-d")
    assert container_ids(agent_stack) == after
    assert AgentState.load().drift == []
    search = stack.service_containers(runtime.docker_client(), agent_stack.project)[
        "search"
    ][0]
    assert search.exec_run(["cat", "/var/lib/search/index.txt"]).output == (
        b"started by CLMS 1.1.0\n"
    )


def test_a_secret_given_for_a_release_is_never_shown_again(
    agent_stack: AgentStack, client, school_admin
) -> None:  # type: ignore[no-untyped-def]
    release_110(agent_stack)
    actions.provide_settings({"SEARCH_API_KEY": SEARCH_KEY}, actor=Actor.command())
    client.force_login(school_admin)

    page = client.get("/updates/").content.decode()
    api = client.get("/api/updates/settings").json()

    assert SEARCH_KEY not in page
    assert SEARCH_KEY not in str(api)
    search = next(s for s in api["settings"] if s["name"] == "SEARCH_API_KEY")
    assert (search["is_set"], search["secret"], search["value"]) == (True, True, "")


# ---------------------------------------------------------------------------
# Removing a service: its volume stays, listed
# ---------------------------------------------------------------------------


def test_a_release_removing_a_service_keeps_its_volume_and_lists_it(
    agent_stack: AgentStack, client, school_admin
) -> None:  # type: ignore[no-untyped-def]
    install_110(agent_stack)
    engine = runtime.docker_client()
    volume = f"{agent_stack.project}_search-index"
    assert engine.volumes.get(volume)

    run = run_now(
        agent_stack.release_for(
            "1.2.0", compose=releases.compose_file(agent_stack.images["1.2.0"])
        )
    )

    assert run.state == UpdateRun.State.SUCCEEDED, run.log
    assert sorted(container_ids(agent_stack)) == ["app", "worker"]
    assert engine.volumes.get(volume)  # never deleted
    reader = engine.containers.run(
        agent_stack.images["1.2.0"],
        ["cat", "/data/index.txt"],
        volumes={volume: {"bind": "/data", "mode": "ro"}},
        remove=True,
    )
    assert reader == b"started by CLMS 1.1.0\n"
    left = AgentState.load().left_volumes
    assert list(left) == ["search-index"]
    assert left["search-index"]["left_by"] == "1.1.0"
    client.force_login(school_admin)
    page = client.get("/updates/").content.decode()
    assert "search-index" in page
    assert "Data left by removed services" in page
    compose_by_hand(folder(agent_stack), "up", "-d")
    assert sorted(container_ids(agent_stack)) == ["app", "worker"]


# ---------------------------------------------------------------------------
# A broken release rolls back to the whole previous project
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "error_code"),
    [
        ("1.2.0-badmigration", "migration_failed"),
        ("1.2.0-unhealthy", "health_check_failed"),
    ],
    ids=["migration-fails", "health-fails-after-a-good-migration"],
)
def test_a_broken_release_goes_back_to_the_exact_project_env_and_rows(
    agent_stack: AgentStack, tag: str, error_code: str
) -> None:
    install_110(agent_stack)
    directory = folder(agent_stack)
    files = project_files(directory)
    rows = every_row(agent_stack.database_url)
    search_before = container_ids(agent_stack)["search"]

    run = run_now(
        agent_stack.release_for(
            "1.2.0",
            compose=releases.compose_file(
                agent_stack.images[tag], health={"timeout_seconds": 4}
            ),
        )
    )

    assert run.state == UpdateRun.State.ROLLED_BACK, run.log
    assert run.error_code == error_code
    assert "rollback_database" in [s["name"] for s in run.steps]
    assert project_files(directory) == files
    assert every_row(agent_stack.database_url) == rows
    assert health(agent_stack.stack.health_url)[1]["version"] == "1.1.0"
    assert AgentState.load().installed_version == "1.1.0"
    ids = container_ids(agent_stack)
    assert sorted(ids) == ["app", "search", "worker"]
    search = stack.service_containers(runtime.docker_client(), agent_stack.project)[
        "search"
    ][0]
    assert search.status == "running"
    assert ids["search"] != search_before  # it was removed, then brought back
    compose_by_hand(directory, "up", "-d")
    assert container_ids(agent_stack) == ids


# ---------------------------------------------------------------------------
# The school's override file
# ---------------------------------------------------------------------------


def test_the_schools_override_file_survives_three_updates(
    agent_stack: AgentStack,
) -> None:
    directory = folder(agent_stack)
    first = run_now(
        agent_stack.release_for(
            "1.0.1", compose=releases.compose_file(agent_stack.images["1.0.1"])
        )
    )
    assert first.state == UpdateRun.State.SUCCEEDED, first.log
    override = directory / project.OVERRIDE_NAME
    assert override.read_text() == project.OVERRIDE_SKELETON  # made on adoption
    extra = free_port()
    override.write_text(
        yaml.safe_dump(
            {
                "services": {
                    "app": {"environment": {"CLMS_EXTRA_HTTP_PORTS": str(extra)}}
                }
            }
        )
    )
    mine = override.read_text()
    compose_by_hand(directory, "up", "-d")

    for tag, search in (("1.0.2", False), ("1.1.0", True), ("1.2.0", False)):
        release = agent_stack.release_for(
            tag, compose=releases.compose_file(agent_stack.images[tag], search=search)
        )
        if search:
            actions.provide_settings(
                {"SEARCH_API_KEY": SEARCH_KEY}, actor=Actor.command()
            )
        run = run_now(release)
        assert run.state == UpdateRun.State.SUCCEEDED, run.log
        assert override.read_text() == mine
        with urllib.request.urlopen(
            f"http://127.0.0.1:{extra}/health", timeout=5
        ) as answer:
            assert json.loads(answer.read())["version"] == tag
        assert AgentState.load().drift == []


# ---------------------------------------------------------------------------
# Policy: what a release may not take
# ---------------------------------------------------------------------------


def _hostile(agent_stack: AgentStack, change: dict[str, object]) -> str:
    document = yaml.safe_load(releases.compose_file(agent_stack.images["1.0.1"]))
    document["services"]["app"].update(change)
    return yaml.safe_dump(document, sort_keys=False)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"volumes": ["/var/run/docker.sock:/var/run/docker.sock"]}, "docker.sock"),
        ({"privileged": True}, "privileged"),
        ({"cap_add": ["SYS_ADMIN"]}, "cap_add"),
        ({"pid": "host"}, "pid"),
        ({"volumes": ["/etc:/host-etc:ro"]}, "/etc"),
    ],
    ids=["docker-socket", "privileged", "capability", "host-pid", "bind-outside"],
)
def test_a_signed_release_taking_more_than_the_school_allows_is_refused(
    agent_stack: AgentStack, change: dict[str, object], named: str
) -> None:
    directory = folder(agent_stack)
    files = {p.name: p.read_text() for p in directory.iterdir() if p.is_file()}
    ids = container_ids(agent_stack)
    release = agent_stack.release_for("1.0.1", compose=_hostile(agent_stack, change))

    run = run_now(release)

    assert run.state == UpdateRun.State.FAILED, run.log
    assert run.error_code == "policy_refused"
    assert "service app" in run.error_message
    assert named in run.error_message
    assert "Nothing was changed" in run.error_message
    assert [s["name"] for s in run.steps] == ["preflight"]
    assert container_ids(agent_stack) == ids
    assert {p.name: p.read_text() for p in directory.iterdir() if p.is_file()} == files
    assert AgentState.load().installed_version == "1.0.0"


def test_an_item_the_school_allows_is_let_through(
    agent_stack: AgentStack, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.CLMS_COMPOSE_ALLOW = ["network_mode:host", "cap_add:SYS_PTRACE"]
    release = agent_stack.release_for(
        "1.0.1", compose=_hostile(agent_stack, {"cap_add": ["SYS_PTRACE"]})
    )

    run = run_now(release)

    assert run.state == UpdateRun.State.SUCCEEDED, run.log
    app = stack.service_containers(runtime.docker_client(), agent_stack.project)["app"]
    assert app[0].attrs["HostConfig"]["CapAdd"] == ["SYS_PTRACE"]


# ---------------------------------------------------------------------------
# Drift: hand edits are reported, not silently undone
# ---------------------------------------------------------------------------


def test_a_stack_changed_by_hand_is_reported_before_the_next_update(
    agent_stack: AgentStack, client, school_admin
) -> None:  # type: ignore[no-untyped-def]
    run = run_now(
        agent_stack.release_for(
            "1.0.1", compose=releases.compose_file(agent_stack.images["1.0.1"])
        )
    )
    assert run.state == UpdateRun.State.SUCCEEDED, run.log
    assert AgentState.load().drift == []
    engine = runtime.docker_client()
    worker = stack.service_containers(engine, agent_stack.project)["worker"][0]
    worker.stop(timeout=2)
    worker.remove()

    actions.check_drift(actor=Actor.command())

    drift = AgentState.load().drift
    assert drift == ["service worker has no container (stopped or removed by hand)"]
    client.force_login(school_admin)
    page = client.get("/updates/").content.decode()
    assert "The stack was changed by hand" in page
    assert "service worker has no container" in page
    with pytest.raises(docker.errors.NotFound):
        engine.containers.get(worker.id)
