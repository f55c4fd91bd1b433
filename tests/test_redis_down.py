"""With the cache's Redis down, the REST API still answers (not 500 on every route).

The throttles' counters live in that cache; they are skipped (and logged)
while it cannot be reached. A real Redis URL on a port nothing listens on.
"""

from __future__ import annotations

import socket

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when this returns


@pytest.fixture
def redis_down(settings):  # type: ignore[no-untyped-def]
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{_closed_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }


@pytest.mark.parametrize(
    "route", ["/api/updates/latest", "/api/updates/checks", "/api/backups/"]
)
def test_the_api_answers_while_redis_is_down(redis_down, school_admin, route) -> None:
    token = Token.objects.create(user=school_admin)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get(route).status_code == 200


def test_the_api_docs_answer_while_redis_is_down(redis_down, school_admin) -> None:
    client = APIClient()
    client.force_authenticate(school_admin)
    assert client.get("/api/schema/").status_code == 200
