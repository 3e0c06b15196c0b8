"""The call's websocket: admission, relay, chat and presence (docs/protocol.md).

Shape of a connection's life:
- connect: ask rooms.services to admit us (one transaction); refused, we close with the
  refusal's code having touched nothing else; admitted, we listen to the room's group,
  send `welcome` and announce ourselves;
- receive: every client frame goes through protocol.parse, then the one dispatch table;
- channel-layer events (rooms.events: `peer.joined`, `signal.relay`, `chat.message`, ...)
  become protocol messages for this client;
- disconnect: hold the seat for a resume, or give it back, and tell the room.

No exception leaves a seat behind: `dispatch` is the one place where every handler runs,
and whatever escapes a handler ends in `fail`, which answers `error server_error` (a
client message whose failure changed nothing) or gives the seat up, tells the room and
closes with 4500. Seat bookkeeping starts with the step that cannot fail (forgetting the
peer in this worker's heartbeat), so even when the database and Redis are both gone the
row stops being refreshed and the sweeper frees it within PRESENCE_TIMEOUT.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from channels.exceptions import ChannelFull, StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from rooms import events, meeting, moderation, services, waiting
from rooms.events import room_group
from rooms.ice import REFRESH_AT, ice_servers
from rooms.models import Knock, Room
from rooms.services import JoinRefused
from signaling import janus, presence, protocol
from signaling.db import db
from signaling.outages import is_outage, session_user
from signaling.protocol import Message, ProtocolError
from signaling.ratelimit import ConnectionLimits
from signaling.sfu import SfuLink

logger = logging.getLogger(__name__)

# Join refusals -> close code. The refusal's name travels in `closing`; the page words it.
REFUSAL_CODES = {
    JoinRefused.NOT_SIGNED_IN: protocol.CLOSE_NOT_SIGNED_IN,
    JoinRefused.NOT_FOUND: protocol.CLOSE_NOT_FOUND,
    JoinRefused.BANNED: protocol.CLOSE_FORBIDDEN,
    JoinRefused.PASSWORD_REQUIRED: protocol.CLOSE_FORBIDDEN,
    JoinRefused.LOCKED: protocol.CLOSE_FORBIDDEN,
    JoinRefused.FULL: protocol.CLOSE_FULL,
    JoinRefused.TOO_MANY_CONNECTIONS: protocol.CLOSE_RATE_LIMITED,
    JoinRefused.TOO_MANY_JOINS: protocol.CLOSE_RATE_LIMITED,
    JoinRefused.GUEST_OTHER_ROOM: protocol.CLOSE_FORBIDDEN,
    JoinRefused.GUEST_ENDED: protocol.CLOSE_FORBIDDEN,
}
# English for developers and logs (the `reason` of `closing`); never shown by the page.
REFUSAL_REASONS = {
    "not_signed_in": "not signed in",
    "not_found": "no such room",
    "banned": "you are banned from this room",
    "password_required": "private room: password required",
    "locked": "room is locked",
    "full": "room is full",
    "too_many_connections": "too many open connections",
    "too_many_joins": "too many joins; wait a minute",
    "kicked": "removed by a moderator",
    "declined": "not let in from the waiting room",
    "guest_other_room": "a guest may enter only the room they were invited to",
    "guest_ended": "this guest's visit has ended",
    "invite_revoked": "the invite link that let this guest in was revoked",
    "ended": "the meeting was ended by a moderator",
    "abuse": "too many invalid messages",
    "flooding": "too many messages",
    "superseded": "resumed on a new connection",
    "unavailable": "the server cannot reach its database or channel layer",
    "server_error": "the server failed while handling this connection",
}


class RoomConsumer(AsyncWebsocketConsumer):
    peer_id: str | None = None
    refresher: asyncio.Task[None] | None = None
    name: str = ""
    room_id: int = 0
    group: str = ""
    listening: bool = False  # in the room's group
    media: str = Room.Media.MESH
    sfu: SfuLink | None = None  # SFU rooms: our media through Janus
    is_moderator: bool = False
    knock: Knock | None = None  # in the room's waiting room: no seat yet
    watcher: asyncio.Task[None] | None = None

    # --- The one place every handler runs -----------------------------------------------

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels 4.2+ closes old database connections (a thread hop) before every
        # message. Most of ours are relays that never touch the database, and every
        # database access here goes through signaling/db.py, which does that clean-up
        # itself (inside the call), so we skip it (measured in docs/performance.md).
        kind = message["type"]
        handler = getattr(self, kind.replace(".", "_"), None)
        try:
            if handler is None:
                raise ValueError(f"No handler for message type {kind}")
            await handler(message)
        except StopConsumer:
            raise
        except Exception as failure:
            await self.fail(kind, failure)
            if kind == "websocket.disconnect":
                raise StopConsumer() from None

    async def fail(self, kind: str, failure: Exception) -> None:
        """Whatever a handler did not handle. An outage (database, Redis) is expected in
        production and logged in one line; anything else is a bug and logged with its
        traceback. Either way the connection ends in a documented state."""
        if is_outage(failure):
            logger.warning("%s failed: %s: %s", kind, type(failure).__name__, failure)
        else:
            logger.error("%s failed", kind, exc_info=failure)
        if kind == "websocket.receive" and self.peer_id is not None:
            # A client message that failed changed nothing the room can see (database
            # work is one transaction; events go out last): say so and keep the socket.
            try:
                await self.send_message(
                    protocol.error(
                        protocol.SERVER_ERROR,
                        "the server failed to handle this message; send it again",
                        detail=protocol.UNAVAILABLE,
                    )
                )
                return
            except Exception:
                logger.warning("could not tell the client about a server error; closing")
        if kind == "websocket.disconnect":
            return  # disconnect already ran its steps as far as they went
        await self.give_up_seat("disconnected")
        if kind == "websocket.connect" and is_outage(failure):
            # Admitted, then Redis failed before the welcome: the page retries later.
            await self.close_safely(protocol.CLOSE_UNAVAILABLE, "unavailable")
        else:
            await self.close_safely(protocol.CLOSE_SERVER_ERROR, "server_error")

    # --- Connection life ---------------------------------------------------------------

    async def connect(self) -> None:
        self.peers: dict[str, str] = {}  # peer_id -> channel name, this room only
        self.limits = ConnectionLimits()
        slug = self.scope["url_route"]["kwargs"]["slug"]
        # Accept first: a refusal must reach the browser as a close code it can explain.
        await self.accept()
        try:
            joined = await self.resume_or_join(slug)
        except JoinRefused as refused:
            # Refused at the door: nothing was taken and we never listened to the room.
            logger.info("join refused: %s", refused.reason)
            await self.close_with(REFUSAL_CODES[refused.reason], refused.reason, **refused.data)
            return
        except Exception as failure:
            # The join is one transaction: whatever failed, no seat was taken.
            if not is_outage(failure):
                raise
            logger.warning("join failed: %s: %s", type(failure).__name__, failure)
            await self.close_with(protocol.CLOSE_UNAVAILABLE, "unavailable")
            return
        if isinstance(joined, services.Knocked):
            await self.start_waiting(joined)
            return
        await self.seated(joined)

    async def seated(self, joined: services.Joined) -> None:
        """We hold a seat (a join, a resume, or a moderator's admission): listen to the room,
        send `welcome`, announce ourselves."""
        # From here on we hold a seat; a failure below ends in fail(), which frees it.
        room, me = joined.room, joined.presence
        self.peer_id, self.name = me.peer_id, me.name
        self.room_id, self.group, self.media = room.pk, room_group(room.pk), room.media
        presence.register(me.peer_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        self.listening = True
        # The room is read now, not in the join: whoever was admitted between our join
        # and our group_add announced themselves before we listened, and is listed here.
        # Anyone admitted after this read commits after our group_add, so we hear them.
        facts = await db(services.welcome_facts)(
            room, exclude=me.peer_id, moderator=me.is_moderator
        )
        peers = facts.peers
        self.peers = {}
        for peer in peers:
            self.learn_route(peer.peer_id, peer.channel_name)
        self.is_moderator = me.is_moderator
        if settings.TURN_SECRET and settings.TURN_URLS:
            self.refresher = asyncio.get_running_loop().create_task(self.refresh_ice_servers())
        await self.send_message(
            {
                "type": "welcome",
                "self": {
                    "peer_id": me.peer_id,
                    "name": me.name,
                    "is_moderator": me.is_moderator,
                    "is_guest": me.is_guest,
                    "hand": me.as_peer()["hand"],
                },
                "peers": [peer.as_peer() for peer in peers],
                "room": self.room_info(room),
                "ice_servers": ice_servers(me.peer_id),
                "ice_transport_policy": settings.ICE_TRANSPORT_POLICY,
                "history": [{**m, "from": None} for m in facts.history],
                "heartbeat": settings.HEARTBEAT_INTERVAL,
                "worker": settings.WORKER_ID,
                "resume_token": joined.resume_token,
                "resumed": joined.resumed,
                "moderation": list(protocol.MODERATION_TYPES),
                "reactions": list(meeting.REACTIONS),
                "recordings": [peer.as_recording() for peer in peers if peer.recording_since],
                "waiting": facts.waiting,
            }
        )
        if joined.resumed:
            # Same seat, same peer id: the others only need the new route to us.
            event: events.RoomEvent = events.peer_resumed(me.peer_id, self.channel_name)
        else:
            event = events.peer_joined(me.as_peer(), self.channel_name)
        await self.channel_layer.group_send(self.group, event)
        if not joined.resumed:  # a resumed seat changes nothing the lobby shows
            await services.announce(events.LOBBY_GROUP, facts.lobby(room, me))
        if room.media == Room.Media.SFU:
            await self.join_sfu(room)

    # --- The waiting room (rooms/waiting.py) ------------------------------------------------

    async def start_waiting(self, knocked: services.Knocked) -> None:
        """The room asks us to wait for a moderator: no seat, no room group. We hear of our
        admission (waiting.admitted) or decline on our own channel, from any worker."""
        self.knock = knocked.knock
        self.room_id, self.group = knocked.room.pk, room_group(knocked.room.pk)
        await services.announce(self.group, events.waiting_changed(knocked.queue))
        self.watcher = asyncio.get_running_loop().create_task(self.watch_moderators())

    async def watch_moderators(self) -> None:
        """Tell the waiting page whether a moderator is in the call, now and whenever that
        changes. Polled, not pushed: a moderator's seat ends in many ways (leave, a dropped
        socket's grace running out, a kick, a dead worker's sweep), and a few queries a
        minute per waiting person cost less than a hook in each of them."""
        told: bool | None = None
        while self.knock is not None:
            try:
                present: bool | None = await db(waiting.moderators_present)(self.room_id)
            except Exception as failure:
                if not is_outage(failure):
                    raise
                present = told  # keep what we said until the database answers again
            if present is not None and present != told and self.knock is not None:
                told = present
                await self.send_message(
                    {
                        "type": "waiting",
                        "waiting_id": self.knock.waiting_id,
                        "moderators_present": present,
                    }
                )
            await asyncio.sleep(settings.WAITING_POLL_INTERVAL)

    def stop_waiting(self) -> bool:
        was_waiting, self.knock = self.knock is not None, None
        if self.watcher is not None:
            self.watcher.cancel()
            self.watcher = None
        return was_waiting

    async def receive_waiting(self, text_data: str | None, bytes_data: bytes | None) -> None:
        """While waiting, a socket may only `ping` and `leave`."""
        try:
            message = protocol.parse(text_data, bytes_data)
            if not self.limits.allow(message.type):
                raise ProtocolError(protocol.RATE_LIMITED, "slow down", message.type)
            if message.type == "ping":
                await self.on_ping(message)
            elif message.type == "leave":
                await self.withdraw()
                await self.close(code=protocol.CLOSE_LEFT)
            else:
                raise ProtocolError(
                    protocol.FORBIDDEN,
                    "you are waiting to be let in",
                    message.type,
                    detail="waiting",
                )
        except ProtocolError as problem:
            await self.send_message(problem.as_message())
            if problem.code == protocol.BAD_MESSAGE and self.limits.bad_message():
                await self.withdraw()
                await self.close_with(protocol.CLOSE_ABUSE, "abuse")

    async def withdraw(self) -> None:
        """Leave the queue (our socket closes, or we said `leave`)."""
        if not self.stop_waiting():
            return
        room_id = await db(waiting.withdraw)(self.channel_name)
        if room_id is not None:
            queue = await db(waiting.queue)(room_id)
            await services.announce(room_group(room_id), events.waiting_changed(queue))

    async def waiting_admitted(self, event: events.WaitingAdmitted) -> None:
        if not self.stop_waiting():
            return  # we left the queue a moment ago; withdraw() gave the seat back
        joined = await db(services.admitted_seat)(event["peer_id"], self.channel_name)
        if joined is None:
            await self.close_with(protocol.CLOSE_FORBIDDEN, "kicked")
            return
        await self.seated(joined)

    async def waiting_declined(self, event: events.WaitingDeclined) -> None:
        if self.stop_waiting():
            await self.close_with(protocol.CLOSE_FORBIDDEN, "declined")

    async def waiting_changed(self, event: events.WaitingChanged) -> None:
        if self.peer_id is not None and self.is_moderator:
            await self.send_message({"type": "waiting-room", "queue": event["queue"]})

    # --- SFU rooms: media through Janus (signaling/sfu.py) ------------------------------------

    async def join_sfu(self, room: Room) -> None:
        """Join the room's Janus; if it does not answer, move the room to another one (the
        first worker to notice does, the others find it moved) and try once more."""
        for _attempt in range(2):
            if self.peer_id is None:
                return  # the seat went while we waited (a drop during a failover)
            link = SfuLink(
                self.send_message,
                server=room.sfu_server,
                api_secret=settings.JANUS_API_SECRET,
                room=room.sfu_room,
                secret=room.sfu_secret,
                capacity=room.capacity,
                peer_id=self.peer_id,
                name=self.name,
                on_lost=self.sfu_lost,
            )
            try:
                await link.start()
            except janus.JanusError as failure:
                logger.warning("Janus %s failed us: %s", room.sfu_server, failure)
                await link.close()
                moved = await db(services.move_off_sfu_server)(room.pk, room.sfu_server)
                if moved is None or moved.sfu_server == room.sfu_server:
                    break
                room = moved
                continue
            if self.peer_id is None:  # left while Janus answered
                await link.close()
                return
            self.sfu = link
            return
        await self.send_message(
            protocol.error(
                protocol.SERVER_ERROR,
                "the media server does not answer",
                "sfu",
                detail=protocol.UNAVAILABLE,
            )
        )

    async def sfu_lost(self, link: SfuLink) -> None:
        """The room's Janus died under a call: move the room to another Janus (the first
        worker to notice does it, the others find it moved), join there, then tell the
        page to publish again. Nobody leaves the room; media pauses for a moment.

        This runs in the Janus client's task, beside the consumer's own messages: the page
        hears `sfu-restart` only once the new link is in place, so its new offer cannot
        arrive while there is none."""
        if self.sfu is not link or self.peer_id is None:
            return
        self.sfu = None
        room = await db(services.move_off_sfu_server)(self.room_id, link.server)
        if room is None:
            room = await db(moderation.get_room)(self.room_id)
        await self.join_sfu(room)
        if self.sfu is not None:
            await self.send_message({"type": "sfu-restart", "reason": "janus_lost"})

    async def leave_sfu(self) -> None:
        link, self.sfu = self.sfu, None
        if link is not None:
            await link.close()

    def sfu_link(self, message: Message) -> SfuLink:
        if self.media != Room.Media.SFU:
            raise ProtocolError(protocol.BAD_MESSAGE, "this room is not an SFU room", message.type)
        if self.sfu is None:
            raise ProtocolError(
                protocol.SERVER_ERROR,
                "not connected to the media server",
                message.type,
                detail=protocol.UNAVAILABLE,
            )
        return self.sfu

    async def on_sfu(self, message: Message) -> None:
        link = self.sfu_link(message)
        fields = message.fields
        try:
            if message.type == "sfu-publish":
                await link.publish(fields["sdp"], fields["screen_mid"])
            elif message.type == "sfu-answer":
                await link.answer(fields["sdp"])
            elif message.type == "sfu-candidate":
                await link.trickle(fields["pc"], fields["candidate"])
            else:
                await link.set_layer(fields["peer_id"], fields["layer"])
        except janus.JanusError as failure:
            logger.warning("%s: Janus said %s", message.type, failure)
            raise ProtocolError(
                protocol.SERVER_ERROR,
                f"the media server refused: {failure}",
                message.type,
                detail=protocol.UNAVAILABLE,
            ) from None

    async def resume_or_join(self, slug: str) -> services.Joined | services.Knocked:
        """A page that lost its socket reconnects with `?resume=<token>` and gets its held
        seat back; otherwise (or if the seat is gone) this is an ordinary join."""
        token = parse_qs(self.scope.get("query_string", b"").decode()).get("resume", [""])[0]
        return await db(self.enter)(slug, token)

    def enter(self, slug: str, token: str) -> services.Joined | services.Knocked:
        """resume_or_join's database work, on a database thread: the user (the routing
        leaves it to us, signaling/routing.py), then the seat, in one thread hop."""
        self.scope["user"] = user = session_user(self.scope)
        if token:
            resumed = services.resume_seat(
                slug=slug, user=user, token=token, channel_name=self.channel_name
            )
            if resumed is not None:
                return resumed
        return services.join_room(
            slug=slug, user=user, session=self.scope["session"], channel_name=self.channel_name
        )

    @staticmethod
    def room_info(room: Room) -> dict[str, Any]:
        return {
            "slug": room.slug,
            "name": room.name,
            "kind": room.kind,
            "media": room.media,
            "capacity": room.capacity,
            "locked": room.is_locked,
            "waiting_room": room.waiting_room,
        }

    async def refresh_ice_servers(self) -> None:
        """TURN credentials expire after TURN_CREDENTIAL_TTL: send fresh ones well before,
        so ICE restarts and new peer connections in a long meeting still authenticate."""
        ttl = settings.TURN_CREDENTIAL_TTL
        while self.peer_id is not None:
            await asyncio.sleep(ttl * REFRESH_AT)
            if self.peer_id is None:
                return
            try:
                await self.send_message(
                    {"type": "ice-servers", "ice_servers": ice_servers(self.peer_id)}
                )
            except Exception:
                logger.warning("could not send fresh TURN credentials; the socket is gone")
                return

    async def disconnect(self, code: int) -> None:
        await self.withdraw()  # if we were waiting to be let in
        if self.refresher is not None:
            self.refresher.cancel()
        peer_id = self.forget_seat()
        await self.leave_sfu()
        if peer_id is None:
            return  # left, removed or refused: nothing is held
        # The socket dropped without `leave` (network change, laptop lid, server restart):
        # hold the seat for RESUME_GRACE seconds so the page can resume the call. The peer
        # connections themselves do not depend on this socket and usually survive.
        await self.stop_listening()
        if await db(services.detach_seat)(peer_id, self.channel_name):
            presence.expire_detached_later()
            # Its page stops recording with the socket: the others must not go on seeing it.
            if await db(meeting.stop_recording)(peer_id):
                stopped = events.peer_recording(
                    {"peer_id": peer_id, "name": self.name, "since": None}
                )
                await services.announce(self.group, stopped)

    def forget_seat(self) -> str | None:
        """The step that cannot fail, taken first: this worker stops refreshing the seat,
        so whatever fails afterwards, the sweeper frees it within PRESENCE_TIMEOUT."""
        peer_id, self.peer_id = self.peer_id, None
        if peer_id is not None:
            presence.unregister(peer_id)
        return peer_id

    async def stop_listening(self) -> None:
        if not self.listening:
            return
        self.listening = False
        try:
            await self.channel_layer.group_discard(self.group, self.channel_name)
        except Exception as failure:
            # The group's membership expires by itself; nothing is held by it.
            logger.warning("group_discard failed: %s: %s", type(failure).__name__, failure)

    async def give_up_seat(self, reason: events.LeftReason) -> None:
        """Leave the room at once (leave, closed for abuse, a server failure), telling the
        others. Each step is tried even if the one before failed."""
        peer_id = self.forget_seat()
        if peer_id is None:
            return
        await self.stop_listening()
        await self.leave_sfu()
        try:
            removed = await db(services.leave_room)(peer_id, self.channel_name)
        except Exception as failure:
            logger.warning(
                "could not free seat %s (the sweeper will): %s: %s",
                peer_id,
                type(failure).__name__,
                failure,
            )
            return
        # If the row was already gone, whoever removed it (a moderator, the sweeper)
        # told the room.
        if removed is not None:
            await services.announce(self.group, events.peer_left(peer_id, reason))
            await services.announce(events.LOBBY_GROUP, removed.lobby)

    # --- Client messages: one dispatch point ----------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.knock is not None:
            await self.receive_waiting(text_data, bytes_data)
            return
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
                await self.close_with(protocol.CLOSE_ABUSE, "abuse")
            elif problem.code == protocol.RATE_LIMITED and self.limits.strike():
                await self.give_up_seat("disconnected")
                await self.close_with(protocol.CLOSE_RATE_LIMITED, "flooding")

    async def on_relay(self, message: Message) -> None:
        # The hot path: no database, no group. `to` must be a peer of this room.
        if self.media != Room.Media.MESH:
            raise ProtocolError(
                protocol.BAD_MESSAGE, "media goes through the SFU here", message.type
            )
        to = message.fields["to"]
        channel = self.peers.get(to)
        if channel is None:
            raise ProtocolError(protocol.UNKNOWN_PEER, "no such peer in this room", message.type)
        assert self.peer_id is not None  # receive() only dispatches for a seated peer
        event = events.signal_relay(
            message.type,
            room=self.room_id,
            sender=self.peer_id,
            sender_channel=self.channel_name,
            sdp=message.fields.get("sdp"),
            candidate=message.fields.get("candidate"),
        )
        try:
            await self.channel_layer.send(channel, event)
        except ChannelFull:
            # Only the core Redis layer (CHANNEL_LAYER=core) has a capacity: the target's
            # worker is that far behind. Dropping the message and saying so keeps the
            # sender's socket; an exception here would close it with 1011 and drop them.
            raise ProtocolError(
                protocol.SERVER_ERROR,
                "the recipient's server is overloaded; the message was not delivered",
                message.type,
                detail=protocol.OVERLOADED,
            ) from None
        except Exception as failure:
            if not is_outage(failure):
                raise
            raise self.outage(failure, message.type) from None

    @staticmethod
    def outage(failure: Exception, ref: str) -> ProtocolError:
        logger.warning("%s failed: %s: %s", ref, type(failure).__name__, failure)
        return ProtocolError(
            protocol.SERVER_ERROR,
            "the server could not handle this message; send it again",
            ref,
            detail=protocol.UNAVAILABLE,
        )

    async def on_chat(self, message: Message) -> None:
        assert self.peer_id is not None
        try:
            stored = await db(services.post_chat)(
                room_id=self.room_id,
                user=self.scope["user"],
                author_name=self.name,
                body=message.fields["body"],
            )
        except services.ChatRejected as rejected:
            raise ProtocolError(protocol.BAD_MESSAGE, f"chat {rejected}", "chat") from None
        except Exception as failure:
            if not is_outage(failure):
                raise
            raise self.outage(failure, "chat") from None
        try:
            await events.apublish(self.group, events.chat_message(self.peer_id, stored.as_event()))
        except Exception as failure:
            # Stored but not delivered: take it back, so that no message is kept that its
            # sender was told failed (the page gives the text back to send again).
            try:
                await db(services.unpost_chat)(stored.pk)
            except Exception:
                logger.error("chat %s was stored, not delivered and not taken back", stored.pk)
            if not is_outage(failure):
                raise
            raise self.outage(failure, "chat") from None

    async def on_media(self, message: Message) -> None:
        assert self.peer_id is not None
        await db(services.set_media)(self.peer_id, **message.fields)
        await events.apublish(self.group, events.peer_media(self.peer_id, **message.fields))
        if self.sfu is not None:
            # Turning a moderated microphone or camera on again, on purpose and seen by
            # everyone, lifts the moderator's mute on Janus.
            for kind in ("audio", "video"):
                if message.fields[kind] and kind in self.sfu.moderated:
                    await self.sfu.moderate_own(kind, mute=False)

    async def on_hand(self, message: Message) -> None:
        assert self.peer_id is not None
        raised_at = await db(meeting.set_hand)(self.peer_id, raised=message.fields["raised"])
        await events.apublish(
            self.group, events.peer_hand(self.peer_id, raised_at, by_moderator=False)
        )

    async def on_recording(self, message: Message) -> None:
        assert self.peer_id is not None
        try:
            seat = await db(meeting.set_recording)(self.peer_id, on=message.fields["on"])
        except meeting.NotModerator as refused:
            raise ProtocolError(
                protocol.FORBIDDEN,
                str(refused),
                "recording",
                detail=moderation.Forbidden.NOT_MODERATOR,
            ) from None
        if seat is not None:
            await events.apublish(self.group, events.peer_recording(seat.as_recording()))

    async def on_reaction(self, message: Message) -> None:
        # A moment, not state: no database, straight to the room.
        assert self.peer_id is not None
        await events.apublish(
            self.group, events.peer_reaction(self.peer_id, message.fields["reaction"])
        )

    async def on_ping(self, message: Message) -> None:
        # Liveness is this worker's job (signaling.presence), so a ping costs no query.
        await self.send_message({"type": "pong", **message.fields})

    async def on_moderate(self, message: Message) -> None:
        entry = protocol.MODERATION[message.type]
        actor = moderation.Actor(user=self.scope["user"], source="call")

        def act() -> None:
            entry.act(moderation.get_room(self.room_id), actor, message.fields)

        try:
            await db(act)()
        except moderation.Forbidden as refused:
            raise ProtocolError(
                protocol.FORBIDDEN, str(refused), message.type, detail=refused.detail
            ) from None
        except (moderation.NotFound, waiting.NotWaiting) as missing:
            raise ProtocolError(
                protocol.NOT_FOUND, str(missing), message.type, detail=missing.detail
            ) from None
        except waiting.RoomFull as full:
            raise ProtocolError(
                protocol.FULL, str(full), message.type, detail=full.detail
            ) from None

    async def on_leave(self, message: Message) -> None:
        await self.give_up_seat("left")
        await self.close(code=protocol.CLOSE_LEFT)

    HANDLERS: dict[str, Callable[[RoomConsumer, Message], Awaitable[None]]] = {
        "offer": on_relay,
        "answer": on_relay,
        "candidate": on_relay,
        "chat": on_chat,
        "media": on_media,
        "hand": on_hand,
        "reaction": on_reaction,
        "recording": on_recording,
        "ping": on_ping,
        "leave": on_leave,
        **dict.fromkeys(protocol.SFU_TYPES, on_sfu),
        **dict.fromkeys(protocol.MODERATION_TYPES, on_moderate),
    }

    # --- Channel-layer events (rooms.events) -> protocol messages ---------------------------
    # A socket that is not seated (refused, left, removed) has left the group; an event
    # already queued for it is dropped here rather than sent to a closed socket.

    async def peer_joined(self, event: events.PeerJoined) -> None:
        peer = event["peer"]
        if self.peer_id is None or peer["peer_id"] == self.peer_id or peer["peer_id"] in self.peers:
            return  # not seated, ourselves, or already listed in our welcome
        self.learn_route(peer["peer_id"], event["channel"])
        await self.send_message({"type": "peer-joined", "peer": peer})

    def learn_route(self, peer_id: str, channel: str) -> None:
        """Where a peer's messages go. Interned, so that the connections of this worker in
        a room share the strings: each came decoded from a row or a message of its own, so
        in a room of 12 every peer's id and channel name were kept 11 times
        (docs/performance.md, "The start of the hour, continued")."""
        self.peers[sys.intern(peer_id)] = sys.intern(channel)

    async def peer_resumed(self, event: events.PeerResumed) -> None:
        if self.peer_id is None:
            return
        if event["peer_id"] == self.peer_id and event["channel"] != self.channel_name:
            # Our page came back on a new socket while this one lingered: it owns the seat.
            await self.closed_by_server(protocol.CLOSE_SUPERSEDED, "superseded")
        elif event["peer_id"] in self.peers:
            self.learn_route(event["peer_id"], event["channel"])

    async def peer_left(self, event: events.PeerLeft) -> None:
        if event["reason"] == "timeout" and self.sfu is not None:
            # A ghost of a dead worker: its Janus session would linger until Janus's own
            # timeout; take it out of the Janus room now (idempotent on every worker).
            try:
                await self.sfu.kick(event["peer_id"])
            except janus.JanusError as failure:
                logger.info("kicking ghost %s from Janus: %s", event["peer_id"], failure)
        if self.peers.pop(event["peer_id"], None) is not None and self.peer_id is not None:
            await self.send_message(
                {"type": "peer-left", "peer_id": event["peer_id"], "reason": event["reason"]}
            )

    async def signal_relay(self, event: events.SignalRelay) -> None:
        if self.peer_id is None or event["room"] != self.room_id:
            return
        # Learn the sender's route from its own message: a lost peer.joined, or a peer that
        # resumed on another worker a moment ago, must not leave two people unable to answer.
        if self.peers.get(event["sender"]) != event["sender_channel"]:
            self.learn_route(event["sender"], event["sender_channel"])
        out: dict[str, Any] = {"type": event["kind"], "from": event["sender"]}
        if event["kind"] == "candidate":
            out["candidate"] = event["candidate"]
        else:
            out["sdp"] = event["sdp"]
        await self.send_message(out)

    async def chat_message(self, event: events.ChatMessageEvent) -> None:
        if self.peer_id is not None:
            await self.send_message({"type": "chat", **event["message"], "from": event["sender"]})

    async def peer_media(self, event: events.PeerMedia) -> None:
        if self.peer_id is not None and event["peer_id"] != self.peer_id:
            await self.send_message(
                {
                    "type": "media",
                    "from": event["peer_id"],
                    "audio": event["audio"],
                    "video": event["video"],
                    "screen": event["screen"],
                }
            )

    async def peer_hand(self, event: events.PeerHand) -> None:
        if self.peer_id is not None:
            await self.send_message(
                {
                    "type": "hand",
                    "peer_id": event["peer_id"],
                    "raised_at": event["raised_at"],
                    "by_moderator": event["by_moderator"],
                }
            )

    async def peer_recording(self, event: events.PeerRecording) -> None:
        if self.peer_id is not None:
            await self.send_message(
                {
                    "type": "recording",
                    "peer_id": event["peer_id"],
                    "name": event["name"],
                    "since": event["since"],
                }
            )

    async def peer_reaction(self, event: events.PeerReaction) -> None:
        if self.peer_id is not None:
            await self.send_message(
                {"type": "reaction", "from": event["peer_id"], "reaction": event["reaction"]}
            )

    # Room events published by rooms.moderation, from this call or from the admin site.

    async def peer_removed(self, event: events.PeerRemoved) -> None:
        if self.peer_id is None:
            return
        if self.peer_id in event["peer_ids"]:
            if self.sfu is not None:
                try:
                    await self.sfu.kick_self()  # the media stops now, whatever the page does
                except janus.JanusError as failure:
                    # Leaving the Janus session below ends the media as well.
                    logger.info("kicking from Janus: %s", failure)
            # Kicked and banned people are told with the same refusal the door would give.
            until = {"until": event["until"]} if event["reason"] == "banned" else {}
            await self.closed_by_server(protocol.CLOSE_FORBIDDEN, event["reason"], **until)
            return
        for peer_id in event["peer_ids"]:
            await self.peer_left(events.peer_left(peer_id, event["reason"]))

    async def peer_moderated(self, event: events.PeerModerated) -> None:
        if self.peer_id is None:
            return
        if event["peer_id"] == self.peer_id:
            if self.sfu is not None:
                # A real server-side mute: the others stop receiving it even if our page
                # ignores the request below.
                try:
                    await self.sfu.moderate_own(event["turned_off"], mute=True)
                except janus.JanusError as failure:
                    logger.warning("Janus did not mute %s: %s", self.peer_id, failure)
            action = protocol.MODERATOR_REQUEST[event["turned_off"]]
            await self.send_message({"type": "moderator-request", "action": action})
        await self.send_message(
            {"type": "media", "from": event["peer_id"], **event["media"], "by_moderator": True}
        )

    async def peer_promoted(self, event: events.PeerPromoted) -> None:
        if self.peer_id is None:
            return
        for peer_id in event["peer_ids"]:
            await self.send_message({"type": "role", "peer_id": peer_id, "is_moderator": True})
        if self.peer_id in event["peer_ids"] and not self.is_moderator:
            # Now a moderator: the waiting room's queue is ours to see too.
            self.is_moderator = True
            queue = await db(waiting.queue)(self.room_id)
            await self.send_message({"type": "waiting-room", "queue": queue})

    async def room_updated(self, event: events.RoomUpdated) -> None:
        if self.peer_id is not None:
            await self.send_message(
                {
                    "type": "room-updated",
                    "locked": event["locked"],
                    "waiting_room": event["waiting_room"],
                }
            )

    async def room_ended(self, event: events.RoomEnded) -> None:
        if self.peer_id is None:
            return
        if self.sfu is not None:
            try:
                await self.sfu.destroy_room()  # every worker tries; the first one does it
            except janus.JanusError as failure:
                logger.info("destroying the Janus room: %s", failure)
        await self.closed_by_server(protocol.CLOSE_ENDED, "ended")

    async def chat_hidden(self, event: events.ChatHidden) -> None:
        if self.peer_id is not None:
            await self.send_message({"type": "chat-hidden", "id": event["id"]})

    async def closed_by_server(self, code: int, refusal: str, **data: Any) -> None:
        """A moderator (or a newer socket of ours) took the seat: it is already gone from
        the database, so just stop and close."""
        self.forget_seat()
        await self.stop_listening()
        await self.leave_sfu()
        await self.close_with(code, refusal, **data)

    async def close_with(self, code: int, refusal: str, **data: Any) -> None:
        """Close with a 4xxx code, naming the refusal in a `closing` message first: daphne
        leaves the reason out of the close frame (django/daphne#374), and the page words
        the refusal code (docs/protocol.md, "Close codes and refusals")."""
        reason = REFUSAL_REASONS[refusal]
        await self.send_message(
            {"type": "closing", "code": code, "refusal": refusal, "reason": reason, **data}
        )
        await self.close(code=code, reason=reason)

    async def close_safely(self, code: int, refusal: str) -> None:
        try:
            await self.close_with(code, refusal)
        except Exception:
            logger.warning("the socket was gone before it could be closed (%s)", refusal)

    async def send_message(self, message: dict[str, Any]) -> None:
        await self.send(text_data=protocol.encode(message))
