"""Room events published to the channel layer.

This is how rooms/ reaches live calls without knowing about websockets: the signaling
consumers listen on these groups and turn each event into protocol messages
(docs/protocol.md). Publishing works from any worker because it goes through the
shared channel layer, never through in-process state.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

LOBBY_GROUP = "lobby"


def room_group(room_id: int) -> str:
    return f"room.{room_id}"


async def apublish(group: str, event: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is not None:
        await layer.group_send(group, event)


def publish(group: str, event: dict[str, Any]) -> None:
    """The same from synchronous code: views and admin actions."""
    async_to_sync(apublish)(group, event)
