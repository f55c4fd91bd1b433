"""Start, migrate, seed, probe and stop the demo CLMS stack, with Docker Compose.

The stack is ``compose.yml`` beside this file: two services of one image
(``app`` serving HTTP, ``worker`` in the background) on host networking (a
bridge cannot reach a PostgreSQL bound to the host's loopback), with an init
process, a restart policy and the state directory bind-mounted. It is started
with the real compose CLI (the v2 plugin, or Debian's docker-compose), from a
project folder holding that file as ``compose.yaml`` and the env file, exactly
as a school's installation made before compose releases: the agent finds it
by its compose labels and adopts it on its first compose release.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import docker
from docker.models.containers import Container

SERVICES = ("app", "worker")
STATE_MOUNT = "/var/lib/clms"
IMAGE_VARIABLE = "CLMS_APP_IMAGE"
SERVICE_LABEL = "com.docker.compose.service"
COMPOSE_FILE = Path(__file__).resolve().parent / "compose.yml"


class DemoStackError(RuntimeError):
    """The demo stack did not do what was asked; the message says what and why."""


@dataclass
class DemoStack:
    """A started demo stack: its containers and where it answers."""

    project: str
    image_ref: str
    http_port: int
    state_dir: Path
    env_file: Path
    containers: dict[str, Container] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def health_url(self) -> str:
        return f"{self.url}/health"


def write_env_file(
    env_file: Path,
    *,
    image_ref: str,
    database_url: str,
    http_port: int,
    state_dir: Path,
    enforcement_url: str = "",
) -> None:
    """The env file ``docker compose --env-file`` reads for ``compose.yml``."""
    env_file.parent.mkdir(parents=True, exist_ok=True)
    env_file.write_text(
        "# Demo CLMS stack (devtools/demo_stack/compose.yml); the agent rewrites the\n"
        "# image line when it updates the stack.\n"
        f"{IMAGE_VARIABLE}={image_ref}\n"
        f"CLMS_DATABASE_URL={database_url}\n"
        f"CLMS_HTTP_PORT={http_port}\n"
        f"CLMS_STATE_HOST_DIR={state_dir}\n"
        f"CLMS_ENFORCEMENT_URL={enforcement_url}\n"
    )
    env_file.chmod(0o600)


def run_command(
    client: docker.DockerClient,
    *,
    image_ref: str,
    command: str,
    database_url: str,
    timeout: float = 60,
) -> tuple[int, str]:
    """Run ``clms migrate`` / ``clms seed`` in a one-off container: (exit code, logs)."""
    container = client.containers.run(
        image_ref,
        [command],
        environment={"CLMS_DATABASE_URL": database_url},
        network_mode="host",
        init=True,
        detach=True,
    )
    try:
        result = container.wait(timeout=timeout)
        logs = container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
    return int(result["StatusCode"]), logs


def migrate(client: docker.DockerClient, *, image_ref: str, database_url: str) -> str:
    """Apply the image's migrations; raise with the log when they fail."""
    code, logs = run_command(
        client, image_ref=image_ref, command="migrate", database_url=database_url
    )
    if code != 0:
        raise DemoStackError(f"`migrate` in {image_ref} exited {code}:\n{logs}")
    return logs


def seed(client: docker.DockerClient, *, image_ref: str, database_url: str) -> None:
    """Insert the sample library (books, students, loans) into empty tables."""
    code, logs = run_command(
        client, image_ref=image_ref, command="seed", database_url=database_url
    )
    if code != 0:
        raise DemoStackError(f"`seed` in {image_ref} exited {code}:\n{logs}")


