"""Fixtures shared by every suite.

``make test`` starts real services and exports where they listen (see
``clms_updates/localservices.py``); ``CLMS_REQUIRE_SERVICES`` then lists them,
and a test that needs one that is missing fails instead of skipping. Run plain
``pytest -m "not services"`` for the fast unit suite without any service.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User

from clms_updates.constants import SCHOOL_ADMIN_GROUP, SCHOOL_VIEWER_GROUP

REQUIRED_SERVICES = set(
    filter(None, os.environ.get("CLMS_REQUIRE_SERVICES", "").split(","))
)


def require_service(name: str, env_var: str) -> str:
    """The service's address, or skip (fail under ``make test``) when it is absent."""
    value = os.environ.get(env_var, "")
    if value:
        return value
    message = (
        f"{name} is not running ({env_var} unset); run the suite with `make test`."
    )
    if name in REQUIRED_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session", autouse=True)
def _no_foreign_broker() -> None:
    """Without the Redis ``make test`` started, Celery talks to nothing outside.

    The default ``REDIS_URL`` may be a running demo's Redis (``make run``); a
    test must never queue tasks into it, nor flush it.
    """
    if "redis" in REQUIRED_SERVICES:
        return
    from clms_updates.celery import app

    app.conf.update(broker_url="memory://", result_backend="cache+memory://")


@pytest.fixture(autouse=True)
def _test_settings(settings, request):  # type: ignore[no-untyped-def]
    """Fast hashing; a clean cache per test; in-memory layers without our Redis.

    Only the Redis that ``make test`` started (``CLMS_REQUIRE_SERVICES``) is
    used and cleared between tests; any other Redis that happens to answer at
    the default address belongs to someone else and is left alone.
    """
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    if "redis" in REQUIRED_SERVICES:
        from django.core.cache import cache

        cache.clear()
    else:
        settings.CACHES = {
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
        }
        settings.CHANNEL_LAYERS = {
            "default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}
        }
    yield


@pytest.fixture
def redis_url() -> str:
    return require_service("redis", "REDIS_URL")


@pytest.fixture
def postgres_url() -> str:
    """Superuser URL of the test PostgreSQL server (create scratch databases on it)."""
    return require_service("postgres", "CLMS_TEST_PG_URL")


@pytest.fixture
def docker_host() -> str:
    return require_service("dockerd", "DOCKER_HOST")


@pytest.fixture
def registry_address() -> str:
    """``host:port`` of the plain-HTTP test registry."""
    return require_service("registry", "CLMS_TEST_REGISTRY")


@pytest.fixture
def gnupg_home(tmp_path: Path) -> Path:
    """A throwaway GnuPG home (short path: gpg-agent sockets have a length limit)."""
    import tempfile

    home = Path(tempfile.mkdtemp(prefix="gpg-", dir="/tmp"))
    home.chmod(0o700)
    yield home
    subprocess.run(
        ["gpgconf", "--homedir", str(home), "--kill", "all"],
        check=False,
        capture_output=True,
    )
    import shutil

    shutil.rmtree(home, ignore_errors=True)


def _user(username: str, group: str | None, **extra: object) -> User:
    user = User.objects.create_user(
        username=username, password="pw-" + username, **extra
    )
    if group:
        user.groups.add(Group.objects.get_or_create(name=group)[0])
    return user


@pytest.fixture
def school_admin(db) -> User:  # type: ignore[no-untyped-def]
    return _user("school-admin-user", SCHOOL_ADMIN_GROUP)


@pytest.fixture
def school_viewer(db) -> User:  # type: ignore[no-untyped-def]
    return _user("school-viewer-user", SCHOOL_VIEWER_GROUP)


@pytest.fixture
def vendor_staff(db) -> User:  # type: ignore[no-untyped-def]
    return _user("vendor-staff-user", None, is_staff=True, is_superuser=True)


@pytest.fixture
def outsider(db) -> User:  # type: ignore[no-untyped-def]
    """Logged in, but in no group."""
    return _user("outsider-user", None)


@pytest.fixture
def admin_api(school_admin):  # type: ignore[no-untyped-def]
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(school_admin)
    return client


@pytest.fixture
def viewer_api(school_viewer):  # type: ignore[no-untyped-def]
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(school_viewer)
    return client


@pytest.fixture
def artifacts_dir() -> Iterator[Path]:
    """Where tests save screenshots and other artifacts (printed by `make test`)."""
    root = Path(
        os.environ.get("CLMS_ARTIFACTS_DIR", Path(__file__).parent / "test-artifacts")
    )
    root.mkdir(parents=True, exist_ok=True)
    yield root


def database_url_for_subprocess() -> str:
    """A DATABASE_URL that points a child process (a worker) at the test database."""
    from django.db import connection

    s = connection.settings_dict
    if connection.vendor == "postgresql":
        password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
        return f"postgresql://{s['USER']}{password}@{s['HOST']}:{s['PORT']}/{s['NAME']}"
    if (
        connection.vendor == "sqlite"
        and s["NAME"]
        and ":memory:" not in str(s["NAME"])
        and "mode=memory" not in str(s["NAME"])
    ):
        return f"sqlite:///{s['NAME']}"
    pytest.skip("a worker process needs the PostgreSQL test database; run `make test`")


@pytest.fixture
def celery_worker_process(redis_url, transactional_db, tmp_path):  # type: ignore[no-untyped-def]
    """A real Celery worker process on the test database; yields (process, name, log)."""
    import sys
    import time
    import uuid

    from clms_updates.celery import app

    name = f"test-{uuid.uuid4().hex[:8]}@localhost"
    log = tmp_path / "worker.log"
    env = {**os.environ, "DATABASE_URL": database_url_for_subprocess()}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "clms_updates",
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
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).parent,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                "the Celery worker exited at start:\n" + log.read_text()[-3000:]
            )
        replies = app.control.ping(destination=[name], timeout=0.5)
        if replies:
            break
    else:
        process.kill()
        pytest.fail(
            "the Celery worker did not answer within 60s:\n" + log.read_text()[-3000:]
        )
    yield process, name, log
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def generate_signing_key(home: Path, name: str = "CLMS Test Vendor") -> str:
    """Make a real ed25519 signing key (no passphrase) in ``home``; return its fingerprint."""
    subprocess.run(
        [
            "gpg",
            "--homedir",
            str(home),
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--quick-gen-key",
            f"{name} <vendor@example.invalid>",
            "ed25519",
            "sign",
            "never",
        ],
        check=True,
        capture_output=True,
    )
    listing = subprocess.run(
        [
            "gpg",
            "--homedir",
            str(home),
            "--batch",
            "--with-colons",
            "--list-secret-keys",
            name,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return next(
        line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")
    )


@pytest.fixture
def signing_key(gnupg_home: Path) -> tuple[Path, str]:
    """A vendor signing key in a throwaway GnuPG home: (home, fingerprint)."""
    return gnupg_home, generate_signing_key(gnupg_home)


@pytest.fixture
def moto_s3() -> Iterator[object]:
    """S3-compatible storage on a loopback port: moto's server mode (real HTTP,
    real boto3); it stands in for a cloud bucket. Yields a boto3 client on it
    (``.meta.endpoint_url``); the keys are ``test-key`` / ``test-secret``."""
    import socket

    import boto3
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id="test-key",
        aws_secret_access_key="test-secret",  # noqa: S106 - moto's throwaway key
        region_name="us-east-1",
    )
    server.stop()
