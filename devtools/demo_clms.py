"""The demo CLMS installation that `make run` updates: registry, database, stack.

Starts (under ``var/``) a Docker registry and a PostgreSQL server for the
library database, builds the demo CLMS images offline and pushes them, writes
release files for the vendor side to publish, and starts the stack at the
version it last ran (1.0.0 the first time). Returns the settings the agent needs
to find and update that stack. Tooling for the demo only: the product never
imports it.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from devtools import services as localservices

REGISTRY_PORT = int(os.environ.get("CLMS_DEMO_REGISTRY_PORT", "5050"))
POSTGRES_PORT = int(os.environ.get("CLMS_DEMO_POSTGRES_PORT", "5433"))
APP_PORT = int(os.environ.get("CLMS_DEMO_APP_PORT", "8090"))
# The demo CLMS app asks the agent, on each operation, whether it is blocked.
ENFORCEMENT_URL = os.environ.get(
    "CLMS_DEMO_ENFORCEMENT_URL", "http://127.0.0.1:8000/api/updates/enforcement"
)
PROJECT = "clms"
DATABASE = "clms_library"

# What the vendor side publishes for the demo: two good updates (version ->
# demo image tag, changelog) ...
RELEASES = {
    "1.0.1": (
        "1.0.1",
        "### Fixed\n- Books now carry their ISBN.\n- Faster loan lists.",
    ),
    "1.0.2": (
        "1.0.2",
        "### Added\n- Reservations.\n### Fixed\n- Overdue loans index.",
    ),
}
# ... and the failure demo: three broken releases, published but held back
# (disabled) until vendor staff enable one in the admin to watch a rollback.
FAILURE_RELEASES = {
    "1.1.0": (
        "1.1.0-unhealthy",
        "**Failure demo**: migrates, then its health check never passes; the agent "
        "puts 1.0.2's containers back.",
    ),
    "1.1.1": (
        "1.1.0-badmigration",
        "**Failure demo**: its second migration fails half-way; the agent restores "
        "the database from the backup taken just before.",
    ),
    "1.1.2": (
        "1.1.0-crash",
        "**Failure demo**: every container exits at start; the agent rolls back.",
    ),
}


@dataclass(frozen=True)
class DemoRelease:
    """A release file for the vendor side, and whether it starts held back."""

    path: Path
    held_back: bool = False


def _say(message: str) -> None:
    print(f"[run] {message}", flush=True)


def _ensure_database(admin_url: str) -> bool:
    """Create the library database if missing; True when it was created."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
        ).fetchone()
        if exists:
            return False
        connection.execute(f'CREATE DATABASE "{DATABASE}"')
        return True


