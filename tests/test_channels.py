"""Progress messages travel through the real Redis channel layer; sockets are guarded."""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from clms_updates import progress
from clms_updates.channel_layer import ChannelLayer
from clms_updates.consumers import (
    CLOSE_FORBIDDEN,
    CLOSE_UNAUTHENTICATED,
    ProgressConsumer,
)


@pytest.mark.services
def test_a_progress_payload_round_trips_through_redis(settings, redis_url) -> None:
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "clms_updates.channel_layer.ChannelLayer",
            "CONFIG": {"hosts": [redis_url]},
        }
    }
    payload: progress.ProgressPayload = {
        "type": "progress.event",
        "event": "update",
        "kind": "update_run",
        "id": 7,
        "state": "running",
        "step": "apply",
        "percent": 55,
        "message": "Recreating web",
        "eta_seconds": 12,
        "log": "[10:00:00] Recreating web\n",
        "at": "2026-01-01T00:00:00+00:00",
    }

    async def scenario() -> dict:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(progress.group_name("update_run", 7), channel)
        await asyncio.get_running_loop().run_in_executor(None, progress.send, payload)
        return await asyncio.wait_for(layer.receive(channel), timeout=5)

    received = asyncio.run(scenario())
    assert received == payload


def _communicator(user, path: str) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(ProgressConsumer.as_asgi(), path)
    kind, object_id = path.strip("/").split("/")[-2:]
    communicator.scope["user"] = user
    communicator.scope["url_route"] = {
        "kwargs": {"kind": kind, "object_id": int(object_id)}
    }
    return communicator


@pytest.mark.django_db(transaction=True)
def test_an_anonymous_socket_is_closed() -> None:
    async def scenario():
        communicator = _communicator(AnonymousUser(), "/ws/progress/update_run/1/")
        connected, code = await communicator.connect(timeout=10)
        return connected, code

    connected, code = asyncio.run(scenario())
    assert connected is False
    assert code == CLOSE_UNAUTHENTICATED


@pytest.mark.django_db(transaction=True)
def test_a_socket_for_an_unknown_kind_is_closed(school_admin) -> None:
    async def scenario():
        communicator = _communicator(school_admin, "/ws/progress/no_such_kind/1/")
        return await communicator.connect(timeout=10)

    connected, code = asyncio.run(scenario())
    assert connected is False
    assert code == CLOSE_FORBIDDEN


@pytest.mark.django_db
def test_a_followers_push_waits_for_the_transaction_to_commit(
    settings, django_capture_on_commit_callbacks
) -> None:
    """Nobody is told of a state that a rollback of the transaction then undoes."""
    from updates.tests.factories import make_run

    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}
    }
    run = make_run()
    layer = get_channel_layer()
    channel = asyncio.run(layer.new_channel())
    asyncio.run(layer.group_add(progress.group_name("update_run", run.pk), channel))

    def pending() -> list[dict]:
        async def drain() -> list[dict]:
            got = []
            while True:
                try:
                    got.append(await asyncio.wait_for(layer.receive(channel), 0.05))
                except TimeoutError:
                    return got

        return asyncio.run(drain())

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        progress.publish(run, "Backing up")
    run.refresh_from_db()
    assert run.message == "Backing up"  # the row is written at once
    assert pending() == []  # the push is not
    for callback in callbacks:
        callback()
    assert [m["message"] for m in pending()] == ["Backing up"]


@pytest.mark.services
def test_a_receive_on_a_quiet_channel_outlasts_the_socket_timeout(
    settings, redis_url
) -> None:
    """Nothing is published for longer than the Redis client's read timeout:
    the receive keeps waiting instead of failing with a socket TimeoutError
    (which closed the page's WebSocket every few seconds)."""
    layer = ChannelLayer(hosts=[redis_url])
    timeout = layer.hosts[0]["socket_timeout"]
    assert layer.brpop_timeout < timeout

    async def quiet_then_one() -> dict:
        channel = await layer.new_channel()

        async def later() -> None:
            await asyncio.sleep(timeout * 1.5)
            await layer.send(channel, {"type": "progress.event", "n": 1})

        sender = asyncio.create_task(later())
        try:
            return await asyncio.wait_for(layer.receive(channel), timeout * 3)
        finally:
            await sender
            await layer.flush()

    assert asyncio.run(quiet_then_one())["n"] == 1
