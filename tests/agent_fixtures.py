"""The agent itself in containers, for the self-update suite.

``agent_images`` builds the agent's images (``devtools.agent_image``) once per
session and pushes them to the test registry. ``installed_agent`` installs the
agent at 1.0.0 as a school would: a compose project (web, worker, beat) in a
folder of its own, its own database on the test PostgreSQL and its own Redis
database, talking to the real vendor server of the test (``live_server``),
which publishes the agent's releases signed by a real key.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import gnupg
import psycopg
import pytest
import redis
import requests

from clms_updates import composecli
from conftest import require_service
from devtools.agent_image import build_agent_images, compose_file
from vendor_server import indexing
from vendor_server.publishing import ReleaseDraft, publish
from vendor_server.schools import create_school

__all__ = ["AgentInstall", "agent_images", "installed_agent"]

ADMIN_PASSWORD = "agent-admin-" + "x" * 8


@pytest.fixture(scope="session")
def agent_images(demo_docker: docker.DockerClient) -> dict[str, str]:
    """Every agent version in the test registry: tag -> digest reference."""
    registry = require_service("registry", "CLMS_TEST_REGISTRY")
    started = time.monotonic()
    references = build_agent_images(demo_docker, registry)
    print(
        f"\n[agent] built and pushed {len(references)} images in "
        f"{time.monotonic() - started:.1f}s"
    )
    return references


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class AgentInstall:
    """An agent installed in containers, and how to drive and inspect it."""

    client: docker.DockerClient
    images: dict[str, str]
    root: Path
    project: str
    env: dict[str, str]
    database_url: str
    port: int
    published: list[str] = field(default_factory=list)

    @property
    def directory(self) -> Path:
        return self.root / "project"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def compose(self, *args: str) -> str:
        """The compose CLI as an admin runs it in the agent's folder."""
        result = subprocess.run(
            [*composecli.find_cli().argv, *args],
            cwd=self.directory,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
            # As an admin's shell: the project's .env decides, not the test's env.
            env={
                "PATH": os.environ["PATH"],
                "DOCKER_HOST": self.env["DOCKER_HOST"],
                "COMPOSE_INTERACTIVE_NO_CLI": "1",
            },
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout + result.stderr

    def containers(self) -> dict[str, list[Any]]:
        """Running and stopped containers of the agent's project, by service."""
        found: dict[str, list[Any]] = {}
        for c in self.client.containers.list(
            all=True, filters={"label": f"com.docker.compose.project={self.project}"}
        ):
            if c.labels.get("com.docker.compose.oneoff") == "True":
                continue
            found.setdefault(c.labels["com.docker.compose.service"], []).append(c)
        return found

    def extra_containers(self) -> list[Any]:
        """Containers the self-update made beside the project (driver, trial)."""
        return self.client.containers.list(
            all=True, filters={"label": "org.clms-updates.selfupdate"}
        )

    def healthz(self) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=5) as r:  # noqa: S310
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, {}
        except OSError:
            return 0, {}

    def wait_healthy(self, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        status, body = 0, {}
        while time.monotonic() < deadline:
            status, body = self.healthz()
            if status == 200:
                return body
            time.sleep(1)
        pytest.fail(f"the agent's /healthz answered {status}: {body}\n{self.logs()}")

    def version(self) -> str:
        """The version the running agent web reports (its page footer source)."""
        web = self.containers()["web"][0]
        out = web.exec_run(
            ["python", "-c", "import os;print(os.environ['CLMS_UPDATES_VERSION'])"]
        )
        return out.output.decode().strip()

    def logs(self) -> str:
        """The agent's containers' last lines (for a failing assertion's message)."""
        parts = []
        found = [(s, c, 40) for s, cs in self.containers().items() for c in cs]
        found += [("", c, 80) for c in self.extra_containers()]
        for service, container, tail in found:
            try:
                text = container.logs(tail=tail).decode(errors="replace")
            except docker.errors.APIError as e:  # removed meanwhile
                text = f"(no logs: {e.explanation})"
            parts.append(f"--- {service} {container.name} ({container.status})\n{text}")
        return "\n".join(parts)[-12000:]

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url) as connection:
            return connection.execute(sql).fetchall()  # type: ignore[arg-type]

    def publish(self, tag: str, version: str) -> None:
        """The vendor publishes agent ``version`` running image ``tag``."""
        publish(
            ReleaseDraft(
                version=version,
                product="clms-updates",
                changelog=f"Agent {tag}",
                compose_text=compose_file(self.images[tag]),
            ),
            published_by="e2e",
        )
        indexing.forget_local_caches()
        self.published.append(version)

    def session(self) -> requests.Session:
        """A browser-like session logged in as the agent's admin."""
        session = requests.Session()
        page = session.get(f"{self.url}/accounts/login/", timeout=10)
        answer = session.post(
            f"{self.url}/accounts/login/",
            data={
                "username": "admin",
                "password": ADMIN_PASSWORD,
                "csrfmiddlewaretoken": _csrf(page.text),
            },
            headers={"Referer": f"{self.url}/accounts/login/"},
            timeout=10,
        )
        answer.raise_for_status()
        assert "/accounts/login/" not in answer.url, answer.text[-1500:]
        return session

    def post_form(
        self, session: requests.Session, path: str, **data: str
    ) -> requests.Response:
        page = session.get(f"{self.url}/updates/", timeout=20)
        return session.post(
            f"{self.url}{path}",
            data={**data, "csrfmiddlewaretoken": _csrf(page.text)},
            headers={"Referer": f"{self.url}/updates/"},
            timeout=60,
        )

    def wait_for_agent_run(
        self, timeout: float = 420, until: Callable[[str], bool] | None = None
    ) -> tuple[int, str, str, str]:
        """The newest agent run once it ended (or ``until(state)``): id, state, code, message."""
        deadline = time.monotonic() + timeout
        row: tuple[Any, ...] | None = None
        done = until or (
            lambda s: s in ("succeeded", "rolled_back", "failed", "cancelled")
        )
        while time.monotonic() < deadline:
            try:
                rows = self.query(
                    "SELECT id, state, error_code, error_message FROM updates_updaterun "
                    "WHERE kind = 'agent' ORDER BY id DESC LIMIT 1"
                )
            except psycopg.Error:
                rows = []  # the database is being restored
            if rows:
                row = rows[0]
                if done(str(row[1])):
                    return int(row[0]), str(row[1]), str(row[2]), str(row[3])
            time.sleep(1)
        pytest.fail(f"the agent run did not end: {row}\n{self.logs()}")


