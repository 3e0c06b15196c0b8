"""Room events: every message that travels through the channel layer, built here only.

This is how rooms/ reaches live calls without knowing about websockets: the signaling
consumers listen on these groups and turn each event into protocol messages
(docs/protocol.md). Publishing works from any worker because it goes through the
shared channel layer, never through in-process state.

Each event has a TypedDict (its payload, checked by mypy wherever it is consumed) and one
builder function; nothing else spells an event's `type`. docs/architecture.md lists them.
Event names follow Channels' convention (`chat.message` is handled by `chat_message`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

LOBBY_GROUP = "lobby"


def room_group(room_id: int) -> str:
    return f"room.{room_id}"


# Why a seat ended, as the others see it (protocol `peer-left.reason`).
LeftReason = Literal["left", "disconnected", "kicked", "banned", "invite_revoked", "timeout"]
# Why a moderator removed someone (the removed person's refusal code).
RemovedReason = Literal["kicked", "banned", "invite_revoked"]
MediaKind = Literal["audio", "video"]


class PeerInfo(TypedDict):
    peer_id: str
    name: str
    media: dict[str, bool]
    hand: str | None  # when they raised their hand (ISO 8601), or None
    is_moderator: bool
    is_guest: bool  # came in by an invite link, without an account


class PeerJoined(TypedDict):
    type: Literal["peer.joined"]
    peer: PeerInfo
    channel: str


class PeerResumed(TypedDict):
    type: Literal["peer.resumed"]
    peer_id: str
    channel: str


class PeerLeft(TypedDict):
    type: Literal["peer.left"]
    peer_id: str
    reason: LeftReason


class PeerMedia(TypedDict):
    type: Literal["peer.media"]
    peer_id: str
    audio: bool
    video: bool
    screen: bool


class PeerHand(TypedDict):
    type: Literal["peer.hand"]
    peer_id: str
    raised_at: str | None  # ISO 8601; None: lowered
    by_moderator: bool


class PeerRecording(TypedDict):
    type: Literal["peer.recording"]
    peer_id: str
    name: str
    since: str | None  # ISO 8601; None: stopped


class PeerReaction(TypedDict):
    type: Literal["peer.reaction"]
    peer_id: str
    reaction: str  # one of rooms.meeting.REACTIONS


class SignalRelay(TypedDict):
    type: Literal["signal.relay"]
    kind: str  # offer, answer or candidate
    room: int
    sender: str
    sender_channel: str
    sdp: str | None
    candidate: dict[str, Any] | None


class ChatMessageEvent(TypedDict):
    type: Literal["chat.message"]
    sender: str
    message: dict[str, Any]


class ChatHidden(TypedDict):
    type: Literal["chat.hidden"]
    id: int


class PeerRemoved(TypedDict):
    type: Literal["peer.removed"]
    peer_ids: list[str]
    reason: RemovedReason
    until: str | None  # a ban's expiry (ISO 8601); None for a kick or a ban until lifted


class PeerModerated(TypedDict):
    type: Literal["peer.moderated"]
    peer_id: str
    turned_off: MediaKind
    media: dict[str, bool]


class PeerPromoted(TypedDict):
    type: Literal["peer.promoted"]
    peer_ids: list[str]


class RoomUpdated(TypedDict):
    type: Literal["room.updated"]
    locked: bool
    waiting_room: str  # Room.Waiting: off, guests, everyone


class WaitingChanged(TypedDict):
    """The room's waiting room queue (for its moderators), oldest first."""

    type: Literal["waiting.changed"]
    queue: list[dict[str, object]]


class WaitingAdmitted(TypedDict):
    """To one waiting socket: a moderator let it in, and this seat is now its own."""

    type: Literal["waiting.admitted"]
    peer_id: str


class WaitingDeclined(TypedDict):
    type: Literal["waiting.declined"]


class RoomEnded(TypedDict):
    type: Literal["room.ended"]


class LobbyRoom(TypedDict):
    type: Literal["lobby.room"]
    room: dict[str, Any]


RoomEvent = (
    PeerJoined
    | PeerResumed
    | PeerLeft
    | PeerMedia
    | PeerHand
    | PeerReaction
    | PeerRecording
    | SignalRelay
    | ChatMessageEvent
    | ChatHidden
    | PeerRemoved
    | PeerModerated
    | PeerPromoted
    | RoomUpdated
    | RoomEnded
    | WaitingChanged
    | WaitingAdmitted
    | WaitingDeclined
    | LobbyRoom
)


