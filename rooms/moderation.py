"""Moderation that the server enforces, from the call page and from the admin alike.

Each action changes the database first (seats, bans, flags), records itself in the audit
log, and then publishes a room event. The signaling consumers on every worker turn the
event into protocol messages and, for kicks, bans and the end of a meeting, close the
target's websocket themselves: nothing depends on the target's browser obeying.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from rooms import access, events, guests, meeting, services
from rooms.models import ChatMessage, ModerationAction, Presence, Room, RoomBan, RoomModerator

if TYPE_CHECKING:
    from django.contrib.auth.models import User

Kind = ModerationAction.Kind


class Refused(Exception):  # noqa: N818 - a refusal, not a programming error
    """A moderation action that was not carried out. `detail` is a stable name the page
    words (docs/protocol.md, "error"); the English message is for developers."""

    def __init__(self, detail: str, message: str) -> None:
        super().__init__(message)
        self.detail = detail


class Forbidden(Refused):
    NOT_MODERATOR = "not_moderator"
    NOT_OWNER = "not_owner"
    OWNER_PROTECTED = "owner_protected"
    GUEST = "guest"


class NotFound(Refused):
    NO_PEER = "no_peer"
    NO_MESSAGE = "no_message"


@dataclass(frozen=True)
class Actor:
    user: User
    source: str  # "call" or "admin"


def _record(
    room: Room,
    actor: Actor,
    kind: str,
    *,
    target: User | None = None,
    message: ChatMessage | None = None,
    reason: str = "",
) -> None:
    ModerationAction.objects.create(
        room=room,
        actor=actor.user,
        kind=kind,
        target_user=target,
        target_message=message,
        reason=reason[:200],
        source=actor.source,
    )


def _require_moderator(room: Room, actor: Actor) -> None:
    if not access.is_moderator(room, actor.user):
        raise Forbidden(Forbidden.NOT_MODERATOR, "only moderators of this room may do that")


def _room_presence(room: Room, peer_id: str) -> Presence:
    presence = Presence.objects.filter(room=room, peer_id=peer_id).select_related("user").first()
    if presence is None:
        raise NotFound(NotFound.NO_PEER, "no such peer in this room")
    return presence


def get_room(room_id: int) -> Room:
    return Room.objects.get(pk=room_id)


def _remove(
    room: Room,
    presences: list[Presence],
    reason: events.RemovedReason,
    until: datetime | None = None,
) -> None:
    """Free the seats, then tell every worker: the targets' consumers close their sockets."""
    if not presences:
        return
    Presence.objects.filter(pk__in=[p.pk for p in presences]).delete()
    event = events.peer_removed(
        [p.peer_id for p in presences], reason, until.isoformat() if until else None
    )
    transaction.on_commit(lambda: events.publish(events.room_group(room.pk), event))
    transaction.on_commit(lambda: services.publish_lobby_room(room))


# --- Acting on a person ----------------------------------------------------------------


def kick(
    room: Room,
    actor: Actor,
    *,
    peer_id: str | None = None,
    user: User | None = None,
    reason: str = "",
) -> None:
    """Close one connection (peer_id) or every connection of a user in this room. The kicked
    person may come back; a ban is what keeps them out."""
    with transaction.atomic():
        _require_moderator(room, actor)
        targets = _targets(room, peer_id=peer_id, user=user)
        if any(t.user_id == room.owner_id for t in targets):
            raise Forbidden(
                Forbidden.OWNER_PROTECTED, "the owner of a room cannot be removed from it"
            )
        _record(room, actor, Kind.KICK, target=targets[0].user if targets else user, reason=reason)
        _remove(room, targets, "kicked")


def ban(
    room: Room,
    actor: Actor,
    *,
    peer_id: str | None = None,
    user: User | None = None,
    reason: str = "",
    expires_at: datetime | None = None,
) -> RoomBan:
    with transaction.atomic():
        _require_moderator(room, actor)
        targets = _targets(room, peer_id=peer_id, user=user)
        banned_user = targets[0].user if targets else user
        if banned_user is None:
            raise NotFound(NotFound.NO_PEER, "no such peer in this room")
        if banned_user.pk == room.owner_id:
            raise Forbidden(
                Forbidden.OWNER_PROTECTED, "the owner of a room cannot be banned from it"
            )
        the_ban = RoomBan.objects.create(
            room=room,
            user=banned_user,
            banned_by=actor.user,
            reason=reason[:200],
            expires_at=expires_at,
            # A guest has no account to come back with: the ban holds against the browser.
            browser_key=guests.browser_key_of(banned_user.pk),
        )
        guests.end_visits([banned_user.pk])
        _record(room, actor, Kind.BAN, target=banned_user, reason=reason)
        everywhere = list(Presence.objects.filter(room=room, user=banned_user))
        _remove(room, everywhere, "banned", expires_at)
    return the_ban


def lift_ban(the_ban: RoomBan, actor: Actor) -> None:
    with transaction.atomic():
        _require_moderator(the_ban.room, actor)
        if the_ban.lifted_at is None:
            the_ban.lifted_at = timezone.now()
            the_ban.save(update_fields=["lifted_at"])
            _record(the_ban.room, actor, Kind.UNBAN, target=the_ban.user)


