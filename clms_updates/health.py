"""Component checks behind ``/healthz``: database, Redis, Celery workers, Docker engine,
the compose CLI.

Each check returns up/down with a reason a person can act on. A check never
raises and never waits longer than ``HEALTHZ_TIMEOUT`` seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import connection

from clms_updates import composecli


@dataclass(frozen=True)
class ComponentHealth:
    """The state of one component."""

    name: str
    up: bool
    detail: str
    required: bool

    def as_dict(self) -> dict[str, object]:
        return {"up": self.up, "detail": self.detail, "required": self.required}


def check_database() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as e:
        return False, f"cannot query the database ({connection.vendor}): {e}"
    return True, f"{connection.vendor} answers"


def check_redis() -> tuple[bool, str]:
    timeout = settings.HEALTHZ_TIMEOUT
    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        client.ping()
    except Exception as e:
        return False, f"cannot reach Redis at REDIS_URL: {e}"
    return True, "Redis answers PING"


def check_celery() -> tuple[bool, str]:
    from clms_updates.celery import app

    try:
        replies = app.control.ping(timeout=settings.HEALTHZ_TIMEOUT)
    except Exception as e:
        return False, f"cannot ask the workers through the broker: {e}"
    if not replies:
        return (
            False,
            "no Celery worker answered; start one with `celery -A clms_updates worker`",
        )
    names = sorted(name for reply in replies for name in reply)
    return True, f"{len(names)} worker(s): {', '.join(names)}"


def check_celery_round_trip() -> tuple[bool, str]:
    """Send a task and wait for its result: proves broker, worker and results work."""
    import secrets

    from clms_updates.tasks import ping

    nonce = secrets.token_hex(8)
    try:
        result = ping.delay(nonce).get(timeout=settings.HEALTHZ_TIMEOUT * 3)
    except Exception as e:
        return False, f"a test task did not come back from a worker: {e}"
    if result.get("nonce") != nonce:
        return False, "a worker answered with the wrong result"
    return True, f"a task made the round trip through {result.get('worker')}"


def check_docker() -> tuple[bool, str]:
    import docker

    try:
        client = docker.DockerClient(
            base_url=settings.DOCKER_HOST, timeout=settings.HEALTHZ_TIMEOUT
        )
        try:
            version = client.version()
        finally:
            client.close()
    except Exception as e:
        return (
            False,
            f"cannot reach the Docker engine at DOCKER_HOST={settings.DOCKER_HOST}: {e}",
        )
    return (
        True,
        f"Docker engine {version.get('Version', '?')} (API {version.get('ApiVersion', '?')})",
    )


def check_compose() -> tuple[bool, str]:
    """The compose CLI the agent applies releases with (chosen once per process)."""
    if not settings.SCHOOL_ROLE_ENABLED:
        return True, "not used by the vendor server"
    try:
        cli = composecli.find_cli()
    except composecli.ComposeUnavailable as e:
        return False, str(e)
    return True, cli.label


CHECKS: dict[str, Callable[[], tuple[bool, str]]] = {
    "database": check_database,
    "redis": check_redis,
    "celery": check_celery,
    "docker": check_docker,
    "compose": check_compose,
}


def check_all(
    required: list[str] | None = None, *, deep: bool = False
) -> list[ComponentHealth]:
    """Run every check; ``required`` (default ``HEALTHZ_REQUIRED``) decides the 503.

    ``deep`` replaces the worker ping with a real task round trip.
    """
    required = settings.HEALTHZ_REQUIRED if required is None else required
    checks = dict(CHECKS)
    if deep:
        checks["celery"] = check_celery_round_trip
    results = []
    for name, check in checks.items():
        up, detail = check()
        results.append(ComponentHealth(name, up, detail, name in required))
    return results
