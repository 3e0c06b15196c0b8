"""The lobby's live occupancy: a read-only websocket that forwards `lobby.room` events.

rooms/services.py builds each room's summary once and publishes it to the lobby group,
so a change costs one query however many lobby pages are open.
"""

from __future__ import annotations

import json
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer

from rooms import guests
from rooms.events import LOBBY_GROUP
from signaling import protocol
from signaling.db import db


class LobbyConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        if self.scope.get("confab.unavailable"):  # the session could not be read
            await self.close(code=protocol.CLOSE_UNAVAILABLE)  # the page tries again later
            return
        if not self.scope["user"].is_authenticated:
            await self.close(code=4401)
            return
        if await db(guests.guest_room_id)(self.scope["session"]) is not None:
            await self.close(code=4403)  # a guest sees their own room, not the lobby
            return
        await self.channel_layer.group_add(LOBBY_GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(LOBBY_GROUP, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        pass  # the lobby socket only listens

    async def lobby_room(self, event: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps({"type": "room", "room": event["room"]}))
