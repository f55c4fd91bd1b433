"""Guessing is throttled: passwords, API tokens, mirror tokens and school keys.

Each kind is guessed past ``LOGIN_FAILURE_LIMIT`` from one address through
the real route; the address is then locked out (429, saying why and what to
do) even with the right secret, another address is not, the lock-out is
audited, and it ends after ``LOGIN_LOCKOUT_MINUTES``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from clms_updates.models import AuditEntry
from vendor_server import indexing
from vendor_server.tests.factories import make_school

pytestmark = pytest.mark.django_db

LIMIT = 10


def _password(user) -> str:  # type: ignore[no-untyped-def]
    return "pw-" + user.username  # as conftest's users are made


@pytest.fixture(autouse=True)
def _limit(settings) -> None:  # type: ignore[no-untyped-def]
    settings.AXES_FAILURE_LIMIT = LIMIT


def _login(client: Client, username: str, password: str):  # type: ignore[no-untyped-def]
    return client.post("/accounts/login/", {"username": username, "password": password})


def test_a_password_guessed_too_often_locks_that_user_out_from_that_address(
    school_admin,
) -> None:
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(LIMIT - 1):
        answer = _login(attacker, school_admin.username, "wrong")
        assert answer.status_code == 200
        assert "did not match" in answer.content.decode()

    locked = _login(attacker, school_admin.username, "wrong")
    assert locked.status_code == 429
    assert "Too many failed log-ins" in locked.content.decode()
    # Locked means locked: the right password is refused too, from there.
    right = _login(attacker, school_admin.username, _password(school_admin))
    assert right.status_code == 429
    # The admin at their own desk still gets in.
    own_desk = Client(REMOTE_ADDR="10.0.0.5")
    assert (
        _login(own_desk, school_admin.username, _password(school_admin)).status_code
        == 302
    )
    entry = AuditEntry.objects.get(action="auth.locked_out")
    assert entry.target == school_admin.username
    assert entry.address == "203.0.113.9"

    later = datetime.now(UTC) + timedelta(minutes=16)
    with time_machine.travel(later):
        answer = _login(attacker, school_admin.username, _password(school_admin))
    assert answer.status_code == 302


def test_wrong_api_tokens_lock_the_address_out(school_admin) -> None:
    token = Token.objects.create(user=school_admin)
    guesser = APIClient(REMOTE_ADDR="203.0.113.10")
    guesser.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    for _ in range(LIMIT):
        assert guesser.get("/api/updates/latest").status_code in (401, 403)
    refused = guesser.get("/api/updates/latest")
    assert refused.status_code == 429
    assert "Too many wrong api tokens" in refused.json()["detail"]
    assert int(refused["Retry-After"]) > 0
    guesser.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert guesser.get("/api/updates/latest").status_code == 429
    elsewhere = APIClient(REMOTE_ADDR="10.0.0.5")
    elsewhere.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert elsewhere.get("/api/updates/latest").status_code == 200
    assert AuditEntry.objects.filter(action="auth.locked_out").count() == 1


def test_wrong_mirror_tokens_lock_the_address_out(settings) -> None:
    settings.UPDATES_MIRROR_TOKENS = ["lan-mirror-token"]
    guesser = Client(REMOTE_ADDR="203.0.113.11")
    url = "/api/updates/mirror/vendor/api/v1/index"
    for n in range(LIMIT):
        answer = guesser.get(url, HTTP_AUTHORIZATION=f"Bearer guess-{n}")
        assert answer.status_code == 401
    refused = guesser.get(url, HTTP_AUTHORIZATION="Bearer lan-mirror-token")
    assert refused.status_code == 429
    assert refused.json()["code"] == "too_many_failures"
    assert refused["Retry-After"] == str(settings.LOGIN_LOCKOUT_MINUTES * 60)
    other = Client(REMOTE_ADDR="10.0.0.6").get(
        url, HTTP_AUTHORIZATION="Bearer lan-mirror-token"
    )
    assert other.status_code != 429


@pytest.mark.services
def test_wrong_school_keys_lock_the_address_out_at_the_vendor(
    settings, signing_key
) -> None:
    settings.VENDOR_GNUPG_HOME, settings.VENDOR_SIGNING_KEY = signing_key
    indexing.forget_local_caches()
    _, key = make_school()
    guesser = APIClient(REMOTE_ADDR="203.0.113.12")
    for n in range(LIMIT):
        guesser.credentials(HTTP_AUTHORIZATION=f"Bearer clms_guess{n}")
        assert guesser.get("/vendor/api/v1/index").status_code == 401
    guesser.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    refused = guesser.get("/vendor/api/v1/index")
    assert refused.status_code == 429
    assert "school keys" in refused.json()["detail"]
    school = APIClient(REMOTE_ADDR="198.51.100.7")
    school.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert school.get("/vendor/api/v1/index").status_code == 200
