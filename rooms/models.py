"""Rooms, chat, presence, bans and the moderation log.

The rules that must hold whatever client talks to us live here and in services.py,
and where a database can hold a rule (unique slugs, capacity bounds, chat length) it
is a constraint, so a bug in a form or a consumer cannot break it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Length
from django.db.models.lookups import GreaterThanOrEqual, LessThanOrEqual
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from rooms.events import PeerInfo

MIN_CAPACITY = 2
# A mesh sends every stream to every other person: past a dozen people upload bandwidth
# and CPU run out in ordinary browsers (docs/architecture.md).
MAX_CAPACITY = 12
# Through the SFU each browser sends one stream and receives the others' (simulcast layers
# chosen per tile): the browsers' decoders, not the upload, set the limit.
SFU_MAX_CAPACITY = 50
CHAT_MAX_LENGTH = 2000


class Profile(models.Model):
    """What Confab keeps about a person beyond Django's user: the name shown in calls."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    display_name = models.CharField(_("display name"), max_length=60)

    def __str__(self) -> str:
        return self.display_name


def display_name(user: User, profile_name: str | None = None) -> str:
    """The name shown to others: the profile's, or the username for accounts made by hand.
    `profile_name`: the profile's display name, if the caller read it already (the join
    does, with the room's other facts)."""
    if profile_name is None:
        profile = getattr(user, "profile", None)
        profile_name = profile.display_name if profile is not None else None
    return str(profile_name) if profile_name else user.get_username()


class RoomQuerySet(models.QuerySet["Room"]):
    def open(self) -> RoomQuerySet:
        return self.filter(closed_at__isnull=True)


