"""The "framework floor": the least a Channels relay can do under the same server and layer.

A stock AsyncJsonWebsocketConsumer: join a group, announce yourself, relay offer / answer /
candidate to the target's channel with channel_layer.send, chat with group_send. No
authentication, no database, no validation. Confab's relay is measured against this.
"""

from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer


class FloorConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        self.group = f"floor.{self.scope['url_route']['kwargs']['slug']}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json(
            {"type": "welcome", "self": {"peer_id": self.channel_name}, "peers": []}
        )
        await self.channel_layer.group_send(
            self.group, {"type": "peer.joined", "peer_id": self.channel_name}
        )

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        kind = content.get("type")
        if kind in ("offer", "answer", "candidate"):
            await self.channel_layer.send(
                content["to"], {"type": "relay", "message": {**content, "from": self.channel_name}}
            )
        elif kind == "chat":
            await self.channel_layer.group_send(
                self.group, {"type": "relay", "message": {"type": "chat", "body": content["body"]}}
            )
        elif kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "leave":  # as Confab's: the server closes (bench/run.py, close_all)
            await self.close()

    async def relay(self, event: dict[str, Any]) -> None:
        await self.send_json(event["message"])

    async def peer_joined(self, event: dict[str, Any]) -> None:
        if event["peer_id"] != self.channel_name:
            await self.send_json({"type": "peer-joined", "peer": {"peer_id": event["peer_id"]}})
            # Introduce ourselves to the newcomer, who has no list of who is there.
            await self.channel_layer.send(
                event["peer_id"], {"type": "peer.here", "peer_id": self.channel_name}
            )

    async def peer_here(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "peer-joined", "peer": {"peer_id": event["peer_id"]}})