def compose_command() -> list[str]:
    """The compose CLI here: ``docker compose`` (v2) or ``docker-compose`` (v1)."""
    for argv in (["docker", "compose"], ["docker-compose"]):
        if not shutil.which(argv[0]):
            continue
        probe = subprocess.run(
            [*argv, "version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return argv
    raise DemoStackError(
        "No Docker Compose CLI: install Debian's docker-compose (`make "
        "system-deps-test` does it) or the docker compose plugin."
    )


def compose(project_dir: Path, project: str, env_file: Path, *args: str) -> str:
    """Run compose on the demo project; its output, or ``DemoStackError``."""
    result = subprocess.run(
        [
            *compose_command(),
            "--project-name",
            project,
            "--project-directory",
            str(project_dir),
            "-f",
            str(project_dir / "compose.yaml"),
            "--env-file",
            str(env_file),
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, "COMPOSE_INTERACTIVE_NO_CLI": "1"},
    )
    if result.returncode != 0:
        raise DemoStackError(
            f"compose {' '.join(args)} failed:\n{result.stdout}{result.stderr}"
        )
    return result.stdout + result.stderr


def start_stack(
    client: docker.DockerClient,
    *,
    image_ref: str,
    project: str = "clms",
    database_url: str,
    http_port: int,
    state_dir: Path,
    env_file: Path,
    enforcement_url: str | None = None,
    migrate_first: bool = True,
) -> DemoStack:
    """Write the project folder (beside ``env_file``) and ``compose up`` it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    project_dir = env_file.parent
    project_dir.mkdir(parents=True, exist_ok=True)
    write_env_file(
        env_file,
        image_ref=image_ref,
        database_url=database_url,
        http_port=http_port,
        state_dir=state_dir,
        enforcement_url=enforcement_url or "",
    )
    shutil.copyfile(COMPOSE_FILE, project_dir / "compose.yaml")
    if migrate_first:
        migrate(client, image_ref=image_ref, database_url=database_url)
    compose(project_dir, project, env_file, "up", "-d")
    stack = DemoStack(project, image_ref, http_port, state_dir, env_file)
    for container in project_containers(client, project):
        stack.containers[container.labels.get(SERVICE_LABEL, "")] = container
    return stack


def project_containers(client: docker.DockerClient, project: str) -> list[Container]:
    """Every container of the project, running or not (renamed ones included)."""
    return client.containers.list(
        all=True, filters={"label": f"com.docker.compose.project={project}"}
    )


def service_container(
    client: docker.DockerClient, project: str, service: str
) -> Container:
    """The (first) container of ``service`` in the project, whatever compose named it."""
    found = sorted(
        (
            c
            for c in project_containers(client, project)
            if c.labels.get(SERVICE_LABEL) == service
            and c.labels.get("com.docker.compose.oneoff", "False") != "True"
        ),
        key=lambda c: c.name,
    )
    if not found:
        raise DemoStackError(f"project {project} has no container of service {service}")
    return found[0]


def stop_stack(
    client: docker.DockerClient, project: str = "clms", *, volumes: bool = True
) -> None:
    """Remove every container of the project, and its volumes unless told not to."""
    for container in project_containers(client, project):
        container.remove(force=True)
    if not volumes:
        return
    for volume in client.volumes.list(
        filters={"label": f"com.docker.compose.project={project}"}
    ):
        volume.remove(force=True)


def health(url: str, timeout: float = 2) -> tuple[int, dict[str, object]]:
    """One ``GET /health``: (HTTP status, parsed body); status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        body = error.read()
        try:
            return error.code, json.loads(body or b"{}")
        except ValueError:
            return error.code, {}
    except (OSError, ValueError):
        return 0, {}


def wait_healthy(
    url: str, timeout: float = 30, *, version: str | None = None
) -> dict[str, object]:
    """Poll ``url`` every 100 ms until it answers 200 (at ``version`` when given)."""
    deadline = time.monotonic() + timeout
    status = 0
    body: dict[str, object] = {}
    while time.monotonic() < deadline:
        status, body = health(url)
        if status == 200 and (version is None or body.get("version") == version):
            return body
        time.sleep(0.1)
    raise DemoStackError(
        f"{url} was not healthy within {timeout:.0f}s (last answer: {status} {body}); "
        "see the app container's logs."
    )
