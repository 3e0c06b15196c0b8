"""Guests by invitation: links that let people without an account into one room.

A moderator makes an invite (from the call page or the admin). It expires, may be limited
to a number of uses and can be revoked; only the SHA-256 of its secret is stored, so a
database dump lets nobody in. Whoever opens a valid link picks a display name and becomes
a guest: a Django user with no usable password, signed in by this browser's session only,
who may enter that one room and nothing else (the lobby, other rooms and the account pages
refuse them: rooms/middleware.py, and the join in rooms/services.py). A guest counts against the
room's capacity, is rate-limited and moderated like everyone, and their visit ends when
they leave, are removed, are banned or their link is revoked with its guests.

docs/security.md, "Guests", says what this changes in the threat model.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from rooms import access, throttle
from rooms.models import Guest, Invite, ModerationAction, Presence, Profile, Room, RoomBan

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User
    from django.contrib.sessions.backends.base import SessionBase

# The session's note that it is a guest's: {"room": room pk, "guest": Guest pk}. Read on
# every request and join without a query, so members pay nothing for guests existing.
SESSION_KEY = "confab_guest"
# A random value per browser, kept for a year: what a guest ban holds against.
BROWSER_COOKIE = "confab_browser"
BROWSER_COOKIE_AGE = 365 * 24 * 3600
NAME_MAX_LENGTH = 60
DEFAULT_EXPIRY_HOURS = 24
MAX_EXPIRY_HOURS = 24 * 30
MAX_USES_LIMIT = 1000


class InviteRefused(Exception):  # noqa: N818 - a refusal, not a programming error
    """Why a link does not let someone in. Each is a stable name the invite page words."""

    UNKNOWN = "unknown"  # no such link (mistyped, or never made)
    EXPIRED = Invite.State.EXPIRED.value
    REVOKED = Invite.State.REVOKED.value
    USED_UP = Invite.State.USED_UP.value
    ROOM_CLOSED = "room_closed"
    BANNED = "banned"  # this browser is banned from the room
    TOO_MANY = "too_many"  # too many guests made from one address in an hour
    BAD_NAME = "bad_name"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InviteError(ValueError):
    """A moderator's request for a link that the rules do not allow (bad expiry or uses)."""


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def browser_key_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_browser_key() -> str:
    return secrets.token_urlsafe(24)


# --- Making and revoking links ---------------------------------------------------------------


def create_invite(
    room: Room,
    by: User,
    *,
    hours: int = DEFAULT_EXPIRY_HOURS,
    max_uses: int | None = None,
    source: str = "call",
) -> tuple[Invite, str]:
    """A new link to `room` made by one of its moderators: the row and the secret, which
    is never stored and so can be shown only now."""
    if not access.is_moderator(room, by):
        raise PermissionError("only moderators of this room may invite guests")
    if not 1 <= hours <= MAX_EXPIRY_HOURS:
        raise InviteError(f"a link lasts from 1 to {MAX_EXPIRY_HOURS} hours")
    if max_uses is not None and not 1 <= max_uses <= MAX_USES_LIMIT:
        raise InviteError(f"a link may be used from 1 to {MAX_USES_LIMIT} times")
    secret = secrets.token_urlsafe(24)
    with transaction.atomic():
        invite = Invite.objects.create(
            room=room,
            created_by=by,
            secret_hash=secret_hash(secret),
            expires_at=timezone.now() + timedelta(hours=hours),
            max_uses=max_uses,
        )
        ModerationAction.objects.create(
            room=room, actor=by, kind=ModerationAction.Kind.INVITE, source=source
        )
    return invite, secret