def _targets(room: Room, *, peer_id: str | None, user: User | None) -> list[Presence]:
    if peer_id is not None:
        return [_room_presence(room, peer_id)]
    if user is not None:
        return list(Presence.objects.filter(room=room, user=user).select_related("user"))
    raise NotFound(NotFound.NO_PEER, "name a peer or a user")


def request_media_off(room: Room, actor: Actor, *, peer_id: str, audio: bool) -> None:
    """Ask a participant to mute (audio=True) or stop their camera (audio=False).

    The server marks their state and their page complies, but a peer-to-peer stream cannot
    be cut by the server: someone who unmutes again is seen doing so by everyone, and the
    remedy is a kick or a ban (docs/moderation.md)."""
    with transaction.atomic():
        _require_moderator(room, actor)
        target = _room_presence(room, peer_id)
        if audio:
            target.audio = False
        else:
            target.video = False
        target.save(update_fields=["audio", "video"])
        _record(room, actor, Kind.MUTE if audio else Kind.STOP_VIDEO, target=target.user)
        event = events.peer_moderated(
            peer_id,
            "audio" if audio else "video",
            {"audio": target.audio, "video": target.video, "screen": target.screen},
        )
        transaction.on_commit(lambda: events.publish(events.room_group(room.pk), event))


def lower_hand(room: Room, actor: Actor, *, peer_id: str) -> None:
    """Lower someone's raised hand (they were heard, or it was left up)."""
    with transaction.atomic():
        _require_moderator(room, actor)
        target = _room_presence(room, peer_id)
        if target.hand_raised_at is None:
            return  # already down (they lowered it themselves a moment ago)
        meeting.set_hand(peer_id, raised=False)
        _record(room, actor, Kind.LOWER_HAND, target=target.user)
        event = events.peer_hand(peer_id, None, by_moderator=True)
        transaction.on_commit(lambda: events.publish(events.room_group(room.pk), event))


def promote(room: Room, actor: Actor, *, peer_id: str) -> None:
    """The owner (or staff) makes a participant a moderator of this room."""
    with transaction.atomic():
        if not access.may_promote(room, actor.user):
            raise Forbidden(Forbidden.NOT_OWNER, "only the owner of the room may make moderators")
        target = _room_presence(room, peer_id)
        if target.is_guest:
            # A guest holds one link's visit, not an account: moderating is for members.
            raise Forbidden(Forbidden.GUEST, "a guest cannot be made a moderator")
        RoomModerator.objects.get_or_create(
            room=room, user=target.user, defaults={"granted_by": actor.user}
        )
        Presence.objects.filter(room=room, user=target.user).update(is_moderator=True)
        _record(room, actor, Kind.PROMOTE, target=target.user)
        peer_ids = list(
            Presence.objects.filter(room=room, user=target.user).values_list("peer_id", flat=True)
        )
        transaction.on_commit(
            lambda: events.publish(events.room_group(room.pk), events.peer_promoted(peer_ids))
        )


# --- Acting on the room ----------------------------------------------------------------


def set_locked(room: Room, actor: Actor, locked: bool) -> None:
    with transaction.atomic():
        _require_moderator(room, actor)
        Room.objects.filter(pk=room.pk).update(is_locked=locked)
        room.is_locked = locked
        _record(room, actor, Kind.LOCK if locked else Kind.UNLOCK)
        transaction.on_commit(
            lambda: events.publish(
                events.room_group(room.pk), events.room_updated(locked, room.waiting_room)
            )
        )
        transaction.on_commit(lambda: services.publish_lobby_room(room))


def end_meeting(room: Room, actor: Actor, reason: str = "") -> None:
    """Close every connection and the room itself. History stays; nobody can join again."""
    with transaction.atomic():
        _require_moderator(room, actor)
        room.closed_at = timezone.now()
        room.save(update_fields=["closed_at"])
        _record(room, actor, Kind.END, reason=reason)
        Presence.objects.filter(room=room).delete()
        transaction.on_commit(
            lambda: events.publish(events.room_group(room.pk), events.room_ended())
        )
        transaction.on_commit(lambda: services.publish_lobby_room(room))


def hide_message(room: Room, actor: Actor, message_id: int) -> ChatMessage:
    """Hide a chat message everywhere at once. It stays in the database, with who hid it."""
    with transaction.atomic():
        _require_moderator(room, actor)
        message = ChatMessage.objects.filter(room=room, pk=message_id).first()
        if message is None:
            raise NotFound(NotFound.NO_MESSAGE, "no such chat message in this room")
        if message.hidden_at is None:
            message.hidden_at = timezone.now()
            message.hidden_by = actor.user
            message.save(update_fields=["hidden_at", "hidden_by"])
            _record(room, actor, Kind.HIDE_MESSAGE, target=message.author, message=message)
            transaction.on_commit(
                lambda: events.publish(events.room_group(room.pk), events.chat_hidden(message_id))
            )
    return message
