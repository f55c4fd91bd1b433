"""Start, migrate, seed, probe and stop the demo CLMS stack through the Docker SDK.

The stack is what ``compose.yml`` beside this file describes: two services of
one image (``app`` serving HTTP, ``worker`` in the background) on host
networking (a bridge cannot reach a PostgreSQL bound to the host's loopback),
each container labelled the way ``docker compose`` labels its own, with an init
process, a restart policy and the state directory bind-mounted. The agent finds
the services by those labels exactly as it would in a school's real stack.
"""

from __future__ import annotations

import json
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
    )


def _environment(
    database_url: str, http_port: int, enforcement_url: str | None
) -> dict[str, str]:
    env = {
        "CLMS_DATABASE_URL": database_url,
        "CLMS_HTTP_PORT": str(http_port),
        "CLMS_STATE_DIR": STATE_MOUNT,
    }
    if enforcement_url:
        env["CLMS_ENFORCEMENT_URL"] = enforcement_url
    return env


def _labels(
    project: str, service: str, env_file: Path, *, oneoff: bool = False
) -> dict[str, str]:
    return {
        "com.docker.compose.project": project,
        "com.docker.compose.service": service,
        "com.docker.compose.container-number": "1",
        "com.docker.compose.oneoff": "True" if oneoff else "False",
        "com.docker.compose.project.working_dir": str(env_file.parent),
        "com.docker.compose.project.environment_file": str(env_file),
    }


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
    """Create and start the stack's containers (migrating the database first)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    write_env_file(
        env_file,
        image_ref=image_ref,
        database_url=database_url,
        http_port=http_port,
        state_dir=state_dir,
    )
    if migrate_first:
        migrate(client, image_ref=image_ref, database_url=database_url)
    stack = DemoStack(project, image_ref, http_port, state_dir, env_file)
    environment = _environment(database_url, http_port, enforcement_url)
    for service in SERVICES:
        stack.containers[service] = client.containers.run(
            image_ref,
            ["serve" if service == "app" else "worker"],
            name=f"{project}-{service}-1",
            labels=_labels(project, service, env_file),
            environment=environment,
            volumes={str(state_dir): {"bind": STATE_MOUNT, "mode": "rw"}},
            network_mode="host",
            init=True,
            restart_policy={"Name": "unless-stopped"},
            healthcheck={
                "test": [
                    "CMD",
                    "curl",
                    "-fsS",
                    "-o",
                    "/dev/null",
                    f"http://127.0.0.1:{http_port}/health",
                ]
                if service == "app"
                else ["CMD", "true"],
                "interval": 10_000_000_000,
                "timeout": 5_000_000_000,
                "retries": 3,
            },
            stop_signal="SIGTERM",
            detach=True,
        )
    return stack


def project_containers(client: docker.DockerClient, project: str) -> list[Container]:
    """Every container of the project, running or not (renamed ones included)."""
    return client.containers.list(
        all=True, filters={"label": f"com.docker.compose.project={project}"}
    )


def stop_stack(client: docker.DockerClient, project: str = "clms") -> None:
    """Stop and remove every container of the project (old ``-previous`` ones too)."""
    for container in project_containers(client, project):
        container.remove(force=True)


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
