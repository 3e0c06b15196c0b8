"""The waiting room: people a room asks to wait until a moderator lets them in.

A room's `waiting_room` setting says who waits: nobody, guests, or everyone but its
moderators. Someone who must wait passes the door's other checks first (ban, guest,
password, lock: rooms/services.py join_room), then gets a Knock instead of a seat. A Knock
holds no seat: the capacity is checked when a moderator admits it, in one transaction with
the room row locked, as for any join, so admissions on any number of workers never
overfill a room. The admission makes the Presence itself, with the waiting socket's
channel name, and tells that socket (on whichever worker holds it) through the channel
layer; the socket then takes the seat (services.admitted_seat) and is welcomed.

docs/protocol.md, "The waiting room", is the contract.
"""

from __future__ import annotations

import contextlib
import secrets
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from rooms import events
from rooms.models import Knock, ModerationAction, Presence, Room, display_name

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from rooms.moderation import Actor


class RoomFull(Exception):  # noqa: N818 - a refusal, not a programming error
    """An admission found no free seat; whoever it was for keeps waiting."""

    detail = "full"


class NotWaiting(Exception):  # noqa: N818 - a refusal, not a programming error
    detail = "no_waiting"


def must_wait(room: Room, *, moderator: bool, is_guest: bool) -> bool:
    if moderator or room.waiting_room == Room.Waiting.OFF:
        return False
    return room.waiting_room == Room.Waiting.EVERYONE or is_guest


def knock(room: Room, user: User, *, channel_name: str, is_guest: bool) -> Knock:
    """Start waiting (inside the join's transaction)."""
    return Knock.objects.create(
        room=room,
        user=user,
        waiting_id=secrets.token_urlsafe(12),
        name=display_name(user),
        is_guest=is_guest,
        channel_name=channel_name,
    )


def queue(room_id: int) -> list[dict[str, object]]:
    """The `waiting-room` queue: who waits for this room, oldest first."""
    return [entry.as_item() for entry in Knock.objects.filter(room_id=room_id)]


def moderators_present(room_id: int) -> bool:
    """Whether someone who can let people in is in the call (a live seat, not a held one)."""
    return Presence.objects.filter(
        room_id=room_id, is_moderator=True, detached_at__isnull=True
    ).exists()


def withdraw(channel_name: str) -> int | None:
    """A waiting socket closed: it leaves the queue. If a moderator admitted it a moment
    before (the admission's message had not reached it), the seat made for it goes too.
    Returns the room whose queue changed, or None."""
    from rooms import services  # services imports this module

    gone = Knock.objects.filter(channel_name=channel_name).first()
    if gone is not None and Knock.objects.filter(pk=gone.pk).delete()[0]:
        return gone.room_id
    seat = Presence.objects.filter(channel_name=channel_name).first()
    if seat is not None and services.leave_room(seat.peer_id, channel_name) is not None:
        group = events.room_group(seat.room_id)
        events.publish(group, events.peer_left(seat.peer_id, "left"))
        services.publish_lobby_room(seat.room)
    return None


def _require_moderator(room: Room, actor: Actor) -> None:
    from rooms import moderation  # moderation imports services, which imports this module

    moderation._require_moderator(room, actor)


def _record(room: Room, actor: Actor, kind: str, target: User | None = None) -> None:
    from rooms import moderation

    moderation._record(room, actor, kind, target=target)


def _admit_one(room: Room, actor: Actor, entry: Knock) -> None:
    """Inside a transaction holding the room row locked: seat `entry` if a seat is free."""
    from rooms import services

    if Presence.objects.filter(room=room).count() >= room.capacity:
        raise RoomFull(f"the room is full ({room.capacity})")
    presence, _token = services.take_seat(
        room, entry.user, channel_name=entry.channel_name, moderator=False, is_guest=entry.is_guest
    )
    room.last_activity_at = timezone.now()  # the lobby's order, as a join marks it
    room.save(update_fields=["last_activity_at"])
    entry.delete()
    _record(room, actor, ModerationAction.Kind.ADMIT, entry.user)
    admitted = events.waiting_admitted(presence.peer_id)
    transaction.on_commit(lambda: events.send(entry.channel_name, admitted))


def _changed(room: Room) -> None:
    """After the commit: the moderators' queue, and the lobby's count."""
    from rooms import services

    changed = events.waiting_changed(queue(room.pk))
    transaction.on_commit(lambda: events.publish(events.room_group(room.pk), changed))
    transaction.on_commit(lambda: services.publish_lobby_room(room))


def _waiting(room: Room, waiting_id: str) -> Knock:
    """The waiting person a moderator names, locked until the admission or decline commits
    (two moderators clicking at once: the second finds nobody)."""
    entry = (
        Knock.objects.select_for_update()
        .select_related("user")
        .filter(room=room, waiting_id=waiting_id)
        .first()
    )
    if entry is None:
        raise NotWaiting("nobody with this waiting_id waits for this room")
    return entry


def admit(room: Room, actor: Actor, *, waiting_id: str) -> None:
    with transaction.atomic():
        _require_moderator(room, actor)
        room = Room.objects.select_for_update().get(pk=room.pk)
        _admit_one(room, actor, _waiting(room, waiting_id))
        _changed(room)


def admit_all(room: Room, actor: Actor) -> int:
    """Let the waiting people in, oldest first, while seats are free. RoomFull (after the
    ones that fitted are in) if some had to keep waiting."""
    with transaction.atomic():
        _require_moderator(room, actor)
        room = Room.objects.select_for_update().get(pk=room.pk)
        entries = list(Knock.objects.select_for_update().select_related("user").filter(room=room))
        let_in = 0
        for entry in entries:
            try:
                _admit_one(room, actor, entry)
            except RoomFull:
                break
            let_in += 1
        if entries:
            _changed(room)
    if let_in < len(entries):
        raise RoomFull(f"{len(entries) - let_in} could not be let in: the room is full")
    return let_in


def decline(room: Room, actor: Actor, *, waiting_id: str) -> None:
    with transaction.atomic():
        _require_moderator(room, actor)
        entry = _waiting(room, waiting_id)
        entry.delete()
        _record(room, actor, ModerationAction.Kind.DECLINE, entry.user)
        declined = events.waiting_declined()
        transaction.on_commit(lambda: events.send(entry.channel_name, declined))
        _changed(room)


def set_mode(room: Room, actor: Actor, mode: str) -> None:
    """Who waits from now on. Turning the waiting room off lets in whoever waits, as seats
    allow (the others keep waiting for a moderator's Admit)."""
    with transaction.atomic():
        _require_moderator(room, actor)
        Room.objects.filter(pk=room.pk).update(waiting_room=mode)
        room.waiting_room = mode
        _record(room, actor, ModerationAction.Kind.WAITING_ROOM)
        updated = events.room_updated(room.is_locked, mode)
        transaction.on_commit(lambda: events.publish(events.room_group(room.pk), updated))
    if mode == Room.Waiting.OFF:
        # Those who do not fit keep waiting; the moderators see them in the queue.
        with contextlib.suppress(RoomFull):
            admit_all(room, actor)