class Room(models.Model):
    class Kind(models.TextChoices):
        VIDEO = "video", _("Video")
        VOICE = "voice", _("Voice only")

    name = models.CharField(_("name"), max_length=80)
    slug = models.SlugField(_("slug"), max_length=64, unique=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="owned_rooms"
    )

    class Media(models.TextChoices):
        MESH = "mesh", _("Peer to peer (up to 12)")
        SFU = "sfu", _("Through the media server (up to 50)")

    capacity = models.PositiveSmallIntegerField(_("capacity"), default=6)
    kind = models.CharField(_("kind"), max_length=5, choices=Kind.choices, default=Kind.VIDEO)
    media = models.CharField(
        _("media path"), max_length=4, choices=Media.choices, default=Media.MESH
    )
    # SFU rooms only: the Janus server (a JANUS_URLS entry) the room was given at its first
    # join, and the Janus room's secret, which only Confab's workers ever see.
    sfu_server = models.CharField(_("SFU server"), max_length=200, blank=True, editable=False)
    sfu_secret = models.CharField(max_length=64, blank=True, editable=False)
    # The Janus VideoRoom id, random like the secret: a room id from another Confab (or a
    # database restored from a backup) sharing the Janus can never name this room.
    sfu_room = models.BigIntegerField(default=0, editable=False)
    is_private = models.BooleanField(_("private"), default=False)
    # A Django password hash (never the password itself); empty for public rooms.
    password = models.CharField(_("password"), max_length=128, blank=True)
    is_locked = models.BooleanField(_("locked"), default=False)

    class Waiting(models.TextChoices):
        OFF = "off", _("Nobody waits")
        GUESTS = "guests", _("Guests wait to be let in")
        EVERYONE = "everyone", _("Everyone but moderators waits to be let in")

    # Who must be let in by a moderator (rooms/waiting.py).
    waiting_room = models.CharField(
        _("waiting room"), max_length=8, choices=Waiting.choices, default=Waiting.OFF
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    last_activity_at = models.DateTimeField(_("last activity"), default=timezone.now)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)

    objects = RoomQuerySet.as_manager()

    class Meta:
        ordering = ["-last_activity_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(capacity__gte=MIN_CAPACITY)
                & (
                    Q(capacity__lte=MAX_CAPACITY)
                    | (Q(media="sfu") & Q(capacity__lte=SFU_MAX_CAPACITY))
                ),
                name="room_capacity_in_range",
            ),
            models.CheckConstraint(condition=~Q(name=""), name="room_name_not_empty"),
            models.CheckConstraint(
                condition=Q(is_private=False) | ~Q(password=""),
                name="private_room_has_password",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    def set_password(self, raw_password: str) -> None:
        self.password = make_password(raw_password)

    def check_password(self, raw_password: str) -> bool:
        return bool(self.password) and check_password(raw_password, self.password)


class ChatMessageQuerySet(models.QuerySet["ChatMessage"]):
    def visible(self) -> ChatMessageQuerySet:
        return self.filter(hidden_at__isnull=True)


class ChatMessage(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_messages"
    )
    # The author's display name when the message was sent, so history reads as it did.
    author_name = models.CharField(max_length=60)
    body = models.TextField(_("message"), max_length=CHAT_MAX_LENGTH)
    sent_at = models.DateTimeField(default=timezone.now)
    # Moderation hides, never deletes: the row stays as the audit trail.
    hidden_at = models.DateTimeField(null=True, blank=True)
    hidden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    objects = ChatMessageQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["room", "id"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(GreaterThanOrEqual(Length("body"), 1))
                & Q(LessThanOrEqual(Length("body"), CHAT_MAX_LENGTH)),
                name="chat_body_length",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.author_name}: {self.body[:40]}"

    def as_event(self) -> dict[str, object]:
        """The `chat` message of docs/protocol.md, less the sender's peer id."""
        return {
            "id": self.pk,
            "name": self.author_name,
            "body": self.body,
            "sent_at": self.sent_at.isoformat(),
        }


class Presence(models.Model):
    """One live websocket connection in a room. Rows are the truth about who is in a room:
    every worker counts seats and lists peers from here."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="presences")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="presences"
    )
    peer_id = models.CharField(max_length=32, unique=True)
    channel_name = models.CharField(max_length=200)
    name = models.CharField(max_length=60)
    audio = models.BooleanField(default=True)
    video = models.BooleanField(default=True)
    screen = models.BooleanField(default=False)
    is_moderator = models.BooleanField(default=False)
    joined_at = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now, db_index=True)
    # Reconnecting within RESUME_GRACE seconds with the token from `welcome` takes the same
    # seat and peer id back. Only the token's hash is stored.
    resume_key = models.CharField(max_length=64, unique=True, null=True, blank=True)
    # Set when the socket dropped without `leave`: the seat is held for RESUME_GRACE seconds.
    detached_at = models.DateTimeField(null=True, blank=True)
    # A raised hand (rooms/meeting.py): when it went up, the order of the room's queue.
    hand_raised_at = models.DateTimeField(null=True, blank=True)
    # This seat's page is recording the meeting (rooms/meeting.py), since then.
    recording_since = models.DateTimeField(null=True, blank=True)
    # Came in by an invite link, without an account (rooms/guests.py): shown as "guest".
    is_guest = models.BooleanField(default=False)

    class Meta:
        ordering = ["joined_at", "id"]
        verbose_name_plural = "presences"

    def __str__(self) -> str:
        return f"{self.name} in {self.room}"

    def as_recording(self) -> dict[str, str | None]:
        """The `recording` message's fields (docs/protocol.md)."""
        since = self.recording_since.isoformat() if self.recording_since else None
        return {"peer_id": self.peer_id, "name": self.name, "since": since}

    def as_peer(self) -> PeerInfo:
        return {
            "peer_id": self.peer_id,
            "name": self.name,
            "media": {"audio": self.audio, "video": self.video, "screen": self.screen},
            "hand": self.hand_raised_at.isoformat() if self.hand_raised_at else None,
            "is_moderator": self.is_moderator,
            "is_guest": self.is_guest,
        }


class RoomBanQuerySet(models.QuerySet["RoomBan"]):
    def active(self, now: datetime | None = None) -> RoomBanQuerySet:
        now = now or timezone.now()
        return self.filter(lifted_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        )


class RoomBan(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="bans")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="room_bans"
    )
    banned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    lifted_at = models.DateTimeField(null=True, blank=True)
    # A banned guest's browser (the hash of its Guest.browser_key): a guest has no account
    # to come back with, so the ban holds against the browser on every link to the room.
    browser_key = models.CharField(max_length=64, blank=True, db_index=True)

    objects = RoomBanQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.user} banned from {self.room}"


