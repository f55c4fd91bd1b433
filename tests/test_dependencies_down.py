"""Each dependency taken away in turn, every route walked: answers, never a 500.

The dependencies: the cache's Redis (throttle counters, check caching), the
Celery broker (every queued job), and the Docker engine (drift, disk usage,
the stack's state). Each is pointed at a loopback port (or socket) nothing
listens on. A route may answer what it can or a 503 that names the
dependency with ``Retry-After``; it may not fail with a server error.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import redis
from celery import current_app
from django.core.cache import caches
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token

from backups.tests.factories import make_backup
from clms_updates import queueing
from updates import runtime
from updates.models import AgentState
from updates.tests.factories import make_release, make_run

pytestmark = pytest.mark.django_db

PAGES = [
    "/",
    "/healthz",
    "/updates/",
    "/updates/history/",
    "/updates/rollback/",
    "/updates/audit/",
    "/updates/notifications/",
    "/updates/enforcement/",
    "/updates/offline/",
    "/backups/",
    "/api/updates/latest",
    "/api/updates/checks",
    "/api/updates/history",
    "/api/backups/",
    "/api/schema/",
]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def cache_down(settings) -> None:  # type: ignore[no-untyped-def]
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{_closed_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    with pytest.raises(redis.ConnectionError):  # the fault is real
        caches.create_connection("default").get("anything")


@pytest.fixture
def broker_down() -> Iterator[None]:
    """The app sends to a dead broker; its own pools are put back untouched after."""
    app, conf = current_app, current_app.conf
    saved = conf.broker_url, conf.broker_connection_timeout
    pools = app._pool, app.amqp._producer_pool
    conf.broker_url = f"redis://127.0.0.1:{_closed_port()}/0"
    conf.broker_connection_timeout = 0.5
    app._pool = app.amqp._producer_pool = None  # new ones, for the dead broker
    assert not queueing.send_now("core.ping", "x")  # the fault is real
    yield
    if app._pool is not None:
        app._pool.force_close_all()
    conf.broker_url, conf.broker_connection_timeout = saved
    app._pool, app.amqp._producer_pool = pools


@pytest.fixture
def docker_down(settings, tmp_path) -> Iterator[None]:  # type: ignore[no-untyped-def]
    settings.DOCKER_HOST = f"unix://{tmp_path}/nobody-listens.sock"
    runtime.forget_client()
    with pytest.raises(runtime.DockerUnavailable):  # the fault is real
        runtime.docker_client()
    yield
    runtime.forget_client()


def _a_school_with_history() -> int:
    AgentState.objects.update_or_create(pk=1, defaults={"installed_version": "1.0.0"})
    make_release("1.0.1")
    make_backup()
    return make_run(to_version="1.0.1").pk


@pytest.mark.parametrize("dependency", ["cache_down", "broker_down", "docker_down"])
def test_every_route_answers_with_a_dependency_down(
    dependency: str, request, school_admin
) -> None:
    run_id = _a_school_with_history()
    request.getfixturevalue(dependency)
    token = Token.objects.create(user=school_admin)
    client = Client()
    client.force_login(school_admin)
    api = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
    routes = [*PAGES, f"/updates/runs/{run_id}/", f"/api/updates/status/{run_id}"]
    for path in routes:
        answer = (api if path.startswith("/api/") else client).get(path)
        where = f"{path} with {dependency}"
        assert answer.status_code < 500 or (
            answer.status_code == 503 and answer.has_header("Retry-After")
        ), f"{where}: {answer.status_code} {answer.content[:300]!r}"
    # Changes that queue work: refused or done, never a 500.
    for path in (reverse("updates:check"),):
        answer = client.post(path, follow=True)
        assert answer.status_code < 500, f"POST {path} with {dependency}"


def test_the_manager_says_the_image_figures_are_unknown_without_the_engine(
    docker_down, client, school_admin
) -> None:
    from django.core.cache import cache

    from updates import disk

    cache.delete(disk.CACHE_KEY)
    AgentState.objects.update_or_create(pk=1, defaults={"installed_version": "1.0.0"})
    make_backup(size=5_000_000)
    client.force_login(school_admin)
    page = client.get("/updates/").content.decode()
    assert "unknown: the Docker engine does not answer" in page
    assert "4.8\xa0MB in 1 backup" in page
