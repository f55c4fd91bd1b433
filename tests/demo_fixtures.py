"""Pytest fixtures for the demo CLMS stack (registered by ``tests/conftest.py``).

``demo_images`` builds and pushes every demo version once per session (a
second build in the same engine reuses its cache); ``demo_database`` is a
scratch library database per test; ``demo_stack`` runs the stack at 1.0.0
with sample data and removes it afterwards.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import psycopg
import pytest

from conftest import require_service
from devtools.demo_stack.images import build_and_push
from devtools.demo_stack.stack import (
    DemoStack,
    seed,
    start_stack,
    stop_stack,
    wait_healthy,
)
from devtools.services import free_port

__all__ = [
    "demo_database",
    "demo_docker",
    "demo_images",
    "demo_stack",
    "start_demo_stack",
]


@pytest.fixture(scope="session")
def demo_docker() -> Iterator[docker.DockerClient]:
    """A Docker SDK client on the test engine, for the whole session."""
    client = docker.DockerClient(base_url=require_service("dockerd", "DOCKER_HOST"))
    yield client
    client.close()


@pytest.fixture(scope="session")
def demo_images(demo_docker: docker.DockerClient) -> dict[str, str]:
    """Every demo version pushed to the test registry: tag -> digest reference."""
    registry = require_service("registry", "CLMS_TEST_REGISTRY")
    started = time.monotonic()
    references = build_and_push(demo_docker, registry)
    print(
        f"\n[demo] built and pushed {len(references)} images in {time.monotonic() - started:.1f}s"
    )
    return references


def _admin_url(server_url: str, database: str) -> str:
    base, _, _ = server_url.rpartition("/")
    return f"{base}/{database}"


@pytest.fixture
def demo_database(postgres_url: str) -> Iterator[str]:
    """URL of an empty scratch database for one test's library."""
    name = f"clms_demo_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield _admin_url(postgres_url, name)
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def start_demo_stack(
    demo_docker: docker.DockerClient,
    demo_images: dict[str, str],
    demo_database: str,
    tmp_path: Path,
) -> Iterator:
    """Start a demo stack (``start_demo_stack(version="1.0.0", seeded=True, **options)``)."""
    projects: list[str] = []

    def start(
        version: str = "1.0.0", *, seeded: bool = True, **options: object
    ) -> DemoStack:
        project = f"clms-{uuid.uuid4().hex[:8]}"
        projects.append(project)
        stack = start_stack(
            demo_docker,
            image_ref=demo_images[version],
            project=project,
            database_url=demo_database,
            http_port=free_port(),
            state_dir=tmp_path / f"{project}-state",
            env_file=tmp_path / project / "clms.env",
            **options,  # type: ignore[arg-type]
        )
        if seeded:
            seed(
                demo_docker, image_ref=demo_images[version], database_url=demo_database
            )
        return stack

    yield start
    for project in projects:
        stop_stack(demo_docker, project)


@pytest.fixture
def demo_stack(start_demo_stack) -> DemoStack:  # type: ignore[no-untyped-def]
    """The demo stack at 1.0.0, healthy, with the sample library in its database."""
    stack = start_demo_stack("1.0.0")
    wait_healthy(stack.health_url, timeout=30, version="1.0.0")
    return stack