def _csrf(html: str) -> str:
    marker = 'name="csrfmiddlewaretoken" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


@pytest.fixture
def installed_agent(  # type: ignore[no-untyped-def]
    agent_images,
    demo_docker,
    live_server,
    signing_key,
    settings,
    postgres_url,
    redis_url,
) -> Iterator[AgentInstall]:
    """The agent at 1.0.0 in containers, healthy, with an admin and a first check."""
    home, fingerprint = signing_key
    settings.VENDOR_GNUPG_HOME = home
    settings.VENDOR_SIGNING_KEY = fingerprint
    settings.VENDOR_REGISTRY_CHECK = True
    indexing.forget_local_caches()
    _, api_key = create_school("Self-update Primary", channel="stable")
    root = Path(tempfile.mkdtemp(prefix="agent-", dir="/tmp"))
    for folder in ("project", "backups", "gnupg"):
        (root / folder).mkdir()
    (root / "gnupg").chmod(0o700)
    key_file = root / "vendor.asc"
    key_file.write_text(str(gnupg.GPG(gnupghome=str(home)).export_keys(fingerprint)))
    name = f"agent_{uuid.uuid4().hex[:10]}"
    base, _, _ = postgres_url.rpartition("/")
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    database_url = f"{base}/{name}"
    redis_base = redis_url.rsplit("/", 1)[0]
    socket_path = require_service("dockerd", "DOCKER_HOST").removeprefix("unix://")
    project = f"clms-agent-{uuid.uuid4().hex[:6]}"
    port = _free_port()
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": f"{redis_base}/9",
        "SECRET_KEY": secrets.token_hex(32),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DOCKER_HOST": f"unix://{socket_path}",
        "DOCKER_SOCKET": socket_path,
        "AGENT_ROOT": str(root),
        "AGENT_PROJECT_DIR": str(root / "project"),
        "AGENT_COMPOSE_PROJECT": project,
        "CLMS_UPDATES_HTTP_PORT": str(port),
        "BACKUP_DIR": str(root / "backups"),
        "UPDATES_GNUPG_HOME": str(root / "gnupg"),
        "UPDATES_VENDOR_URL": live_server.url,
        "UPDATES_VENDOR_API_KEY": api_key,
        "UPDATES_VENDOR_KEY_FINGERPRINTS": fingerprint,
        "UPDATES_VENDOR_PUBLIC_KEY_FILE": str(key_file),
        "AGENT_HEALTH_TIMEOUT_SECONDS": "60",
        "UPDATES_RUN_LEASE_SECONDS": "15",
        "DEBUG": "true",
    }
    agent = AgentInstall(
        demo_docker, agent_images, root, project, env, database_url, port
    )
    directory = agent.directory
    (directory / "compose.yaml").write_text(compose_file(agent_images["1.0.0"]))
    (directory / ".env").write_text(
        f"COMPOSE_PROJECT_NAME={project}\n"
        + "".join(f"{k}={v}\n" for k, v in env.items())
    )
    (directory / ".env").chmod(0o600)
    image = agent_images["1.0.0"]
    # As the installer does: migrate, then the first admin (one container).
    _one_off(
        demo_docker,
        image,
        {**env, "DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD},
        root,
        socket_path,
        [
            "sh",
            "-c",
            "python manage.py migrate --noinput && python manage.py createsuperuser "
            "--noinput --username admin --email it@school.example",
        ],
    )
    # The agent's Redis database is its own: nothing queued by an earlier test's
    # agent (tasks, results, locks) may reach this one.
    agent_redis = redis.Redis.from_url(env["REDIS_URL"])
    agent_redis.flushdb()
    agent.compose("up", "-d")
    agent.wait_healthy()
    yield agent
    for container in [
        c for cs in agent.containers().values() for c in cs
    ] + agent.extra_containers():
        container.remove(force=True)
    for container in demo_docker.containers.list(
        all=True, filters={"label": f"com.docker.compose.project={project}"}
    ):
        container.remove(force=True)
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    subprocess.run(
        ["gpgconf", "--homedir", str(root / "gnupg"), "--kill", "all"],
        check=False,
        capture_output=True,
    )
    agent_redis.flushdb()
    shutil.rmtree(root, ignore_errors=True)


def _one_off(
    client: docker.DockerClient,
    image: str,
    env: dict[str, str],
    root: Path,
    socket_path: str,
    command: list[str],
) -> None:
    container = client.containers.run(
        image,
        command,
        environment={**env, "CLMS_ROLE": "school"},
        network_mode="host",
        volumes={
            str(root): {"bind": str(root), "mode": "rw"},
            socket_path: {"bind": socket_path, "mode": "rw"},
        },
        detach=True,
    )
    result = container.wait(timeout=300)
    logs = container.logs().decode(errors="replace")
    container.remove(force=True)
    assert result["StatusCode"] == 0, f"{command} failed:\n{logs[-3000:]}"