# --- Builders: the one place each event is made -------------------------------------------


def peer_joined(peer: PeerInfo, channel: str) -> PeerJoined:
    return {"type": "peer.joined", "peer": peer, "channel": channel}


def peer_resumed(peer_id: str, channel: str) -> PeerResumed:
    return {"type": "peer.resumed", "peer_id": peer_id, "channel": channel}


def peer_left(peer_id: str, reason: LeftReason) -> PeerLeft:
    return {"type": "peer.left", "peer_id": peer_id, "reason": reason}


def peer_media(peer_id: str, *, audio: bool, video: bool, screen: bool) -> PeerMedia:
    return {
        "type": "peer.media",
        "peer_id": peer_id,
        "audio": audio,
        "video": video,
        "screen": screen,
    }


def peer_hand(peer_id: str, raised_at: datetime | None, *, by_moderator: bool) -> PeerHand:
    return {
        "type": "peer.hand",
        "peer_id": peer_id,
        "raised_at": raised_at.isoformat() if raised_at else None,
        "by_moderator": by_moderator,
    }


def peer_recording(recording: dict[str, str | None]) -> PeerRecording:
    """From Presence.as_recording()."""
    return {
        "type": "peer.recording",
        "peer_id": str(recording["peer_id"]),
        "name": str(recording["name"]),
        "since": recording["since"],
    }


def peer_reaction(peer_id: str, reaction: str) -> PeerReaction:
    return {"type": "peer.reaction", "peer_id": peer_id, "reaction": reaction}


def signal_relay(
    kind: str,
    *,
    room: int,
    sender: str,
    sender_channel: str,
    sdp: str | None = None,
    candidate: dict[str, Any] | None = None,
) -> SignalRelay:
    return {
        "type": "signal.relay",
        "kind": kind,
        "room": room,
        "sender": sender,
        "sender_channel": sender_channel,
        "sdp": sdp,
        "candidate": candidate,
    }


def chat_message(sender: str, message: dict[str, Any]) -> ChatMessageEvent:
    return {"type": "chat.message", "sender": sender, "message": message}


def chat_hidden(message_id: int) -> ChatHidden:
    return {"type": "chat.hidden", "id": message_id}


def peer_removed(peer_ids: list[str], reason: RemovedReason, until: str | None) -> PeerRemoved:
    return {"type": "peer.removed", "peer_ids": peer_ids, "reason": reason, "until": until}


def peer_moderated(peer_id: str, turned_off: MediaKind, media: dict[str, bool]) -> PeerModerated:
    return {"type": "peer.moderated", "peer_id": peer_id, "turned_off": turned_off, "media": media}


def peer_promoted(peer_ids: list[str]) -> PeerPromoted:
    return {"type": "peer.promoted", "peer_ids": peer_ids}


def room_updated(locked: bool, waiting_room: str) -> RoomUpdated:
    return {"type": "room.updated", "locked": locked, "waiting_room": waiting_room}


def waiting_changed(queue: list[dict[str, object]]) -> WaitingChanged:
    return {"type": "waiting.changed", "queue": queue}


def waiting_admitted(peer_id: str) -> WaitingAdmitted:
    return {"type": "waiting.admitted", "peer_id": peer_id}


def waiting_declined() -> WaitingDeclined:
    return {"type": "waiting.declined"}


def room_ended() -> RoomEnded:
    return {"type": "room.ended"}


def lobby_room(summary: dict[str, Any]) -> LobbyRoom:
    return {"type": "lobby.room", "room": summary}


# --- Publishing ---------------------------------------------------------------------------


async def apublish(group: str, event: RoomEvent) -> None:
    layer = get_channel_layer()
    if layer is not None:
        await layer.group_send(group, dict(event))


def publish(group: str, event: RoomEvent) -> None:
    """The same from synchronous code: views, admin actions, the sweeper's services."""
    async_to_sync(apublish)(group, event)


def send(channel: str, event: RoomEvent) -> None:
    """To one socket, on whichever worker holds it (a waiting person's: rooms/waiting.py)."""
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.send)(channel, dict(event))
