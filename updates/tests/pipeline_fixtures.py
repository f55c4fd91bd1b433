"""Fixtures of the pipeline suites: a demo stack the agent is configured to update.

``agent_stack`` starts the demo CLMS stack at 1.0.0 with its sample library,
points every pipeline setting at it (project, env file, state folder, app URL,
the library database for backups), and gives ``release_for(tag)``: an
``AvailableRelease`` for a demo image (or, with ``compose=``, for a vendor
compose file from ``devtools.demo_stack.releases``), signed by a real vendor
key that the agent pins, exactly as a check would have stored it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import gnupg
import psycopg
import pytest
from django.utils import timezone
from psycopg import sql

from clms_updates import manifest as m
from clms_updates.manifest import import_public_keys
from clms_updates.manifest.compose import from_compose_file, service_images
from conftest import generate_signing_key
from devtools.demo_stack import DemoStack, wait_healthy
from tests.demo_fixtures import (
    demo_database,
    demo_docker,
    demo_images,
    start_demo_stack,
)
from updates import runtime
from updates.models import AgentState, AvailableRelease

__all__ = [
    "AgentStack",
    "agent_stack",
    "compose_manifest",
    "demo_database",
    "demo_docker",
    "demo_images",
    "library_rows",
    "pipeline_key",
    "signed_manifest",
    "start_demo_stack",
]

LIBRARY_TABLES = ("books", "students", "loans")


@pytest.fixture(scope="session")
def pipeline_key() -> Iterator[tuple[Path, str]]:
    """A real vendor signing key for the session: (GnuPG home, fingerprint)."""
    home = Path(tempfile.mkdtemp(prefix="gpg-", dir="/tmp"))
    home.chmod(0o700)
    yield home, generate_signing_key(home)
    subprocess.run(
        ["gpgconf", "--homedir", str(home), "--kill", "all"],
        check=False,
        capture_output=True,
    )
    shutil.rmtree(home, ignore_errors=True)


def signed_manifest(
    version: str,
    reference: str,
    *,
    health: m.HealthCheck | None = None,
    migration: tuple[str, ...] = ("migrate",),
) -> m.ReleaseManifest:
    """A manifest naming ``reference`` for both demo services."""
    now = datetime.now(UTC).replace(microsecond=0)
    return m.ReleaseManifest(
        product="clms",
        version=version,
        channel="stable",
        released_at=now - timedelta(hours=1),
        expires=now + timedelta(days=30),
        images=(m.Image("app", reference), m.Image("worker", reference)),
        health=health
        or m.HealthCheck(
            path="/health",
            body_field="status",
            body_value="ok",
            successes=3,
            interval_ms=200,
            timeout_seconds=8,
        ),
        migration=m.Migration("app", migration),
        changelog=f"Demo {version}",
    )


def compose_manifest(version: str, text: str) -> m.ReleaseManifest:
    """A format-2 manifest of the vendor compose file ``text`` (as publishing builds it)."""
    release = from_compose_file(text)
    now = datetime.now(UTC).replace(microsecond=0)
    return m.ReleaseManifest(
        product="clms",
        version=version,
        channel="stable",
        released_at=now - timedelta(hours=1),
        expires=now + timedelta(days=30),
        images=tuple(
            m.Image(service, image)
            for service, image in sorted(service_images(release.project).items())
        ),
        compose=release.project,
        settings=release.settings,
        health=m.HealthCheck.from_dict(release.health, "health")
        if release.health
        else m.HealthCheck(),
        migration=m.Migration.from_dict(release.migration, "migration")
        if release.migration
        else None,
        changelog=f"Demo {version}",
    )


def library_rows(database_url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the library's tables (the columns of 1.0.0), in id order."""
    columns = {
        "books": "id, title, author",
        "students": "id, name, grade",
        "loans": "id, book_id, student_id",
    }
    with psycopg.connect(database_url) as connection:
        return {
            table: connection.execute(
                sql.SQL("SELECT {} FROM {} ORDER BY id").format(
                    sql.SQL(columns[table]), sql.Identifier(table)
                )
            ).fetchall()
            for table in LIBRARY_TABLES
        }


@dataclass
class AgentStack:
    """The demo stack the agent updates, and how to make releases for it."""

    stack: DemoStack
    database_url: str
    images: dict[str, str]
    release_for: Callable[..., AvailableRelease]
    key: tuple[Path, str]
    agent_home: Path

    @property
    def project(self) -> str:
        return self.stack.project

    def health(self) -> dict[str, object]:
        return wait_healthy(self.stack.health_url, timeout=20)


@pytest.fixture
def agent_stack(  # type: ignore[no-untyped-def]
    start_demo_stack,
    demo_images,
    demo_database,
    pipeline_key,
    settings,
    tmp_path: Path,
) -> Iterator[AgentStack]:
    """The demo stack at 1.0.0 with data, and the agent's settings pointing at it."""
    stack = start_demo_stack("1.0.0")
    wait_healthy(stack.health_url, timeout=30, version="1.0.0")
    home, fingerprint = pipeline_key
    agent_home = Path(tempfile.mkdtemp(prefix="gpg-", dir="/tmp"))
    agent_home.chmod(0o700)
    armored = str(gnupg.GPG(gnupghome=str(home)).export_keys(fingerprint))
    import_public_keys(agent_home, armored)
    settings.UPDATES_GNUPG_HOME = agent_home
    settings.UPDATES_VENDOR_KEY_FINGERPRINTS = [fingerprint]
    settings.UPDATES_VENDOR_URL = ""
    settings.CLMS_COMPOSE_PROJECT = stack.project
    settings.CLMS_PROJECT_DIR = str(stack.env_file.parent)
    settings.CLMS_COMPOSE_ENV_FILE = str(stack.env_file)
    # The demo stack shares the host's network (its database is on loopback).
    settings.CLMS_COMPOSE_ALLOW = ["network_mode:host"]
    settings.CLMS_STATE_DIR = stack.state_dir
    settings.CLMS_APP_URL = stack.url
    settings.CLMS_DATABASE_URL = demo_database
    settings.BACKUP_DIR = tmp_path / "backups"
    settings.UPDATES_MIN_FREE_DISK_MB = 10
    settings.UPDATES_STOP_TIMEOUT_SECONDS = 5
    settings.ADMIN_EMAILS = ["it@school.example"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    AgentState.objects.update_or_create(pk=1, defaults={"installed_version": "1.0.0"})

    def release_for(
        tag: str, version: str | None = None, *, compose: str = "", **options: object
    ) -> AvailableRelease:
        """The release of demo image ``tag``; with ``compose``, that compose file's."""
        version = version or tag.split("-")[0]
        if compose:
            manifest = compose_manifest(version, compose)
        else:
            manifest = signed_manifest(version, demo_images[tag], **options)  # type: ignore[arg-type]
        data = manifest.to_bytes()
        return AvailableRelease.objects.create(
            version=version,
            channel="stable",
            changelog=manifest.changelog,
            manifest_text=data.decode(),
            signature=m.sign_detached(data, gnupghome=home, fingerprint=fingerprint),
            signer_fingerprint=fingerprint,
            source="vendor",
            index_sequence=1,
            verified_at=timezone.now(),
        )

    yield AgentStack(
        stack, demo_database, demo_images, release_for, pipeline_key, agent_home
    )
    runtime.forget_client()
    subprocess.run(
        ["gpgconf", "--homedir", str(agent_home), "--kill", "all"],
        check=False,
        capture_output=True,
    )
    shutil.rmtree(agent_home, ignore_errors=True)