class RoomModerator(models.Model):
    """Someone the owner made a moderator of one room (owners and staff always are)."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="moderators")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="moderated_rooms"
    )
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "user"], name="one_moderator_grant_per_room")
        ]

    def __str__(self) -> str:
        return f"{self.user} moderates {self.room}"


class ModerationAction(models.Model):
    """The audit trail: every moderation act, whoever did it and from wherever."""

    class Kind(models.TextChoices):
        KICK = "kick", _("Kick")
        BAN = "ban", _("Ban")
        UNBAN = "unban", _("Lift ban")
        MUTE = "mute", _("Mute request")
        STOP_VIDEO = "stop_video", _("Stop-video request")
        LOCK = "lock", _("Lock")
        UNLOCK = "unlock", _("Unlock")
        END = "end", _("End meeting")
        HIDE_MESSAGE = "hide_message", _("Hide message")
        PROMOTE = "promote", _("Make moderator")
        LOWER_HAND = "lower_hand", _("Lower hand")
        ADMIT = "admit", _("Let in from the waiting room")
        DECLINE = "decline", _("Not let in from the waiting room")
        WAITING_ROOM = "waiting_room", _("Waiting room setting")
        INVITE = "invite", _("Invite link made")
        REVOKE_INVITE = "revoke_invite", _("Invite link revoked")

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="moderation_actions")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    target_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    target_message = models.ForeignKey(
        ChatMessage, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reason = models.CharField(max_length=200, blank=True)
    source = models.CharField(max_length=8, choices=[("call", "call"), ("admin", "admin")])
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} in {self.room}"


class Invite(models.Model):
    """A link that lets people without an account into one room (rooms/guests.py). Only
    the SHA-256 of its secret is kept: the link is shown once, to whoever made it."""

    class State(models.TextChoices):
        VALID = "valid", _("Valid")
        EXPIRED = "expired", _("Expired")
        REVOKED = "revoked", _("Revoked")
        USED_UP = "used_up", _("Used up")

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="invites")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    secret_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires"))
    # None: as many guests as the link reaches until it expires.
    max_uses = models.PositiveIntegerField(_("uses allowed"), null=True, blank=True)
    uses = models.PositiveIntegerField(_("used"), default=0, editable=False)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(max_uses__isnull=True) | Q(uses__lte=F("max_uses")),
                name="invite_uses_within_limit",
            ),
        ]

    def __str__(self) -> str:
        return f"invite to {self.room} ({self.state()})"

    def state(self, now: datetime | None = None) -> str:
        if self.revoked_at is not None:
            return self.State.REVOKED
        if self.expires_at <= (now or timezone.now()):
            return self.State.EXPIRED
        if self.max_uses is not None and self.uses >= self.max_uses:
            return self.State.USED_UP
        return self.State.VALID

    def as_item(self) -> dict[str, object]:
        """The invite list of the call page (views.room_invites)."""
        return {
            "id": self.pk,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "max_uses": self.max_uses,
            "uses": self.uses,
            "state": self.state(),
        }


class Guest(models.Model):
    """Someone who came in by an invite: a Django user without a usable password, who may
    enter `room` only, until their visit ends (they leave, are removed or banned, or the
    link is revoked with its guests)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="guest"
    )
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="guests")
    invite = models.ForeignKey(Invite, on_delete=models.SET_NULL, null=True, related_name="guests")
    # The SHA-256 of the browser's confab_browser cookie, for bans (RoomBan.browser_key).
    browser_key = models.CharField(max_length=64, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"guest {self.user} in {self.room}"


class Knock(models.Model):
    """Someone in a room's waiting room (rooms/waiting.py): a socket that passed the door's
    checks and waits for a moderator. It holds no seat; admitting it makes its Presence."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="knocks")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="knocks"
    )
    # What moderators are shown, and how the admission reaches the waiting socket.
    waiting_id = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=60)
    is_guest = models.BooleanField(default=False)
    channel_name = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.name} waiting for {self.room}"

    def as_item(self) -> dict[str, object]:
        """One entry of the `waiting-room` queue (docs/protocol.md)."""
        return {
            "waiting_id": self.waiting_id,
            "name": self.name,
            "is_guest": self.is_guest,
            "since": self.created_at.isoformat(),
        }
