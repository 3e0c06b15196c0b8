"""Small functions that carry out the rules about rooms.

Views, the admin and the signaling consumer call these; none of them decide on their own
who may join, how many fit or what a chat message may be. All of it is synchronous
Django ORM code: async callers wrap it in database_sync_to_async.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, QuerySet
from django.utils import timezone
from django.utils.text import slugify

from rooms import access, events, throttle
from rooms.models import (
    CHAT_MAX_LENGTH,
    MAX_CAPACITY,
    SFU_MAX_CAPACITY,
    ChatMessage,
    Presence,
    Room,
    display_name,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User
    from django.contrib.sessions.backends.base import SessionBase

logger = logging.getLogger(__name__)


# --- Creating rooms -------------------------------------------------------------------


def _slug_candidates(name: str) -> list[str]:
    base = slugify(name)[:48].strip("-") or "room"
    # Readable first ("team-standup"), then numbered ("team-standup-2"), and as a last
    # resort random, so creation never fails on a crowded name.
    return [base] + [f"{base}-{n}" for n in range(2, 20)] + [f"{base}-{secrets.token_hex(4)}"]


def sfu_available() -> bool:
    """SFU rooms can be made only where a Janus server is configured (JANUS_URLS)."""
    return bool(settings.JANUS_URLS)


def max_capacity(media: str) -> int:
    return SFU_MAX_CAPACITY if media == Room.Media.SFU else MAX_CAPACITY


class RoomRefused(ValueError):  # noqa: N818 - a refusal, not a programming error
    pass


def create_room(
    *,
    owner: User,
    name: str,
    capacity: int | None = None,
    kind: str = Room.Kind.VIDEO,
    media: str = Room.Media.MESH,
    is_private: bool = False,
    password: str = "",
) -> Room:
    if media == Room.Media.SFU and not sfu_available():
        raise RoomRefused("SFU rooms need a Janus server (JANUS_URLS)")
    capacity = capacity or settings.ROOM_DEFAULT_CAPACITY
    if capacity > max_capacity(media):
        raise RoomRefused(f"a {media} room holds at most {max_capacity(media)} people")
    room = Room(
        name=name,
        owner=owner,
        capacity=capacity,
        kind=kind,
        media=media,
        is_private=is_private,
    )
    if is_private:
        room.set_password(password)
    taken = set(Room.objects.filter(slug__in=_slug_candidates(name)).values_list("slug", flat=True))
    for slug in _slug_candidates(name):
        if slug in taken:
            continue
        room.slug = slug
        try:
            # A savepoint, so losing a race for a slug leaves the outer transaction usable.
            with transaction.atomic():
                room.save()
        except IntegrityError:
            continue  # someone took this slug since we looked: try the next one
        publish_lobby_room(room)
        return room
    raise IntegrityError("no free slug for this room name")


def close_room(room: Room) -> None:
    room.closed_at = timezone.now()
    room.save(update_fields=["closed_at"])
    publish_lobby_room(room)


# --- Joining and leaving --------------------------------------------------------------


class JoinRefused(Exception):  # noqa: N818 - a refusal, not a programming error
    """The reasons a join can be refused. Each is a stable name the page words (the
    protocol's `closing.refusal`); signaling maps each to a close code."""

    NOT_SIGNED_IN = "not_signed_in"
    NOT_FOUND = "not_found"
    BANNED = "banned"
    PASSWORD_REQUIRED = "password_required"  # noqa: S105 - a refusal name, not a secret
    LOCKED = "locked"
    FULL = "full"
    TOO_MANY_CONNECTIONS = "too_many_connections"
    TOO_MANY_JOINS = "too_many_joins"

    def __init__(self, reason: str, **data: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        # What the page needs to word it: occupancy and capacity of a full room, the
        # expiry of a ban (`until`, ISO 8601 or None).
        self.data = data


@dataclass
class Joined:
    room: Room
    presence: Presence
    history: list[ChatMessage] = field(default_factory=list)
    resume_token: str = ""
    resumed: bool = False


def _resume_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_peer_id() -> str:
    # Random and per connection: never a channel name or a database id, so a client
    # learns nothing it could use to address another room or worker.
    return secrets.token_urlsafe(12)


def open_room_id(slug: str) -> int | None:
    return Room.objects.open().filter(slug=slug).values_list("pk", flat=True).first()


def join_room(
    *,
    slug: str,
    user: User | AnonymousUser,
    session: SessionBase,
    channel_name: str,
    audio: bool = True,
    video: bool = True,
) -> Joined:
    """Admit a connection to a room or raise JoinRefused.

    The seat count and the new presence row are one transaction with the room row locked
    (PostgreSQL: SELECT ... FOR UPDATE; SQLite: the transaction is IMMEDIATE, see settings),
    so concurrent joins on any number of workers never exceed the capacity.
    """
    if not user.is_authenticated:
        raise JoinRefused(JoinRefused.NOT_SIGNED_IN)
    # Counted before anything else, so refused attempts count too (a reconnect loop).
    if throttle.hit("join", str(user.pk), window=60) > settings.JOINS_PER_MINUTE:
        raise JoinRefused(JoinRefused.TOO_MANY_JOINS)
    with transaction.atomic():
        room = Room.objects.select_for_update().filter(slug=slug).first()
        if room is None or not room.is_open:
            raise JoinRefused(JoinRefused.NOT_FOUND)
        moderator = access.is_moderator(room, user)
        # The longest ban wins; one until lifted (no expiry) is the longest of all.
        ban = (
            room.bans.active()
            .filter(user=user)
            .order_by(F("expires_at").desc(nulls_first=True))
            .first()
        )
        if ban is not None:
            until = ban.expires_at.isoformat() if ban.expires_at else None
            raise JoinRefused(JoinRefused.BANNED, until=until)
        if room.is_private and not (moderator or access.gave_password(session, room)):
            raise JoinRefused(JoinRefused.PASSWORD_REQUIRED)
        if room.is_locked and not moderator:
            raise JoinRefused(JoinRefused.LOCKED)
        occupancy = room.presences.count()
        if occupancy >= room.capacity:
            raise JoinRefused(JoinRefused.FULL, occupancy=occupancy, capacity=room.capacity)
        my_rooms = list(Presence.objects.filter(user=user).values_list("room_id", flat=True))
        if (
            len(my_rooms) >= settings.MAX_CONNECTIONS_PER_USER
            or my_rooms.count(room.pk) >= settings.MAX_CONNECTIONS_PER_ROOM
        ):
            raise JoinRefused(JoinRefused.TOO_MANY_CONNECTIONS)
        if room.media == Room.Media.SFU:
            _place_on_sfu(room)
        is_voice = room.kind == Room.Kind.VOICE
        resume_token = secrets.token_urlsafe(24)
        presence = Presence.objects.create(
            resume_key=_resume_key(resume_token),
            room=room,
            user=user,
            peer_id=new_peer_id(),
            channel_name=channel_name,
            name=display_name(user),
            audio=audio,
            video=video and not is_voice,
            is_moderator=moderator,
        )
        room.last_activity_at = timezone.now()
        room.save(update_fields=["last_activity_at"])
        # Inside the transaction: once it commits, nothing may fail and leave a seat
        # taken that the caller believes was refused.
        history = chat_history(room)
    publish_lobby_room(room)
    return Joined(room=room, presence=presence, history=history, resume_token=resume_token)


def _place_on_sfu(room: Room, servers: list[str] | None = None) -> None:
    """Give an SFU room its Janus server at its first join (the least loaded of `servers`,
    JANUS_URLS by default: fewest people in open SFU rooms), and keep it there while that
    server stays configured. Runs inside the join transaction, with the room row locked."""
    servers = settings.JANUS_URLS if servers is None else servers
    if room.sfu_server in servers and room.sfu_secret and room.sfu_room:
        return
    load = dict.fromkeys(servers, 0)
    busy = Presence.objects.filter(
        room__media=Room.Media.SFU, room__closed_at__isnull=True
    ).values_list("room__sfu_server", flat=True)
    for server in busy:
        if server in load:
            load[server] += 1
    room.sfu_server = min(servers, key=lambda url: (load[url], servers.index(url)))
    room.sfu_secret = room.sfu_secret or secrets.token_urlsafe(24)
    # 1 to 2**53 - 1: Janus takes a JSON number, and JavaScript-safe ones at that.
    room.sfu_room = room.sfu_room or 1 + secrets.randbelow(2**53 - 1)
    room.save(update_fields=["sfu_server", "sfu_secret", "sfu_room"])


def move_off_sfu_server(room_id: int, lost: str) -> Room | None:
    """The Janus server `lost` stopped answering: give the room another one (if it is still
    on `lost`; another worker may have moved it already). Returns the room as it is now,
    or None if it is closed or no other server is configured."""
    with transaction.atomic():
        room = Room.objects.select_for_update().filter(pk=room_id, closed_at=None).first()
        if room is None:
            return None
        if room.sfu_server == lost:
            others = [url for url in settings.JANUS_URLS if url != lost]
            if not others:
                return None
            _place_on_sfu(room, others)
        return room


def resume_seat(
    *, slug: str, user: User | AnonymousUser, token: str, channel_name: str
) -> Joined | None:
    """Give a returning connection its held seat back (same peer id), or None if the token
    is unknown, belongs to someone else, or its seat is gone (expired, kicked, swept)."""
    if not user.is_authenticated or not token:
        return None
    with transaction.atomic():
        presence = (
            Presence.objects.select_for_update()
            .select_related("room")
            .filter(resume_key=_resume_key(token), user=user, room__slug=slug)
            .filter(room__closed_at__isnull=True)
            .first()
        )
        if presence is None:
            return None
        presence.channel_name = channel_name
        presence.detached_at = None
        presence.last_seen = timezone.now()
        presence.save(update_fields=["channel_name", "detached_at", "last_seen"])
        history = chat_history(presence.room)
    return Joined(
        room=presence.room,
        presence=presence,
        history=history,
        resume_token=token,
        resumed=True,
    )


def detach_seat(peer_id: str, channel_name: str) -> bool:
    """The socket dropped without `leave`: hold the seat for RESUME_GRACE seconds. Only
    the connection that holds the seat may detach it (a resumed one may have taken it)."""
    updated = Presence.objects.filter(peer_id=peer_id, channel_name=channel_name).update(
        detached_at=timezone.now()
    )
    return updated > 0


def detach_seats(peer_ids: list[str]) -> int:
    """A worker is shutting down: hold all its seats for their pages to resume elsewhere."""
    return Presence.objects.filter(peer_id__in=peer_ids).update(detached_at=timezone.now())


def expire_detached(now: datetime | None = None) -> list[Presence]:
    """Free the seats whose holders did not come back in time; tell their rooms."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.RESUME_GRACE)
    return _remove_announced(Presence.objects.filter(detached_at__lt=cutoff), "disconnected")


def leave_room(peer_id: str, channel_name: str) -> Presence | None:
    """Remove a connection's seat. Returns the removed row, or None if it was gone already
    (kicked, swept) or taken over by a resumed connection: leaving twice is harmless."""
    presence = (
        Presence.objects.select_related("room")
        .filter(peer_id=peer_id, channel_name=channel_name)
        .first()
    )
    if presence is None:
        return None
    deleted, _ = Presence.objects.filter(pk=presence.pk).delete()
    if not deleted:
        return None
    publish_lobby_room(presence.room)
    return presence


def room_peers(room_id: int, *, exclude: str) -> list[Presence]:
    """Everyone in a room but one peer, oldest first: what a newcomer's welcome lists.

    Read again after the newcomer listens to the room's group (signaling.consumers), so
    that someone admitted between our join and our subscription is listed here, and anyone
    admitted later announces themselves to us."""
    return list(Presence.objects.filter(room_id=room_id).exclude(peer_id=exclude))


def refresh_presences(peer_ids: list[str]) -> int:
    """Heartbeat for one worker's connections: one UPDATE however many there are."""
    return Presence.objects.filter(peer_id__in=peer_ids).update(last_seen=timezone.now())


def set_media(peer_id: str, *, audio: bool, video: bool, screen: bool) -> None:
    Presence.objects.filter(peer_id=peer_id).update(audio=audio, video=video, screen=screen)


def sweep_stale_presences(now: datetime | None = None) -> list[Presence]:
    """Remove presence rows nobody refreshed for PRESENCE_TIMEOUT seconds (their worker is
    gone), tell their rooms and the lobby. Safe to run on every worker at once."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.PRESENCE_TIMEOUT)
    return _remove_announced(Presence.objects.filter(last_seen__lt=cutoff), "timeout")


def _remove_announced(candidates: QuerySet[Presence], reason: events.LeftReason) -> list[Presence]:
    removed = []
    for presence in candidates.select_related("room"):
        # Re-check the condition in the DELETE: only the worker whose DELETE removed the
        # row announces it, and a seat resumed meanwhile is left alone.
        if candidates.filter(pk=presence.pk).delete()[0]:
            removed.append(presence)
            _tell(events.room_group(presence.room_id), events.peer_left(presence.peer_id, reason))
    for room in {presence.room_id: presence.room for presence in removed}.values():
        publish_lobby_room(room)
    return removed


# --- Chat -----------------------------------------------------------------------------


class ChatRejected(ValueError):  # noqa: N818 - a refusal, not a programming error
    pass


def post_chat(*, room_id: int, user: User, author_name: str, body: str) -> ChatMessage:
    """Store a chat message. It is broadcast only after this returns, so every message
    anyone saw is in the database."""
    body = body.strip()
    if not body:
        raise ChatRejected("empty")
    if len(body) > CHAT_MAX_LENGTH:
        raise ChatRejected("too long")
    message = ChatMessage.objects.create(
        room_id=room_id, author=user, author_name=author_name, body=body
    )
    Room.objects.filter(pk=room_id).update(last_activity_at=message.sent_at)
    return message


def unpost_chat(message_id: int) -> None:
    """Take back a stored message that could not be delivered to the room (the channel
    layer failed), so that no message is kept that its sender was told failed."""
    ChatMessage.objects.filter(pk=message_id).delete()


def chat_history(
    room: Room, *, before: int | None = None, limit: int | None = None
) -> list[ChatMessage]:
    """The last `limit` visible messages (before a message id, for older pages), oldest first."""
    limit = limit or settings.CHAT_HISTORY_SIZE
    messages = ChatMessage.objects.visible().filter(room=room)
    if before is not None:
        messages = messages.filter(id__lt=before)
    return list(reversed(messages.order_by("-id")[:limit]))


# --- The lobby ------------------------------------------------------------------------


def room_summary(room: Room) -> dict[str, Any]:
    """What the lobby shows of a room, for the page and for live updates alike."""
    # .all() so that lobby_rooms' prefetch serves it (Presence is ordered by joined_at).
    names = [presence.name for presence in room.presences.all()]
    return {
        "slug": room.slug,
        "name": room.name,
        "url": f"/rooms/{room.slug}/",
        "kind": room.kind,
        "media": room.media,
        "is_private": room.is_private,
        "is_locked": room.is_locked,
        "is_open": room.is_open,
        "capacity": room.capacity,
        "occupancy": len(names),
        "names": names,
        "last_activity_at": room.last_activity_at.isoformat(),
    }


def lobby_rooms() -> list[dict[str, Any]]:
    rooms = Room.objects.open().prefetch_related("presences").order_by("-last_activity_at")
    return [room_summary(room) for room in rooms]


def publish_lobby_room(room: Room) -> None:
    """Tell every lobby page that a room changed (created, someone came or went, closed)."""
    _tell(events.LOBBY_GROUP, events.lobby_room(room_summary(room)))


def _tell(group: str, event: events.RoomEvent) -> None:
    """Publish after the database has changed. The change stands whether or not the
    channel layer takes the event: raising here would make a caller believe that a
    committed join, leave or sweep did not happen. A lobby page catches up at the next
    change or load; a call whose Redis is down has lost its signaling anyway."""
    try:
        events.publish(group, event)
    except Exception as failure:
        logger.warning(
            "could not publish %s to %s: %s: %s",
            event["type"],
            group,
            type(failure).__name__,
            failure,
        )