def revoke_invite(invite: Invite, by: User, *, remove_guests: bool, source: str = "call") -> int:
    """Stop a link letting anyone else in; with `remove_guests`, also end the visits of the
    guests it let in (their sockets close with `invite_revoked`). Returns how many guests'
    visits ended."""
    if not access.is_moderator(invite.room, by):
        raise PermissionError("only moderators of this room may revoke its links")
    with transaction.atomic():
        Invite.objects.filter(pk=invite.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        ModerationAction.objects.create(
            room=invite.room, actor=by, kind=ModerationAction.Kind.REVOKE_INVITE, source=source
        )
        if not remove_guests:
            return 0
        guests = list(Guest.objects.filter(invite=invite, ended_at__isnull=True))
        end_visits([guest.user_id for guest in guests])
        seats = list(
            Presence.objects.filter(room=invite.room, user_id__in=[g.user_id for g in guests])
        )
        from rooms import moderation  # moderation imports this module

        moderation._remove(invite.room, seats, "invite_revoked")
    return len(guests)


def room_invites(room: Room) -> list[Invite]:
    """The links of a room that still matter: valid ones, and the last day's others."""
    recent = timezone.now() - timedelta(days=1)
    return [
        invite
        for invite in room.invites.order_by("-created_at")[:50]
        if invite.state() == Invite.State.VALID or invite.created_at >= recent
    ]


# --- Using a link ------------------------------------------------------------------------------


def invite_for(secret: str) -> Invite:
    """The link named by `secret`, if it still lets people in; InviteRefused otherwise."""
    invite = Invite.objects.select_related("room").filter(secret_hash=secret_hash(secret)).first()
    if invite is None:
        raise InviteRefused(InviteRefused.UNKNOWN)
    _check(invite)
    return invite


def _check(invite: Invite) -> None:
    state = invite.state()
    if state != Invite.State.VALID:
        raise InviteRefused(state)
    if not invite.room.is_open:
        raise InviteRefused(InviteRefused.ROOM_CLOSED)


def _browser_banned(room: Room, browser_key: str) -> bool:
    return RoomBan.objects.active().filter(room=room, browser_key=browser_key).exists()


def check_browser(invite: Invite, raw_browser_key: str) -> None:
    """Refuse a browser banned from the invite's room before it is asked for a name."""
    if raw_browser_key and _browser_banned(invite.room, browser_key_hash(raw_browser_key)):
        raise InviteRefused(InviteRefused.BANNED)


@dataclass(frozen=True)
class Visit:
    guest: Guest
    user: User


def redeem(secret: str, *, name: str, raw_browser_key: str, address: str) -> Visit:
    """Make a guest of whoever holds the link: one use counted, in one transaction with the
    link's row locked, so a link for N guests lets in N and no more on any number of
    workers. The caller signs the returned user in (views.invite)."""
    name = " ".join(name.split())[:NAME_MAX_LENGTH]
    if not name:
        raise InviteRefused(InviteRefused.BAD_NAME)
    if throttle.hit("guest-address", address, 3600) > settings.GUESTS_PER_ADDRESS_PER_HOUR:
        raise InviteRefused(InviteRefused.TOO_MANY)
    browser_key = browser_key_hash(raw_browser_key)
    with transaction.atomic():
        invite = (
            Invite.objects.select_for_update()
            .select_related("room")
            .filter(secret_hash=secret_hash(secret))
            .first()
        )
        if invite is None:
            raise InviteRefused(InviteRefused.UNKNOWN)
        _check(invite)
        if _browser_banned(invite.room, browser_key):
            raise InviteRefused(InviteRefused.BANNED)
        Invite.objects.filter(pk=invite.pk).update(uses=F("uses") + 1)
        user: User = get_user_model().objects.create_user(
            username=f"guest-{secrets.token_hex(8)}", password=None
        )
        Profile.objects.create(user=user, display_name=name)
        guest = Guest.objects.create(
            user=user, room=invite.room, invite=invite, browser_key=browser_key
        )
    return Visit(guest=guest, user=user)


def needs_no_guest(invite: Invite, user: User | AnonymousUser, session: SessionBase) -> bool:
    """Whether this browser goes straight in without becoming a new guest: it is already
    this room's guest, with its visit still on, or it is a member's (who needs no guest
    account; the link stands for the room's password, granted here)."""
    guest_room = guest_room_id(session)
    if guest_room is not None:
        return guest_room == invite.room_id and not visit_ended(int(user.pk or 0))
    if user.is_authenticated:
        access.grant_access(session, invite.room)
        return True
    return False


def start_session(session: SessionBase, guest: Guest) -> None:
    """After the guest is signed in: note in the session which room is theirs, and that
    the invite stands for a private room's password."""
    session[SESSION_KEY] = {"room": guest.room_id, "slug": guest.room.slug, "guest": guest.pk}
    access.grant_access(session, guest.room)
    # The session ends with the browser (and after SESSION_COOKIE_AGE at the latest).
    session.set_expiry(0)


def guest_room_id(session: SessionBase) -> int | None:
    """The one room this session's guest may enter; None for a member's session."""
    note = session.get(SESSION_KEY)
    return int(note["room"]) if isinstance(note, dict) else None


def guest_room_slug(session: SessionBase) -> str | None:
    note = session.get(SESSION_KEY)
    return str(note["slug"]) if isinstance(note, dict) else None


def visit_ended(user_id: int) -> bool:
    """Whether this guest's visit is over (inside the join: one query, guests only)."""
    return Guest.objects.filter(user_id=user_id, ended_at__isnull=False).exists()


def end_visits(user_ids: list[int]) -> None:
    """End the visits of these guests, if they are guests: their session no longer enters
    the room. Called when a guest leaves, is removed or banned, or their link revoked."""
    if user_ids:
        Guest.objects.filter(user_id__in=user_ids, ended_at__isnull=True).update(
            ended_at=timezone.now()
        )


def browser_key_of(user_id: int) -> str:
    """A guest's browser (for a ban that must hold against it); "" for a member."""
    key = Guest.objects.filter(user_id=user_id).values_list("browser_key", flat=True).first()
    return key or ""


def leave(user: User | AnonymousUser, session: SessionBase) -> None:
    """A guest pressed Leave: the visit ends, and so does their session (the caller logs
    them out). A member's leave changes nothing here."""
    if user.is_authenticated and guest_room_id(session) is not None:
        end_visits([user.pk])
