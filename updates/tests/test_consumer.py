"""The progress socket of an update run: who may follow it and what it carries."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.test import Client

from clms_updates import progress
from clms_updates.asgi import application
from clms_updates.consumers import (
    CLOSE_FORBIDDEN,
    CLOSE_NOT_FOUND,
    CLOSE_UNAUTHENTICATED,
)
from clms_updates.routing import websocket_urlpatterns
from updates.models import UpdateRun
from updates.tests.factories import make_release, make_run

pytestmark = pytest.mark.django_db(transaction=True)

PAYLOAD_KEYS = set(progress.ProgressPayload.__annotations__)


def _router_with_user(user):  # type: ignore[no-untyped-def]
    """The real WebSocket routes, with ``user`` as the authenticated scope user."""
    router = URLRouter(websocket_urlpatterns)

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        return await router({**scope, "user": user}, receive, send)

    return app


def _connect(user, run_id: int):  # type: ignore[no-untyped-def]
    async def scenario():  # type: ignore[no-untyped-def]
        communicator = WebsocketCommunicator(
            _router_with_user(user), f"/ws/progress/update_run/{run_id}/"
        )
        connected, code = await communicator.connect(timeout=10)
        if connected:
            await communicator.disconnect()
        return connected, code

    return asyncio.run(scenario())


def test_an_anonymous_socket_is_closed() -> None:
    run = make_run()
    connected, code = _connect(AnonymousUser(), run.pk)
    assert connected is False
    assert code == CLOSE_UNAUTHENTICATED


def test_a_logged_in_user_in_no_school_group_is_closed(outsider) -> None:
    run = make_run()
    connected, code = _connect(outsider, run.pk)
    assert connected is False
    assert code == CLOSE_FORBIDDEN


def test_a_socket_for_a_run_that_does_not_exist_is_closed(school_viewer) -> None:
    connected, code = _connect(school_viewer, 99999)
    assert connected is False
    assert code == CLOSE_NOT_FOUND


def test_a_viewer_gets_the_snapshot_then_each_published_update(school_viewer) -> None:
    run = make_run(state=UpdateRun.State.RUNNING)
    progress.publish(run, "Preflight passed", step="preflight", percent=5)

    async def scenario():  # type: ignore[no-untyped-def]
        communicator = WebsocketCommunicator(
            _router_with_user(school_viewer), f"/ws/progress/update_run/{run.pk}/"
        )
        connected, _ = await communicator.connect(timeout=10)
        assert connected
        snapshot = await communicator.receive_json_from(timeout=5)
        await database_sync_to_async(progress.publish)(
            run, "Pulling app image", step="fetch", percent=25, eta_seconds=40
        )
        update = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return snapshot, update

    snapshot, update = asyncio.run(scenario())
    assert snapshot["event"] == "snapshot"
    assert snapshot["step"] == "preflight"
    assert "Preflight passed" in snapshot["log"]
    assert update["event"] == "update"
    assert (update["step"], update["percent"], update["eta_seconds"]) == (
        "fetch",
        25,
        40,
    )
    assert update["log"].endswith("Pulling app image\n")


def test_a_session_cookie_from_logging_in_opens_the_socket_through_the_real_stack(
    school_viewer,
) -> None:
    run = make_run()
    client = Client()
    client.force_login(school_viewer)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"

    async def scenario():  # type: ignore[no-untyped-def]
        communicator = WebsocketCommunicator(
            application,
            f"/ws/progress/update_run/{run.pk}/",
            headers=[(b"cookie", cookie.encode()), (b"origin", b"http://localhost")],
        )
        connected, _ = await communicator.connect(timeout=10)
        message = await communicator.receive_json_from(timeout=5) if connected else None
        await communicator.disconnect()
        return connected, message

    connected, message = asyncio.run(scenario())
    assert connected is True
    assert message["id"] == run.pk and message["state"] == "scheduled"


def test_a_socket_from_another_site_is_refused(school_viewer) -> None:
    run = make_run()
    client = Client()
    client.force_login(school_viewer)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"

    async def scenario():  # type: ignore[no-untyped-def]
        communicator = WebsocketCommunicator(
            application,
            f"/ws/progress/update_run/{run.pk}/",
            headers=[
                (b"cookie", cookie.encode()),
                (b"origin", b"https://evil.example"),
            ],
        )
        connected, _ = await communicator.connect(timeout=10)
        return connected

    assert asyncio.run(scenario()) is False


def test_messages_carry_no_secrets(school_admin, settings) -> None:
    settings.UPDATES_VENDOR_API_KEY = "vendor-api-key-that-must-not-leak"
    release = make_release("1.1.0")
    run = make_run(
        release,
        state=UpdateRun.State.RUNNING,
        error_message="internal detail",
    )

    async def scenario():  # type: ignore[no-untyped-def]
        communicator = WebsocketCommunicator(
            _router_with_user(school_admin), f"/ws/progress/update_run/{run.pk}/"
        )
        await communicator.connect(timeout=10)
        frames = [await communicator.receive_output(timeout=5)]
        await database_sync_to_async(progress.publish)(run, "Applying", step="apply")
        frames.append(await communicator.receive_output(timeout=5))
        await communicator.disconnect()
        return [json.loads(f["text"]) for f in frames]

    for frame in asyncio.run(scenario()):
        assert set(frame) == PAYLOAD_KEYS
        text = json.dumps(frame)
        for secret in (
            settings.SECRET_KEY,
            settings.UPDATES_VENDOR_API_KEY,
            release.signature,
            release.manifest_text,
        ):
            assert secret not in text
