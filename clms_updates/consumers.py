"""WebSocket consumer that follows one tracked job's progress."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from clms_updates import progress

# Close codes the page understands (4xxx are application codes).
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404


class ProgressConsumer(AsyncJsonWebsocketConsumer):
    """Sends the job's snapshot on connect, then each update as it is published.

    Only a logged-in user allowed to view the job may subscribe; anyone else's
    socket is closed before joining the group.
    """

    group: str | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        kwargs = self.scope["url_route"]["kwargs"]
        kind = progress.get_kind(kwargs["kind"])
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if kind is None or not await database_sync_to_async(kind.can_view)(user):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        # Join the group before reading the row: an update published in between
        # then arrives after the snapshot instead of being lost.
        self.group = progress.group_name(kind.name, kwargs["object_id"])
        await self.channel_layer.group_add(self.group, self.channel_name)
        snapshot = await database_sync_to_async(self._snapshot)(
            kind, kwargs["object_id"]
        )
        if snapshot is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        await self.accept()
        await self.send_json(snapshot)

    @staticmethod
    def _snapshot(
        kind: progress.Kind, object_id: int
    ) -> progress.ProgressPayload | None:
        instance = kind.model()._default_manager.filter(pk=object_id).first()
        return progress.snapshot(instance) if instance is not None else None

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def progress_event(self, event: dict[str, Any]) -> None:
        """Forward a published payload to the browser as it is."""
        await self.send_json(event)
