"""Who may enter a room and who moderates it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User
    from django.contrib.sessions.backends.base import SessionBase

    from rooms.models import Room

SESSION_KEY = "confab_room_access"


def grant_access(session: SessionBase, room: Room) -> None:
    """Remember in the session that this browser gave a private room's password."""
    granted = set(session.get(SESSION_KEY, []))
    granted.add(room.pk)
    session[SESSION_KEY] = sorted(granted)


def is_moderator(room: Room, user: User | AnonymousUser, *, listed: bool | None = None) -> bool:
    """The owner, staff, and whoever the owner made a moderator of this room. `listed`:
    whether the user is among the room's moderators, if the caller has read it already."""
    if not user.is_authenticated:
        return False
    if user.is_staff or room.owner_id == user.pk:
        return True
    if listed is not None:
        return listed
    return room.moderators.filter(user=user).exists()


def may_promote(room: Room, user: User | AnonymousUser) -> bool:
    """Making moderators is for the room's owner and staff, not for the moderators they
    made: a promoted moderator cannot hand the power on."""
    return user.is_authenticated and (user.is_staff or room.owner_id == user.pk)


def gave_password(session: SessionBase, room: Room) -> bool:
    return room.pk in session.get(SESSION_KEY, [])


def has_access(session: SessionBase, room: Room, user: User | AnonymousUser) -> bool:
    """A public room is open to every signed-in user; a private one to its moderators and
    to sessions that gave the password."""
    if not user.is_authenticated:
        return False
    return not room.is_private or gave_password(session, room) or is_moderator(room, user)
