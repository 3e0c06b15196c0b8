"""The call's websocket: admission, relay, chat and presence (docs/protocol.md).

Shape of a connection's life:
- connect: join the room group, ask rooms.services to admit us (one transaction), send
  `welcome` or close with the refusal's code;
- receive: every client frame goes through protocol.parse, then the one dispatch table;
- channel-layer events (`peer.joined`, `signal.relay`, `chat.message`, ...) become
  protocol messages for this client;
- disconnect: give the seat back and tell the room.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.exceptions import ChannelFull
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from rooms import moderation, services
from rooms.events import room_group
from rooms.models import Room
from rooms.services import JoinRefused
from signaling import presence, protocol
from signaling.ice import ice_servers
from signaling.protocol import Message, ProtocolError
from signaling.ratelimit import ConnectionLimits

logger = logging.getLogger(__name__)

# Join refusals -> (close code, close reason). The page words each code itself.
REFUSALS = {
    JoinRefused.NOT_SIGNED_IN: (protocol.CLOSE_NOT_SIGNED_IN, "not signed in"),
    JoinRefused.NOT_FOUND: (protocol.CLOSE_NOT_FOUND, "no such room"),
    JoinRefused.BANNED: (protocol.CLOSE_FORBIDDEN, "you are banned from this room"),
    JoinRefused.NO_ACCESS: (protocol.CLOSE_FORBIDDEN, "private room: password required"),
    JoinRefused.LOCKED: (protocol.CLOSE_FORBIDDEN, "room is locked"),
    JoinRefused.FULL: (protocol.CLOSE_FULL, "room is full"),
    JoinRefused.TOO_MANY_CONNECTIONS: (protocol.CLOSE_RATE_LIMITED, "too many open connections"),
    JoinRefused.TOO_MANY_JOINS: (protocol.CLOSE_RATE_LIMITED, "too many joins; wait a minute"),
}


# Fresh TURN credentials are pushed when this fraction of their lifetime has passed.
ICE_REFRESH_AT = 0.75


class RoomConsumer(AsyncWebsocketConsumer):
    peer_id: str | None = None
    refresher: asyncio.Task[None] | None = None
    name: str = ""
    room_id: int = 0
    group: str = ""

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels 4.2+ closes old database connections (a thread hop) before every
        # message. Most of ours are relays that never touch the database, and every
        # database access here goes through database_sync_to_async, which does that
        # clean-up itself, so we skip it (measured in docs/performance.md).
        handler = getattr(self, message["type"].replace(".", "_"), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    # --- Connection life ---------------------------------------------------------------

    async def connect(self) -> None:
        self.peers: dict[str, str] = {}  # peer_id -> channel name, this room only
        self.limits = ConnectionLimits()
        slug = self.scope["url_route"]["kwargs"]["slug"]
        # Accept first: a refusal must reach the browser as a close code it can explain.
        await self.accept()
        # Listen to the room before taking the seat, so that nobody admitted after us can
        # announce themselves before we hear it. Their events wait until connect returns;
        # peer_joined then skips those already listed in our welcome.
        room_id = await database_sync_to_async(services.open_room_id)(slug)
        if room_id is None:
            await self.close_with(*REFUSALS[JoinRefused.NOT_FOUND])
            return
        self.room_id, self.group = room_id, room_group(room_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        try:
            joined = await self.resume_or_join(slug)
        except JoinRefused as refused:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            code, reason = REFUSALS[refused.reason]
            if refused.reason == JoinRefused.FULL and refused.room is not None:
                reason = f"room is full ({refused.occupancy} of {refused.room.capacity})"
            await self.close_with(code, reason)
            return
        room, me = joined.room, joined.presence
        self.peer_id, self.name = me.peer_id, me.name
        self.peers = {peer.peer_id: peer.channel_name for peer in joined.peers}
        presence.register(me.peer_id)
        if settings.TURN_SECRET and settings.TURN_URLS:
            self.refresher = asyncio.get_running_loop().create_task(self.refresh_ice_servers())
        await self.send_message(
            {
                "type": "welcome",
                "self": {"peer_id": me.peer_id, "name": me.name, "is_moderator": me.is_moderator},
                "peers": [peer.as_peer() for peer in joined.peers],
                "room": self.room_info(room),
                "ice_servers": ice_servers(me.peer_id),
                "ice_transport_policy": settings.ICE_TRANSPORT_POLICY,
                "history": [{**m.as_event(), "from": None} for m in joined.history],
                "heartbeat": settings.HEARTBEAT_INTERVAL,
                "worker": settings.WORKER_ID,
                "resume_token": joined.resume_token,
                "resumed": joined.resumed,
            }
        )
        if joined.resumed:
            # Same seat, same peer id: the others only need the new route to us.
            event = {"type": "peer.resumed", "peer_id": me.peer_id, "channel": self.channel_name}
        else:
            event = {"type": "peer.joined", "peer": me.as_peer(), "channel": self.channel_name}
        await self.channel_layer.group_send(self.group, event)

    async def resume_or_join(self, slug: str) -> services.Joined:
        """A page that lost its socket reconnects with `?resume=<token>` and gets its held
        seat back; otherwise (or if the seat is gone) this is an ordinary join."""
        token = parse_qs(self.scope.get("query_string", b"").decode()).get("resume", [""])[0]
        if token:
            resumed = await database_sync_to_async(services.resume_seat)(
                slug=slug, user=self.scope["user"], token=token, channel_name=self.channel_name
            )
            if resumed is not None:
                return resumed
        return await database_sync_to_async(services.join_room)(
            slug=slug,
            user=self.scope["user"],
            session=self.scope["session"],
            channel_name=self.channel_name,
        )

    @staticmethod
    def room_info(room: Room) -> dict[str, Any]:
        return {
            "slug": room.slug,
            "name": room.name,
            "kind": room.kind,
            "capacity": room.capacity,
            "locked": room.is_locked,
        }

    async def refresh_ice_servers(self) -> None:
        """TURN credentials expire after TURN_CREDENTIAL_TTL: send fresh ones well before,
        so ICE restarts and new peer connections in a long meeting still authenticate."""
        ttl = settings.TURN_CREDENTIAL_TTL
        while self.peer_id is not None:
            await asyncio.sleep(ttl * ICE_REFRESH_AT)
            if self.peer_id is None:
                return
            await self.send_message(
                {"type": "ice-servers", "ice_servers": ice_servers(self.peer_id)}
            )

    async def disconnect(self, code: int) -> None:
        if self.refresher is not None:
            self.refresher.cancel()
        if self.peer_id is None:
            return  # left, removed or refused: nothing is held
        # The socket dropped without `leave` (network change, laptop lid, server restart):
        # hold the seat for RESUME_GRACE seconds so the page can resume the call. The peer
        # connections themselves do not depend on this socket and usually survive.
        peer_id, self.peer_id = self.peer_id, None
        presence.unregister(peer_id)
        await self.channel_layer.group_discard(self.group, self.channel_name)
        if await database_sync_to_async(services.detach_seat)(peer_id, self.channel_name):
            presence.expire_detached_later()

    async def give_up_seat(self, reason: str) -> None:
        """Leave the room at once (leave, or closed for abuse), telling the others."""
        if self.peer_id is None:
            return
        peer_id, self.peer_id = self.peer_id, None
        presence.unregister(peer_id)
        await self.channel_layer.group_discard(self.group, self.channel_name)
        removed = await database_sync_to_async(services.leave_room)(peer_id, self.channel_name)
        # If the row was already gone, whoever removed it (a moderator, the sweeper)
        # told the room.
        if removed is not None:
            await self.channel_layer.group_send(
                self.group, {"type": "peer.left", "peer_id": peer_id, "reason": reason}
            )

    # --- Client messages: one dispatch point ----------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.peer_id is None:
            return  # refused or leaving: nothing a client says now means anything
        try:
            message = protocol.parse(text_data, bytes_data)
            if not self.limits.allow(message.type):
                raise ProtocolError(
                    protocol.RATE_LIMITED,
                    f"too many {message.type} messages; slow down",
                    message.type,
                )
            await self.HANDLERS[message.type](self, message)
        except ProtocolError as problem:
            await self.send_message(problem.as_message())
            if problem.code == protocol.BAD_MESSAGE and self.limits.bad_message():
                await self.give_up_seat("disconnected")
                await self.close_with(protocol.CLOSE_ABUSE, "too many invalid messages")
            elif problem.code == protocol.RATE_LIMITED and self.limits.strike():
                await self.give_up_seat("disconnected")
                await self.close_with(protocol.CLOSE_RATE_LIMITED, "too many messages")

    async def on_relay(self, message: Message) -> None:
        # The hot path: no database, no group. `to` must be a peer of this room.
        to = message.fields["to"]
        channel = self.peers.get(to)
        if channel is None:
            raise ProtocolError(protocol.UNKNOWN_PEER, "no such peer in this room", message.type)
        payload = message.fields.get("sdp") if message.type != "candidate" else None
        try:
            await self.channel_layer.send(
                channel,
                {
                    "type": "signal.relay",
                    "kind": message.type,
                    "room": self.room_id,
                    "from": self.peer_id,
                    "from_channel": self.channel_name,
                    "sdp": payload,
                    "candidate": message.fields.get("candidate"),
                },
            )
        except ChannelFull:
            # Only the core Redis layer (CHANNEL_LAYER=core) has a capacity: the target's
            # worker is that far behind. Dropping the message and saying so keeps the
            # sender's socket; an exception here would close it with 1011 and drop them.
            raise ProtocolError(
                protocol.SERVER_ERROR,
                "the recipient's server is overloaded; the message was not delivered",
                message.type,
            ) from None

    async def on_chat(self, message: Message) -> None:
        try:
            stored = await database_sync_to_async(services.post_chat)(
                room_id=self.room_id,
                user=self.scope["user"],
                author_name=self.name,
                body=message.fields["body"],
            )
        except services.ChatRejected as rejected:
            raise ProtocolError(protocol.BAD_MESSAGE, f"chat {rejected}", "chat") from None
        except Exception:
            logger.exception("chat message could not be stored")
            raise ProtocolError(
                protocol.SERVER_ERROR, "the message could not be stored; send it again", "chat"
            ) from None
        await self.channel_layer.group_send(
            self.group,
            {"type": "chat.message", "message": {**stored.as_event(), "from": self.peer_id}},
        )

    async def on_media(self, message: Message) -> None:
        await database_sync_to_async(services.set_media)(self.peer_id, **message.fields)
        await self.channel_layer.group_send(
            self.group, {"type": "peer.media", "from": self.peer_id, **message.fields}
        )

    async def on_ping(self, message: Message) -> None:
        # Liveness is this worker's job (signaling.presence), so a ping costs no query.
        await self.send_message({"type": "pong", **message.fields})

    async def on_moderate(self, message: Message) -> None:
        try:
            await database_sync_to_async(moderation.perform)(
                message.type, room_id=self.room_id, user=self.scope["user"], fields=message.fields
            )
        except moderation.Forbidden as refused:
            raise ProtocolError(protocol.FORBIDDEN, str(refused), message.type) from None
        except moderation.NotFound as missing:
            raise ProtocolError(protocol.NOT_FOUND, str(missing), message.type) from None

    async def on_leave(self, message: Message) -> None:
        await self.give_up_seat("left")
        await self.close(code=protocol.CLOSE_LEFT)

    HANDLERS: dict[str, Callable[[RoomConsumer, Message], Awaitable[None]]] = {
        "offer": on_relay,
        "answer": on_relay,
        "candidate": on_relay,
        "chat": on_chat,
        "media": on_media,
        "ping": on_ping,
        "leave": on_leave,
        **dict.fromkeys(protocol.MODERATION_TYPES, on_moderate),
    }

    # --- Channel-layer events -> protocol messages ---------------------------------------

    async def peer_joined(self, event: dict[str, Any]) -> None:
        peer = event["peer"]
        if peer["peer_id"] == self.peer_id or peer["peer_id"] in self.peers:
            return  # ourselves, or already listed in our welcome
        self.peers[peer["peer_id"]] = event["channel"]
        await self.send_message({"type": "peer-joined", "peer": peer})

    async def peer_resumed(self, event: dict[str, Any]) -> None:
        if event["peer_id"] == self.peer_id and event["channel"] != self.channel_name:
            # Our page came back on a new socket while this one lingered: it owns the seat.
            await self.closed_by_server(protocol.CLOSE_SUPERSEDED, "resumed on a new connection")
        elif event["peer_id"] in self.peers:
            self.peers[event["peer_id"]] = event["channel"]

    async def peer_left(self, event: dict[str, Any]) -> None:
        if self.peers.pop(event["peer_id"], None) is not None:
            await self.send_message(
                {"type": "peer-left", "peer_id": event["peer_id"], "reason": event["reason"]}
            )

    async def signal_relay(self, event: dict[str, Any]) -> None:
        if self.peer_id is None or event["room"] != self.room_id:
            return
        # Learn the sender's route from its own message: a lost peer.joined, or a peer that
        # resumed on another worker a moment ago, must not leave two people unable to answer.
        self.peers[event["from"]] = event["from_channel"]
        out: dict[str, Any] = {"type": event["kind"], "from": event["from"]}
        if event["kind"] == "candidate":
            out["candidate"] = event["candidate"]
        else:
            out["sdp"] = event["sdp"]
        await self.send_message(out)

    async def chat_message(self, event: dict[str, Any]) -> None:
        await self.send_message({"type": "chat", **event["message"]})

    async def peer_media(self, event: dict[str, Any]) -> None:
        if event["from"] != self.peer_id:
            await self.send_message(
                {"type": "media", **{k: v for k, v in event.items() if k != "type"}}
            )

    # Room events published by rooms.moderation, from this call or from the admin site.

    async def peer_removed(self, event: dict[str, Any]) -> None:
        if self.peer_id in event["peer_ids"]:
            await self.closed_by_server(protocol.CLOSE_FORBIDDEN, event["message"])
            return
        for peer_id in event["peer_ids"]:
            await self.peer_left({"peer_id": peer_id, "reason": event["reason"]})

    async def peer_moderated(self, event: dict[str, Any]) -> None:
        if event["peer_id"] == self.peer_id:
            await self.send_message({"type": "moderator-request", "action": event["action"]})
        await self.send_message(
            {"type": "media", "from": event["peer_id"], **event["media"], "by_moderator": True}
        )

    async def peer_promoted(self, event: dict[str, Any]) -> None:
        for peer_id in event["peer_ids"]:
            await self.send_message({"type": "role", "peer_id": peer_id, "is_moderator": True})

    async def room_updated(self, event: dict[str, Any]) -> None:
        await self.send_message({"type": "room-updated", "locked": event["locked"]})

    async def room_ended(self, event: dict[str, Any]) -> None:
        await self.closed_by_server(protocol.CLOSE_ENDED, event["message"])

    async def chat_hidden(self, event: dict[str, Any]) -> None:
        await self.send_message({"type": "chat-hidden", "id": event["id"]})

    async def closed_by_server(self, code: int, reason: str) -> None:
        """A moderator removed us: the seat is already gone, so just stop and close."""
        if self.peer_id is not None:
            presence.unregister(self.peer_id)
            self.peer_id = None
            await self.channel_layer.group_discard(self.group, self.channel_name)
        await self.close_with(code, reason)

    async def close_with(self, code: int, reason: str) -> None:
        """Close with a 4xxx code, saying why in a `closing` message first: daphne leaves
        the reason out of the close frame (django/daphne#374), and the page words it."""
        await self.send_message({"type": "closing", "code": code, "reason": reason})
        await self.close(code=code, reason=reason)

    async def send_message(self, message: dict[str, Any]) -> None:
        await self.send(text_data=protocol.encode(message))
