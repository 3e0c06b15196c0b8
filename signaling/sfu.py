"""One participant's media through Janus's VideoRoom (docs/protocol.md, "SFU rooms").

The page keeps its one websocket to Confab and never talks to Janus. For each seated
participant of an SFU room the consumer holds an `SfuLink`: a Janus session (kept alive by
signaling.janus), a publisher handle (the page's send-only connection) and, once there is
anyone to watch, one multistream subscriber handle (the page's receive-only connection for
everyone else), updated as publishers come and go. Janus names participants by numbers of
its own; each of ours joins with its peer id as `display`, which is how a Janus stream is
told to belong to a person of the protocol.

Admission stays Confab's: the Janus room has a random secret that never reaches a page, it
is created at the first join of a seated person, and whoever moderates uses the secret from
the database, on whatever worker they are.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

from signaling import janus
from signaling.protocol import SFU_LAYERS, SfuLayer

logger = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[None]]

# Kept modest: the browsers' uplinks, not Janus, are what runs out (docs/performance.md).
ROOM_BITRATE = 1_500_000


class SfuLink:
    def __init__(
        self,
        send: Send,
        *,
        server: str,
        api_secret: str,
        room: int,
        secret: str,
        capacity: int,
        peer_id: str,
        name: str,
        on_lost: Callable[[SfuLink], Awaitable[None]] | None = None,
    ) -> None:
        self.send = send
        # Called once if Janus goes away under us (its connection lost, our session timed
        # out): the consumer moves the room to another Janus and starts again.
        self.on_lost = on_lost
        self.server = server
        self.api_secret = api_secret
        self.room = room
        self.secret = secret
        self.capacity = capacity
        self.peer_id = peer_id
        self.name = name
        self.session: janus.Session | None = None
        self.publisher: janus.Handle | None = None
        self.subscriber: janus.Handle | None = None
        self.janus_id = 0  # our participant id in the Janus room
        self.private_id = 0
        self.subscribed: dict[int, set[str]] = {}  # feed -> its mids on our subscriber
        self.streams: list[dict[str, Any]] = []  # the subscriber's m-lines, as Janus says
        self.published: dict[str, str] = {}  # our own mids: "audio" / "video" -> mid
        self.moderated: set[str] = set()  # kinds a moderator turned off on Janus
        self.subscribing = asyncio.Lock()
        self.closed = False

    # --- Life ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Join the Janus room as a publisher (creating the room if we are first) and
        subscribe to everyone who already publishes."""
        connection = await janus.Janus.for_url(self.server, self.api_secret)
        self.session = await connection.create_session()
        self.publisher = await self.session.attach(janus.VIDEOROOM)
        self.publisher.on_event = self.on_publisher_event
        self.publisher.on_janus = self.on_publisher_core
        await janus.create_room(
            self.publisher,
            self.room,
            secret=self.secret,
            publishers=self.capacity,
            description=f"Confab room {self.room}",
            bitrate=ROOM_BITRATE,
        )
        joined = await janus.join_publisher(self.publisher, self.room, display=self.peer_id)
        self.janus_id, self.private_id = joined.id, joined.private_id
        await self.subscribe(joined.publishers)

    async def close(self) -> None:
        """Leave Janus: destroying the session hangs up both of the page's connections."""
        if self.closed:
            return
        self.closed = True
        if self.session is not None:
            try:
                await self.session.destroy()
            except janus.JanusError as failure:
                logger.info("leaving Janus %s: %s", self.server, failure)

    # --- From the page ---------------------------------------------------------------------

    async def publish(self, sdp: str, screen_mid: str | None) -> None:
        assert self.publisher is not None
        descriptions = [{"mid": screen_mid, "description": "screen"}] if screen_mid else []
        offer = {"type": "offer", "sdp": sdp}
        if not self.published:
            answer = await janus.publish(self.publisher, offer, descriptions=descriptions)
        else:
            # Already publishing: a screen that starts or stops, an ICE restart. Janus
            # renegotiates a publisher with `configure`, not a second `publish`.
            renegotiated = await janus.configure_publisher(
                self.publisher, jsep_offer=offer, descriptions=descriptions
            )
            if renegotiated is None:
                raise janus.JanusError(janus.UNEXPECTED, "configure answered without an SDP")
            answer = renegotiated
        self.published = _mids_by_kind(answer["sdp"], exclude=screen_mid)
        # A moderator's mute holds across a republish (a new screen, a new device).
        for kind in self.moderated:
            await self.moderate_own(kind, mute=True)
        await self.send({"type": "sfu-answer", "pc": "publisher", "sdp": answer["sdp"]})

    async def answer(self, sdp: str) -> None:
        if self.subscriber is None:
            return  # an answer to an offer of a subscriber that is gone
        await janus.start(self.subscriber, {"type": "answer", "sdp": sdp})

    async def trickle(self, pc: str, candidate: dict[str, Any] | None) -> None:
        handle = self.publisher if pc == "publisher" else self.subscriber
        if handle is not None:
            await handle.trickle(candidate)

    async def set_layer(self, peer_id: str, layer: str) -> None:
        if self.subscriber is None:
            return
        for stream in self.streams:
            if stream.get("feed_display") == peer_id and stream.get("type") == "video":
                if stream.get("feed_description") == "screen":
                    continue  # a screen is sent in one layer
                await janus.configure_substream(
                    self.subscriber, str(stream["mid"]), SFU_LAYERS[cast(SfuLayer, layer)]
                )

    # --- Janus's events --------------------------------------------------------------------

    async def on_publisher_event(self, data: dict[str, Any], jsep: dict[str, Any] | None) -> None:
        await self.subscribe(janus.publishers_of(data))
        for key in ("unpublished", "leaving", "kicked"):
            gone = data.get(key)
            if isinstance(gone, int):
                # Janus drops the feed's streams from our subscriber and offers again.
                self.subscribed.pop(gone, None)

    async def on_publisher_core(self, kind: str, message: dict[str, Any]) -> None:
        # Janus timing a session out may say "detached" before "timeout"; we never detach
        # the publisher ourselves (close() destroys the session and sets `closed` first).
        if kind in ("disconnected", "timeout", "detached") and not self.closed:
            logger.warning("lost Janus %s (%s)", self.server, kind)
            self.closed = True
            if self.on_lost is not None:
                await self.on_lost(self)

    async def on_subscriber_event(self, data: dict[str, Any], jsep: dict[str, Any] | None) -> None:
        if "streams" in data:
            self.streams = list(data["streams"])
        if jsep is not None and jsep.get("type") == "offer":
            await self.offer_to_page(jsep["sdp"])

    async def subscribe(self, publishers: list[janus.Publisher]) -> None:
        # start() and a `publishers` event may subscribe at once: one at a time, or both
        # could attach a subscriber handle.
        async with self.subscribing:
            await self._subscribe(publishers)

    async def _subscribe(self, publishers: list[janus.Publisher]) -> None:
        """Subscribe to new feeds whole, and to the new streams of feeds we have (a screen
        that starts: Janus does not add a publisher's later streams by itself)."""
        if self.session is None:
            return
        streams: list[dict[str, Any]] = []
        for publisher in publishers:
            if publisher.id == self.janus_id:
                continue
            mids = {str(s["mid"]) for s in publisher.streams if not s.get("disabled")}
            if not mids:
                continue
            have = self.subscribed.get(publisher.id)
            if have is None:
                streams.append({"feed": publisher.id})
            else:
                streams += [{"feed": publisher.id, "mid": mid} for mid in sorted(mids - have)]
            # A stream the publisher disabled (a screen stopped) leaves our subscription;
            # the same mid enabled again is subscribed again.
            self.subscribed[publisher.id] = mids
        if not streams:
            return
        if self.subscriber is None:
            self.subscriber = await self.session.attach(janus.VIDEOROOM)
            self.subscriber.on_event = self.on_subscriber_event
            subscription = await janus.join_subscriber(
                self.subscriber, self.room, streams, private_id=self.private_id
            )
        else:
            subscription = await janus.subscribe_update(self.subscriber, subscribe=streams)
        if subscription.postponed:
            return  # the offer comes as an `updated` event (on_subscriber_event)
        self.streams = subscription.streams
        if subscription.jsep is not None:
            await self.offer_to_page(subscription.jsep["sdp"])

    async def offer_to_page(self, sdp: str) -> None:
        await self.send({"type": "sfu-offer", "sdp": sdp, "streams": self.page_streams()})

    def page_streams(self) -> list[dict[str, Any]]:
        out = []
        for stream in self.streams:
            kind = stream.get("type")
            peer_id = stream.get("feed_display")
            if kind not in ("audio", "video") or not peer_id or stream.get("active") is False:
                continue
            if kind == "audio":
                source = "mic"
            else:
                source = "screen" if stream.get("feed_description") == "screen" else "camera"
            out.append(
                {"mid": str(stream["mid"]), "peer_id": peer_id, "kind": kind, "source": source}
            )
        return out

    # --- Moderation on the media -----------------------------------------------------------

    async def moderate_own(self, kind: str, *, mute: bool) -> None:
        """A moderator turned our audio or video off: Janus stops forwarding it to everyone,
        whatever our page does. Lifted when the person turns it on again themselves."""
        if mute:
            self.moderated.add(kind)
        else:
            self.moderated.discard(kind)
        mid = self.published.get(kind)
        if mid is None or self.publisher is None:
            return  # not published yet: publish() applies it
        await janus.moderate(
            self.publisher, self.room, self.secret, self.janus_id, mid=mid, mute=mute
        )

    async def kick(self, peer_id: str) -> None:
        """Remove someone from the Janus room (a ghost swept by the presence sweeper)."""
        if self.publisher is None:
            return
        for participant in await janus.list_participants(self.publisher, self.room):
            if participant.get("display") == peer_id:
                await janus.kick(self.publisher, self.room, self.secret, int(participant["id"]))

    async def kick_self(self) -> None:
        """Kicked or banned: Janus drops our media at once, before the socket closes."""
        if self.publisher is not None:
            await janus.kick(self.publisher, self.room, self.secret, self.janus_id)

    async def destroy_room(self) -> None:
        if self.publisher is not None:
            await janus.destroy_room(self.publisher, self.room, self.secret)


def _mids_by_kind(sdp: str, *, exclude: str | None) -> dict[str, str]:
    """Our published m-lines' mids by kind (camera video and microphone), from an SDP."""
    mids: dict[str, str] = {}
    kind = ""
    for line in sdp.splitlines():
        if line.startswith("m="):
            kind = line[2:].split(" ", 1)[0]
        elif line.startswith("a=mid:") and kind in ("audio", "video"):
            mid = line[len("a=mid:") :].strip()
            if mid != exclude:
                mids.setdefault(kind, mid)
    return mids