def _release_file(folder: Path, version: str, image_ref: str, changelog: str) -> Path:
    now = datetime.now(UTC).replace(microsecond=0)
    data = {
        "version": version,
        "channel": "stable",
        "changelog": changelog,
        "images": [
            {"service": "app", "reference": image_ref},
            {"service": "worker", "reference": image_ref},
        ],
        "migration": {"service": "app", "command": ["migrate"]},
        "health": {
            "path": "/health",
            "expected_status": 200,
            "body_field": "status",
            "body_value": "ok",
            "successes": 3,
            "interval_ms": 300,
            "timeout_seconds": 30,
        },
        "released_at": (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    path = folder / f"release-{version}.json"
    path.write_text(json.dumps(data, indent=2))
    return path


def start(
    var: Path,
) -> tuple[list[localservices.Service], dict[str, str], list[DemoRelease]]:
    """Bring the demo installation up; return (services, agent env, release files)."""
    import docker

    from devtools.demo_stack import (
        build_and_push,
        project_containers,
        start_stack,
        stop_stack,
    )
    from devtools.demo_stack import seed as seed_database
    from devtools.demo_stack.stack import compose

    services: list[localservices.Service] = []
    if localservices.port_open(REGISTRY_PORT):
        _say(f"A registry already answers on 127.0.0.1:{REGISTRY_PORT}; using it.")
    else:
        services.append(localservices.start_registry(var / "registry", REGISTRY_PORT))
        _say(f"Docker registry started on 127.0.0.1:{REGISTRY_PORT}.")
    if localservices.port_open(POSTGRES_PORT):
        _say(f"PostgreSQL already answers on 127.0.0.1:{POSTGRES_PORT}; using it.")
    else:
        services.append(localservices.start_postgres(var / "postgres", POSTGRES_PORT))
        _say(f"PostgreSQL for the library started on 127.0.0.1:{POSTGRES_PORT}.")
    admin_url = f"postgresql://postgres@127.0.0.1:{POSTGRES_PORT}/postgres"
    database_url = f"postgresql://postgres@127.0.0.1:{POSTGRES_PORT}/{DATABASE}"
    created = _ensure_database(admin_url)

    client = docker.DockerClient(base_url=os.environ["DOCKER_HOST"], timeout=120)
    _say("Building the demo CLMS images (offline) and pushing them…")
    digests = build_and_push(client, f"127.0.0.1:{REGISTRY_PORT}")

    demo = var / "demo"
    demo.mkdir(parents=True, exist_ok=True)
    env_file = demo / "clms.env"
    state_dir = demo / "state"
    running = project_containers(client, PROJECT)
    if running and created:
        # var/ was wiped but the engine kept the old stack: start over with it.
        stop_stack(client, PROJECT)
        env_file.unlink(missing_ok=True)
        running = []
    managed = demo / ".clms" / "project.json"
    if running:
        for container in running:
            if container.status != "running":
                container.start()
        _say(f"The demo CLMS stack is up at http://127.0.0.1:{APP_PORT}/health.")
    elif managed.exists():
        # The agent adopted the project: start it from the files it wrote.
        compose(demo, PROJECT, demo / ".env", "up", "-d")
        _say(f"The demo CLMS stack started at http://127.0.0.1:{APP_PORT}/health.")
    else:
        image = digests["1.0.0"]
        if env_file.exists():
            # Start again at whatever version the agent last installed.
            for line in env_file.read_text().splitlines():
                if line.startswith("CLMS_APP_IMAGE="):
                    image = line.split("=", 1)[1].strip()
        start_stack(
            client,
            image_ref=image,
            project=PROJECT,
            database_url=database_url,
            http_port=APP_PORT,
            state_dir=state_dir,
            env_file=env_file,
            enforcement_url=ENFORCEMENT_URL,
        )
        if created:
            seed_database(client, image_ref=image, database_url=database_url)
        _say(f"The demo CLMS stack started at http://127.0.0.1:{APP_PORT}/health.")
    client.close()

    release_files = [
        DemoRelease(_release_file(demo, v, digests[tag], text))
        for v, (tag, text) in RELEASES.items()
    ] + [
        DemoRelease(_release_file(demo, v, digests[tag], text), held_back=True)
        for v, (tag, text) in FAILURE_RELEASES.items()
    ]
    bindir = ""
    with contextlib.suppress(localservices.ServiceError):
        bindir = str(localservices.postgres_bindir())
    env = {
        "CLMS_DATABASE_URL": database_url,
        "CLMS_PG_BINDIR": bindir,
        "CLMS_COMPOSE_PROJECT": PROJECT,
        "CLMS_PROJECT_DIR": str(demo),
        "CLMS_COMPOSE_ENV_FILE": str(env_file),
        # The demo stack reaches its database on the host's loopback.
        "CLMS_COMPOSE_ALLOW": "network_mode:host",
        "CLMS_STATE_DIR": str(state_dir),
        "CLMS_APP_URL": f"http://127.0.0.1:{APP_PORT}",
        "CLMS_INSTALLED_VERSION": "1.0.0",
    }
    return services, env, release_files


def load_env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines of a file written by the demo seeding."""
    if not path.exists():
        return {}
    pairs = (
        line.split("=", 1) for line in path.read_text().splitlines() if "=" in line
    )
    return {name.strip(): value.strip() for name, value in pairs}
