"""The whole product for the end-to-end suites: vendor server, agent, worker, beat.

``school`` gives a running demo CLMS stack at 1.0.0 with its sample library, a
real vendor server (pytest-django's ``live_server``, CLMS_ROLE=both) signing
with a real GnuPG key, a school registered on it, and the agent configured to
check against it and update that stack. Workers and beat run as real
processes on the test database with the same settings (``start_worker``,
``start_beat``); they are stopped before the database is flushed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django_celery_beat.models import PeriodicTask

from conftest import database_url_for_subprocess
from devtools.demo_stack import DemoStack, wait_healthy
from updates import runtime
from updates.models import AgentState, UpdateRun
from vendor_server import indexing
from vendor_server.models import Release
from vendor_server.publishing import ReleaseDraft, publish
from vendor_server.schools import create_school

ROOT = Path(__file__).resolve().parent.parent
FAST_HEALTH = {
    "path": "/health",
    "expected_status": 200,
    "body_field": "status",
    "body_value": "ok",
    "successes": 3,
    "interval_ms": 200,
    "timeout_seconds": 8,
}


@dataclass
class Process:
    """A started worker or beat process and its log."""

    popen: subprocess.Popen[bytes]
    log: Path
    name: str = ""

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def kill(self) -> None:
        """SIGKILL: no clean-up, no acknowledgement, as when a machine dies."""
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=20)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


@dataclass
class School:
    """A school running the demo stack, and the vendor server it talks to."""

    stack: DemoStack
    database_url: str
    images: dict[str, str]
    env: dict[str, str]
    tmp: Path
    processes: list[Process] = field(default_factory=list)

    def publish(
        self,
        version: str,
        tag: str,
        *,
        migration: list[str] | None = None,
        compose: str = "",
        **health: Any,
    ) -> Release:
        """Publish ``version`` on the vendor server naming the demo image ``tag``.

        With ``compose`` (a compose file from ``devtools.demo_stack.releases``)
        the release is that whole project instead of two image swaps.
        """
        reference = self.images[tag]
        if compose:
            draft = ReleaseDraft(
                version=version, changelog=f"Demo {tag}", compose_text=compose
            )
        else:
            draft = ReleaseDraft(
                version=version,
                changelog=f"Demo {tag}",
                images=[
                    {"service": "app", "reference": reference},
                    {"service": "worker", "reference": reference},
                ],
                migration={"service": "app", "command": migration or ["migrate"]},
                health_check={**FAST_HEALTH, **health},
            )
        release = publish(draft, published_by="e2e")
        indexing.forget_local_caches()
        return release

    def _start(self, arguments: list[str], log_name: str) -> Process:
        log = self.tmp / f"{log_name}.log"
        popen = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "clms_updates", *arguments],
            env=self.env,
            cwd=ROOT,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        process = Process(popen, log)
        self.processes.append(process)
        return process

    def start_worker(self) -> Process:
        """A real worker (solo pool) on the test database; returns once it answers."""
        from clms_updates.celery import app

        name = f"e2e-{uuid.uuid4().hex[:8]}@localhost"
        process = self._start(
            [
                "worker",
                "--pool",
                "solo",
                "-n",
                name,
                "-l",
                "info",
                "--without-mingle",
                "--without-gossip",
            ],
            name.split("@")[0],
        )
        process.name = name
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.popen.poll() is not None:
                pytest.fail("the worker exited at start:\n" + process.tail())
            if app.control.ping(destination=[name], timeout=0.5):
                return process
        pytest.fail("the worker did not answer within 60 s:\n" + process.tail())

    def start_beat(self) -> Process:
        """celery beat with the database scheduler, looking every second."""
        # Only run triggers: the other periodic tasks would call out or prune.
        PeriodicTask.objects.exclude(name__startswith="updates: run").update(
            enabled=False
        )
        return self._start(
            [
                "beat",
                "-l",
                "info",
                "--max-interval",
                "1",
                "--pidfile=",
                "-s",
                str(self.tmp / "beat-schedule"),
                "--scheduler",
                "django_celery_beat.schedulers:DatabaseScheduler",
            ],
            "beat",
        )

    def logs(self) -> str:
        return "\n".join(f"--- {p.log.name}\n{p.tail()}" for p in self.processes)

    def wait_for_run(
        self, run_id: int, *, timeout: float = 120, until: Callable[[UpdateRun], bool]
    ) -> UpdateRun:
        """Poll the run every 20 ms until ``until(run)``; fail with the logs if not."""
        deadline = time.monotonic() + timeout
        run = UpdateRun.objects.get(pk=run_id)
        while time.monotonic() < deadline:
            run.refresh_from_db()
            if until(run):
                return run
            time.sleep(0.02)
        pytest.fail(
            f"run {run_id} is {run.state} in {run.current_step}:\n{run.log}\n"
            + self.logs()
        )

    def wait_until_over(self, run_id: int, timeout: float = 120) -> UpdateRun:
        return self.wait_for_run(run_id, timeout=timeout, until=lambda r: r.is_terminal)

    def health(self) -> dict[str, object]:
        return wait_healthy(self.stack.health_url, timeout=20)


@pytest.fixture(name="school")
def school_fixture(  # type: ignore[no-untyped-def]
    live_server,
    start_demo_stack,
    demo_images,
    demo_database,
    signing_key,
    settings,
    tmp_path: Path,
) -> Iterator[School]:
    """The demo stack at 1.0.0, the real vendor server, and the agent between them."""
    stack = start_demo_stack("1.0.0")
    wait_healthy(stack.health_url, timeout=30, version="1.0.0")
    vendor_home, fingerprint = signing_key
    settings.VENDOR_GNUPG_HOME = vendor_home
    settings.VENDOR_SIGNING_KEY = fingerprint
    settings.VENDOR_BUNDLE_DIR = tmp_path / "bundles"
    settings.VENDOR_REGISTRY_CHECK = True
    indexing.forget_local_caches()
    _, api_key = create_school("E2E Primary", channel="stable")
    agent_home = Path(tempfile.mkdtemp(prefix="gpg-", dir="/tmp"))
    agent_home.chmod(0o700)
    agent = {
        "CLMS_COMPOSE_PROJECT": stack.project,
        "CLMS_COMPOSE_ENV_FILE": str(stack.env_file),
        "CLMS_PROJECT_DIR": str(stack.env_file.parent),
        "CLMS_COMPOSE_ALLOW": "network_mode:host",
        "CLMS_STATE_DIR": str(stack.state_dir),
        "CLMS_APP_URL": stack.url,
        "CLMS_DATABASE_URL": demo_database,
        "BACKUP_DIR": str(tmp_path / "backups"),
        "UPDATES_MIN_FREE_DISK_MB": "10",
        "UPDATES_STOP_TIMEOUT_SECONDS": "5",
        "UPDATES_RUN_LEASE_SECONDS": "4",
        "UPDATES_VENDOR_URL": live_server.url,
        "UPDATES_VENDOR_API_KEY": api_key,
        "UPDATES_VENDOR_KEY_FINGERPRINTS": fingerprint,
        "UPDATES_VENDOR_PUBLIC_KEY_FILE": "",
        "UPDATES_GNUPG_HOME": str(agent_home),
        "UPDATES_SOURCES": "vendor",
        "UPDATES_CHANNEL": "stable",
        "ADMIN_EMAILS": "it@school.example",
        "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
    }
    for name, value in agent.items():
        setattr(settings, name, value)
    settings.UPDATES_VENDOR_KEY_FINGERPRINTS = [fingerprint]
    settings.ADMIN_EMAILS = ["it@school.example"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    for name in ("CLMS_STATE_DIR", "BACKUP_DIR", "UPDATES_GNUPG_HOME"):
        setattr(settings, name, Path(agent[name]))
    for name in ("UPDATES_MIN_FREE_DISK_MB", "UPDATES_STOP_TIMEOUT_SECONDS"):
        setattr(settings, name, int(agent[name]))
    settings.UPDATES_RUN_LEASE_SECONDS = 4
    settings.UPDATES_SOURCES = ["vendor"]
    settings.CLMS_COMPOSE_ALLOW = ["network_mode:host"]
    AgentState.objects.update_or_create(pk=1, defaults={"installed_version": "1.0.0"})
    env = {
        **os.environ,
        **agent,
        "DATABASE_URL": database_url_for_subprocess(),
        "CLMS_INSTALLED_VERSION": "1.0.0",
    }
    the_school = School(stack, demo_database, demo_images, env, tmp_path)
    yield the_school
    for process in the_school.processes:
        process.stop()
    runtime.forget_client()
    indexing.forget_local_caches()
    subprocess.run(
        ["gpgconf", "--homedir", str(agent_home), "--kill", "all"],
        check=False,
        capture_output=True,
    )
    shutil.rmtree(agent_home, ignore_errors=True)
