"""Small functions that carry out the rules about rooms.

Views, the admin and the signaling consumer call these; none of them decide on their own
who may join, how many fit or what a chat message may be. All of it is synchronous
Django ORM code: async callers run it on a database thread (signaling/db.py).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.text import slugify

from rooms import access, events, guests, sql, throttle, waiting
from rooms.models import (
    CHAT_MAX_LENGTH,
    MAX_CAPACITY,
    SFU_MAX_CAPACITY,
    ChatMessage,
    Knock,
    Presence,
    Profile,
    Room,
    RoomBan,
    RoomModerator,
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
    waiting_room: str = Room.Waiting.OFF,
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
        waiting_room=waiting_room,
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
    # A guest (rooms/guests.py) may enter their own room only, and only until their visit
    # ends (they pressed Leave, were banned, or their link was revoked with its guests).
    GUEST_OTHER_ROOM = "guest_other_room"
    GUEST_ENDED = "guest_ended"

    def __init__(self, reason: str, **data: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        # What the page needs to word it: occupancy and capacity of a full room, the
        # expiry of a ban (`until`, ISO 8601 or None).
        self.data = data


@dataclass
class Joined:
    """A seat taken (or taken back). What the welcome needs besides is read after the
    caller listens to the room (welcome_facts), outside the transaction that held the room
    row locked: each statement in there is one more wait for every join into that room."""

    room: Room
    presence: Presence
    resume_token: str = ""
    resumed: bool = False


@dataclass
class WelcomeFacts:
    peers: list[Presence]  # everyone else in the room, oldest first
    history: list[dict[str, object]]  # the chat's last messages, oldest first, as events
    waiting: list[dict[str, object]]  # the waiting-room queue, for a moderator

    def lobby(self, room: Room, me: Presence) -> events.LobbyRoom:
        """The room's lobby summary with the newcomer in it, from the rows read for the
        welcome (a query fewer per join); published by the caller with announce()."""
        return events.lobby_room(room_summary(room, names=[p.name for p in [*self.peers, me]]))


@dataclass
class Knocked:
    """The room asks this person to wait for a moderator (rooms/waiting.py): no seat."""

    room: Room
    knock: Knock
    queue: list[dict[str, object]]  # for the moderators, published by the caller


@dataclass
class Left:
    presence: Presence
    lobby: events.LobbyRoom  # for the lobby pages, published by the caller as Joined.lobby


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
) -> Joined | Knocked:
    """Admit a connection to a room, ask it to wait (the room's waiting room), or raise
    JoinRefused.

    The seat count and the new presence row are one transaction with the room row locked
    (PostgreSQL: SELECT ... FOR UPDATE; SQLite: the transaction is IMMEDIATE, see settings),
    so concurrent joins on any number of workers never exceed the capacity.
    """
    if not user.is_authenticated:
        raise JoinRefused(JoinRefused.NOT_SIGNED_IN)
    # Counted before anything else, so refused attempts count too (a reconnect loop).
    if throttle.hit("join", str(user.pk), window=60) > settings.JOINS_PER_MINUTE:
        raise JoinRefused(JoinRefused.TOO_MANY_JOINS)
    guest_room = guests.guest_room_id(session)
    with transaction.atomic():
        locked = _lock_for_admission(slug, user.pk)
        if locked is None or not locked[0].is_open:
            raise JoinRefused(JoinRefused.NOT_FOUND)
        room, facts = locked
        moderator = access.is_moderator(room, user, listed=facts.user_is_listed_moderator)
        if facts.user_is_banned:
            ends = banned_until(room, user.pk)
            raise JoinRefused(JoinRefused.BANNED, until=ends.isoformat() if ends else None)
        # After the ban: a banned guest's visit has ended too, and the ban says more.
        if guest_room is not None:
            if guest_room != room.pk:
                raise JoinRefused(JoinRefused.GUEST_OTHER_ROOM)
            if guests.visit_ended(user.pk):
                raise JoinRefused(JoinRefused.GUEST_ENDED)
        if room.is_private and not (moderator or access.gave_password(session, room)):
            raise JoinRefused(JoinRefused.PASSWORD_REQUIRED)
        if room.is_locked and not moderator:
            raise JoinRefused(JoinRefused.LOCKED)
        is_guest = guest_room is not None
        if waiting.must_wait(room, moderator=moderator, is_guest=is_guest):
            # Before the capacity: a waiting person holds no seat, so a full room only
            # matters when a moderator lets them in (rooms/waiting.py).
            knock = waiting.knock(room, user, channel_name=channel_name, is_guest=is_guest)
            return Knocked(room=room, knock=knock, queue=waiting.queue(room.pk))
        occupancy = facts.occupancy
        if occupancy >= room.capacity:
            raise JoinRefused(JoinRefused.FULL, occupancy=occupancy, capacity=room.capacity)
        at_room_limit = facts.user_connections_here >= settings.MAX_CONNECTIONS_PER_ROOM
        at_user_limit = facts.user_connections >= settings.MAX_CONNECTIONS_PER_USER
        if (at_room_limit or at_user_limit) and not _give_up_held_seat(
            user.pk, room=room if at_room_limit else None
        ):
            raise JoinRefused(JoinRefused.TOO_MANY_CONNECTIONS)
        presence, resume_token = take_seat(
            room,
            user,
            channel_name=channel_name,
            moderator=moderator,
            is_guest=is_guest,
            audio=audio,
            video=video,
            name=display_name(user, facts.profile_name),
        )
    return Joined(room=room, presence=presence, resume_token=resume_token)


def take_seat(
    room: Room,
    user: User,
    *,
    channel_name: str,
    moderator: bool,
    is_guest: bool,
    audio: bool = True,
    video: bool = True,
    name: str | None = None,
) -> tuple[Presence, str]:
    """The seat itself, and its resume token, inside a transaction that holds the room row
    locked and has counted a free seat: a join's, or a moderator's admission (each marks the
    room's activity as it locks it). `name`: the user's display name, if the caller has
    read it."""
    if room.media == Room.Media.SFU:
        _place_on_sfu(room)
    resume_token = secrets.token_urlsafe(24)
    presence = Presence(
        resume_key=_resume_key(resume_token),
        room=room,
        user=user,
        peer_id=new_peer_id(),
        channel_name=channel_name,
        name=name or display_name(user),
        audio=audio,
        video=video and room.kind != Room.Kind.VOICE,
        is_moderator=moderator,
        is_guest=is_guest,
    )
    return sql.insert(presence), resume_token


def admitted_seat(peer_id: str, channel_name: str) -> Joined | None:
    """A waiting socket that a moderator let in takes the seat made for it (with a resume
    token of its own: the one made at the admission never left the database thread). None
    if the seat went meanwhile (a moderator removed it, the sweeper took it)."""
    with transaction.atomic():
        presence = (
            Presence.objects.select_for_update()
            .select_related("room")
            .filter(peer_id=peer_id, channel_name=channel_name)
            .first()
        )
        if presence is None:
            return None
        resume_token = secrets.token_urlsafe(24)
        presence.resume_key = _resume_key(resume_token)
        presence.last_seen = timezone.now()
        presence.save(update_fields=["resume_key", "last_seen"])
    return Joined(room=presence.room, presence=presence, resume_token=resume_token)


def _give_up_held_seat(user_id: int, *, room: Room | None = None) -> bool:
    """At a limit of connections, a person coming back without their resume token (a
    socket that dropped before its welcome arrived, a reloaded tab, a tab closed while
    its network was away) takes the place of their own oldest seat held for resume: in
    `room` at the limit for one room, in any room at the limit for all of them. Held
    seats have no socket behind them; refusing the person for RESUME_GRACE over them
    would lock out someone the limit is not meant for. False if they hold no such seat.
    Inside the join transaction."""
    held_seats = Presence.objects.filter(user_id=user_id, detached_at__isnull=False)
    if room is not None:
        held_seats = held_seats.filter(room=room)
    held = held_seats.select_related("room").order_by("detached_at").first()
    # The DELETE checks again that the seat is held: its page may have resumed it since the
    # SELECT (a live seat must never go), or another join given it up a moment ago.
    if held is None or not held_seats.filter(pk=held.pk).delete()[0]:
        return False
    group, left = events.room_group(held.room_id), events.peer_left(held.peer_id, "disconnected")
    transaction.on_commit(lambda: _tell(group, left))
    if held.room_id != (room.pk if room else None):
        # Another room has one seat fewer; this one's summary goes out with the join.
        transaction.on_commit(lambda: publish_lobby_room(held.room))
    return True


@dataclass(frozen=True)
class _Admission:
    """What the door of a room knows of one user, read with the room row locked."""

    occupancy: int  # people in the room
    user_connections: int  # the user's, in every room
    user_connections_here: int
    user_is_listed_moderator: bool
    user_is_banned: bool
    profile_name: str | None  # the user's display name, if they have a profile


@functools.cache
def _admission_sql() -> str:
    """The door's facts in one statement, written in SQL rather than built with the ORM:
    building and compiling the same query as a queryset (six subqueries) cost 2.5 ms of
    Python per join, running it 0.4 ms (docs/performance.md). Plain SQL that SQLite and
    PostgreSQL both run; the active-ban rule is RoomBanQuerySet.active's, and
    test_the_doors_facts_agree_with_the_orm checks the two against each other."""
    presence = Presence._meta.db_table
    moderator = RoomModerator._meta.db_table
    ban = RoomBan._meta.db_table
    profile = Profile._meta.db_table
    # Only table names are formatted in (from the models); every value is a parameter.
    return (
        f"SELECT (SELECT COUNT(*) FROM {presence} WHERE room_id = %s),"  # noqa: S608
        f" (SELECT COUNT(*) FROM {presence} WHERE user_id = %s),"
        f" (SELECT COUNT(*) FROM {presence} WHERE room_id = %s AND user_id = %s),"
        f" EXISTS (SELECT 1 FROM {moderator} WHERE room_id = %s AND user_id = %s),"
        f" EXISTS (SELECT 1 FROM {ban} WHERE room_id = %s AND user_id = %s"
        " AND lifted_at IS NULL AND (expires_at IS NULL OR expires_at > %s)),"
        f" (SELECT display_name FROM {profile} WHERE user_id = %s)"
    )


def _lock_for_admission(slug: str, user_id: int) -> tuple[Room, _Admission] | None:
    """The room row, locked (and its activity marked), and what join_room decides on, in
    two statements (each round trip is one more wait that every join into this room queues
    behind).

    Not in one: PostgreSQL evaluates a query's subqueries on the snapshot taken when the
    query started, before it waited for the lock, so an occupancy counted beside the
    FOR UPDATE misses the joins that held the lock before us and a room overfills."""
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    # The lock is the UPDATE that marks the room's activity (the lobby's order): one
    # statement fewer than SELECT ... FOR UPDATE and a save; a refused join rolls it back.
    touched = Room.objects.raw(
        f"UPDATE {Room._meta.db_table} SET last_activity_at = %s WHERE slug = %s RETURNING *",  # noqa: S608
        [now, slug],
    )
    room = next(iter(touched), None)
    if room is None:
        return None
    ((here, everywhere, mine_here, listed, banned, profile_name),) = sql.rows(
        _admission_sql(),
        [room.pk, user_id, room.pk, user_id, room.pk, user_id, room.pk, user_id, now, user_id],
    )
    # SQLite answers EXISTS with 0 or 1.
    return room, _Admission(here, everywhere, mine_here, bool(listed), bool(banned), profile_name)


def banned_until(room: Room, user_id: int) -> datetime | None:
    """When the longest active ban of this user in this room ends (None: until lifted).
    Read only for a refusal: the door's facts say whether there is one (if it ran out in
    the moment since, the refusal stands and names no end)."""
    bans = RoomBan.objects.active().filter(room=room, user_id=user_id)
    ends = list(bans.values_list("expires_at", flat=True))
    if not ends or None in ends:
        return None
    return max(end for end in ends if end is not None)


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
    return Joined(room=presence.room, presence=presence, resume_token=token, resumed=True)


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


@functools.cache
def _leave_sql() -> tuple[str, str, str]:
    """leave_room's statements in plain SQL, as the join's (rooms/sql.py): every leave
    runs them. test_a_leave_reads_the_room_as_the_orm_does compares them."""
    presence, room = Presence._meta.db_table, Room._meta.db_table
    return (
        f"DELETE FROM {presence} WHERE peer_id = %s AND channel_name = %s RETURNING *",  # noqa: S608
        f"SELECT * FROM {room} WHERE id = %s",  # noqa: S608
        f"SELECT name FROM {presence} WHERE room_id = %s ORDER BY joined_at, id",  # noqa: S608
    )


def leave_room(peer_id: str, channel_name: str) -> Left | None:
    """Remove a connection's seat. Returns the removed row, or None if it was gone already
    (kicked, swept) or taken over by a resumed connection: leaving twice is harmless."""
    delete, room_row, names = _leave_sql()
    # One DELETE ... RETURNING finds and removes the row: only the caller whose DELETE
    # removed it goes on to announce it.
    presence = next(iter(Presence.objects.raw(delete, [peer_id, channel_name])), None)
    if presence is None:
        return None
    room = next(iter(Room.objects.raw(room_row, [presence.room_id])))
    summary = room_summary(room, names=[name for (name,) in sql.rows(names, [room.pk])])
    return Left(presence=presence, lobby=events.lobby_room(summary))


def leave_by_token(*, slug: str, user: User | AnonymousUser, token: str) -> bool:
    """A page going away whose socket the browser already shut (Firefox does so before
    `pagehide`): its beacon, with the seat's resume token, gives the seat up at once as
    `leave` would, instead of holding it for RESUME_GRACE (the reloaded page would meet its
    own seat as someone else). Only the page that got the token can. False: no such seat
    (`leave` came first, or it is gone)."""
    if not user.is_authenticated or not token:
        return False
    seat = (
        Presence.objects.select_related("room")
        .filter(resume_key=_resume_key(token), user_id=user.pk, room__slug=slug)
        .first()
    )
    if seat is None or not Presence.objects.filter(pk=seat.pk).delete()[0]:
        return False
    _tell(events.room_group(seat.room_id), events.peer_left(seat.peer_id, "left"))
    publish_lobby_room(seat.room)
    return True


@functools.cache
def _welcome_sql() -> tuple[str, str]:
    """The welcome's two reads in plain SQL (rooms/sql.py): everyone else in the room,
    oldest first, and chat_history's last visible messages (newest first here).
    test_the_welcome_lists_what_the_orm_does compares them with the ORM's."""
    presence, message = Presence._meta.db_table, ChatMessage._meta.db_table
    return (
        f"SELECT * FROM {presence} WHERE room_id = %s AND NOT peer_id = %s"  # noqa: S608
        " ORDER BY joined_at, id",
        f"SELECT id, author_name, body, sent_at FROM {message}"  # noqa: S608
        " WHERE room_id = %s AND hidden_at IS NULL ORDER BY id DESC LIMIT %s",
    )


def welcome_facts(room: Room, *, exclude: str, moderator: bool = False) -> WelcomeFacts:
    """What a seated connection's welcome lists besides itself, read in one database call
    once it listens to the room (and the waiting queue, if it is a moderator's).

    Read after the newcomer listens to the room's group (signaling.consumers), so that
    someone admitted between our join and our subscription is listed here, and anyone
    admitted later announces themselves to us. Outside the join's transaction, a failure
    here still frees the seat: the consumer gives it up and closes (signaling.consumers,
    `fail`)."""
    peers_sql, history_sql = _welcome_sql()
    sent_at = sql.converter(ChatMessage, "sent_at")
    history = [
        {"id": pk, "name": name, "body": body, "sent_at": sent_at(sent).isoformat()}
        for pk, name, body, sent in reversed(
            sql.rows(history_sql, [room.pk, settings.CHAT_HISTORY_SIZE])
        )
    ]
    return WelcomeFacts(
        peers=list(Presence.objects.raw(peers_sql, [room.pk, exclude])),
        history=history,
        waiting=waiting.queue(room.pk) if moderator else [],
    )


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


def room_summary(room: Room, *, names: list[str] | None = None) -> dict[str, Any]:
    """What the lobby shows of a room, for the page and for live updates alike. `names`:
    who is in it, oldest first, if the caller has read them already."""
    if names is None:
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
        _not_told(group, event, failure)


async def announce(group: str, event: events.RoomEvent) -> None:
    """_tell, for the consumer: the event of a change it made on a database thread."""
    try:
        await events.apublish(group, event)
    except Exception as failure:
        _not_told(group, event, failure)


def _not_told(group: str, event: events.RoomEvent, failure: Exception) -> None:
    logger.warning(
        "could not publish %s to %s: %s: %s",
        event["type"],
        group,
        type(failure).__name__,
        failure,
    )
