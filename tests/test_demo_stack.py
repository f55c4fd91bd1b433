"""The demo CLMS stack: offline images in a real registry, run on a real engine and database."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest

from devtools.demo_stack import (
    IMAGE_VARIABLE,
    VERSIONS,
    build_and_push,
    health,
    run_command,
    service_container,
    wait_healthy,
)
from devtools.services import free_port

pytestmark = [pytest.mark.services, pytest.mark.docker]

DIGEST_REFERENCE = re.compile(r"^127\.0\.0\.1:\d+/clms/app@sha256:[0-9a-f]{64}$")


def request(url: str, body: dict[str, object] | None = None) -> tuple[int, object]:
    data = json.dumps(body).encode() if body is not None else None
    try:
        outgoing = urllib.request.Request(url, data=data)  # noqa: S310 (http only)
        with urllib.request.urlopen(outgoing, timeout=5) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def rows(
    database_url: str, query: str, params: tuple[object, ...] = ()
) -> list[tuple[object, ...]]:
    with psycopg.connect(database_url) as connection:
        return connection.execute(query, params).fetchall()


def test_every_version_is_pushed_and_named_by_digest(demo_images, demo_docker):
    assert set(demo_images) == set(VERSIONS)
    assert all(DIGEST_REFERENCE.match(ref) for ref in demo_images.values())
    assert len(set(demo_images.values())) == len(VERSIONS)
    for reference in demo_images.values():
        assert (
            demo_docker.images.get_registry_data(reference).id
            == reference.split("@")[1]
        )


def test_a_second_build_in_the_same_engine_is_near_instant(demo_images, demo_docker):
    registry = demo_images["1.0.0"].split("/")[0]
    started = time.monotonic()
    again = build_and_push(demo_docker, registry)
    elapsed = time.monotonic() - started
    print(f"\n[demo] cached rebuild and push: {elapsed:.2f}s")
    assert again == demo_images
    assert elapsed < 10


def test_the_stack_runs_like_a_compose_project_and_answers_health(
    demo_stack, demo_docker
):
    status, body = health(demo_stack.health_url)
    assert status == 200
    assert body["version"] == "1.0.0"
    assert body["database"] == "ok"
    app = service_container(demo_docker, demo_stack.project, "app")
    assert app.labels["com.docker.compose.project"] == demo_stack.project
    assert app.labels["com.docker.compose.service"] == "app"
    host_config = app.attrs["HostConfig"]
    assert host_config["NetworkMode"] == "host"
    assert host_config["Init"] is True
    assert host_config["RestartPolicy"]["Name"] == "unless-stopped"
    assert [m["Source"] for m in app.attrs["Mounts"]] == [str(demo_stack.state_dir)]
    worker = service_container(demo_docker, demo_stack.project, "worker")
    assert worker.status == "running"
    env_lines = demo_stack.env_file.read_text().splitlines()
    assert f"{IMAGE_VARIABLE}={demo_stack.image_ref}" in env_lines


def test_start_health_and_stop_take_well_under_a_few_seconds(
    start_demo_stack, demo_docker
):
    from devtools.demo_stack import stop_stack

    started = time.monotonic()
    stack = start_demo_stack("1.0.0", seeded=False)
    created = time.monotonic()
    wait_healthy(stack.health_url, timeout=30)
    healthy = time.monotonic()
    stop_stack(demo_docker, stack.project)
    stopped = time.monotonic()
    print(
        f"\n[demo] migrate+start {created - started:.2f}s, healthy after "
        f"{healthy - created:.2f}s more, stop+remove {stopped - healthy:.2f}s"
    )
    assert healthy - started < 10
    assert stopped - healthy < 5


def test_the_library_operations_read_and_write_the_database(demo_stack, demo_database):
    status, books = request(f"{demo_stack.url}/books")
    assert status == 200
    assert [b["title"] for b in books][:2] == ["The Hobbit", "Matilda"]
    status, loan = request(f"{demo_stack.url}/loans", {"book_id": 5, "student_id": 2})
    assert status == 201
    assert rows(
        demo_database,
        "SELECT book_id, student_id FROM loans WHERE id = %s",
        (loan["id"],),
    ) == [(5, 2)]
    status, _ = request(f"{demo_stack.url}/loans", {"book_id": 999, "student_id": 2})
    assert status == 409


def test_the_maintenance_flag_holds_operations_but_not_health(demo_stack):
    flag = demo_stack.state_dir / "maintenance.json"
    flag.write_text(json.dumps({"maintenance": True, "message": "Updating to 1.0.1"}))
    status, body = request(f"{demo_stack.url}/books")
    assert (status, body["message"]) == (503, "Updating to 1.0.1")
    status, body = health(demo_stack.health_url)
    assert (status, body["maintenance"]) == (200, True)
    flag.unlink()
    assert request(f"{demo_stack.url}/books")[0] == 200


class _Verdict(BaseHTTPRequestHandler):
    verdict: dict[str, object] = {"blocked": False}

    def do_GET(self) -> None:
        body = json.dumps(self.verdict).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_enforcement_blocks_with_423_and_fails_open_when_unreachable(
    start_demo_stack, demo_docker
):
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Verdict)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/enforcement"
    stack = start_demo_stack("1.0.0", enforcement_url=url)
    wait_healthy(stack.health_url)
    try:
        assert request(f"{stack.url}/books")[0] == 200
        _Verdict.verdict = {
            "blocked": True,
            "message": "Blocked until the critical update 1.0.1 is applied.",
        }
        status, body = request(f"{stack.url}/books")
        assert (status, body["message"]) == (
            423,
            "Blocked until the critical update 1.0.1 is applied.",
        )
        assert health(stack.health_url)[0] == 200
    finally:
        _Verdict.verdict = {"blocked": False}
        server.shutdown()
        server.server_close()
    assert request(f"{stack.url}/books")[0] == 200
    logs = service_container(demo_docker, stack.project, "app").logs().decode()
    assert "fail open" in logs


def test_each_version_migrates_the_schema_further(
    demo_images, demo_docker, demo_database
):
    def migrate(tag: str) -> tuple[int, str]:
        return run_command(
            demo_docker,
            image_ref=demo_images[tag],
            command="migrate",
            database_url=demo_database,
        )

    assert migrate("1.0.0")[0] == 0
    assert rows(
        demo_database,
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'books' AND column_name = 'isbn'",
    ) == [(0,)]
    assert migrate("1.0.1")[0] == 0
    assert rows(
        demo_database,
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'books' AND column_name = 'isbn'",
    ) == [(1,)]
    assert migrate("1.0.2")[0] == 0
    assert rows(demo_database, "SELECT to_regclass('reservations') IS NOT NULL") == [
        (True,)
    ]
    code, logs = migrate("1.1.0-badmigration")
    assert code == 1
    assert "legacy_inventory" in logs
    applied = rows(
        demo_database, "SELECT version FROM clms_schema_migrations ORDER BY version"
    )
    assert [v for (v,) in applied][-1] == "0004_loan_due_date"
    assert rows(demo_database, "SELECT to_regclass('book_copies') IS NULL") == [(True,)]


def test_the_broken_variants_fail_the_way_they_are_named(start_demo_stack, demo_docker):
    unhealthy = start_demo_stack("1.1.0-unhealthy")
    time.sleep(0.5)
    deadline = time.monotonic() + 10
    status, body = health(unhealthy.health_url)
    while status == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
        status, body = health(unhealthy.health_url)
    assert (status, body["status"], body["database"]) == (503, "failing", "ok")

    crash = start_demo_stack("1.1.0-crash", seeded=False)
    container = service_container(demo_docker, crash.project, "app")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        container.reload()
        if (
            container.attrs["State"]["ExitCode"] != 0
            or container.attrs["RestartCount"] > 0
        ):
            break
        time.sleep(0.1)
    assert (
        container.attrs["State"]["ExitCode"] == 3 or container.attrs["RestartCount"] > 0
    )
    assert "crashes at start on purpose" in container.logs().decode()


def test_compose_reads_the_env_file_the_helpers_write(demo_stack):
    import shutil
    import subprocess
    from pathlib import Path

    import yaml

    binary = shutil.which("docker-compose")
    assert binary, (
        "docker-compose is not installed; `make system-deps-test` installs it"
    )
    compose_file = (
        Path(__file__).parent.parent / "devtools" / "demo_stack" / "compose.yml"
    )
    result = subprocess.run(
        [
            binary,
            "--env-file",
            str(demo_stack.env_file),
            "-f",
            str(compose_file),
            "config",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert set(services) == {"app", "worker"}
    app = services["app"]
    assert app["image"] == demo_stack.image_ref
    assert (app["network_mode"], app["restart"], app["init"]) == (
        "host",
        "unless-stopped",
        True,
    )
    assert app["environment"]["CLMS_HTTP_PORT"] == str(demo_stack.http_port)


def test_the_command_line_starts_and_stops_a_stack(
    demo_images, demo_database, demo_docker, tmp_path
):
    import subprocess
    import sys
    from pathlib import Path

    registry = demo_images["1.0.0"].split("/")[0]
    port = free_port()
    root = Path(__file__).resolve().parent.parent
    command = [sys.executable, "-m", "devtools.demo_stack"]
    started = subprocess.run(
        [
            *command,
            "start",
            "--registry",
            registry,
            "--version",
            "1.0.1",
            "--project",
            "clms-cli",
            "--database-url",
            demo_database,
            "--port",
            str(port),
            "--state-dir",
            str(tmp_path / "state"),
            "--env-file",
            str(tmp_path / "clms.env"),
        ],
        capture_output=True,
        text=True,
        cwd=root,
        check=False,
        timeout=120,
    )
    try:
        assert started.returncode == 0, started.stderr
        assert json.loads(started.stdout)["health"]["version"] == "1.0.1"
        assert health(f"http://127.0.0.1:{port}/health")[0] == 200
    finally:
        stopped = subprocess.run(
            [*command, "stop", "--project", "clms-cli"],
            cwd=root,
            check=False,
            timeout=60,
        )
    assert stopped.returncode == 0
    assert (
        demo_docker.containers.list(
            all=True, filters={"label": "com.docker.compose.project=clms-cli"}
        )
        == []
    )
