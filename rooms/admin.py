"""The admin site: browse everything, and moderate live calls.

Admin actions call rooms.moderation like the call page does, so they are enforced by the
server, audited, and reach live calls on every worker through the channel layer.

Signing in to the admin (and changing one's password there) goes through the same sign-in
throttle as the site: see the end of this module.
"""

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from django import forms
from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from rooms import guests, moderation, views
from rooms.forms import InviteForm, ThrottledAdminLoginForm
from rooms.models import (
    ChatMessage,
    Guest,
    Invite,
    ModerationAction,
    Presence,
    Profile,
    Room,
    RoomBan,
    RoomModerator,
)

T = TypeVar("T", bound=Model)


def _each(
    modeladmin: admin.ModelAdmin[T],
    request: HttpRequest,
    queryset: QuerySet[T],
    act: Callable[[T, moderation.Actor], object],
    done: str,
) -> None:
    """Apply a moderation function to each selected object, reporting refusals."""
    actor = moderation.Actor(user=request.user, source="admin")  # type: ignore[arg-type]
    count = 0
    for obj in queryset:
        try:
            act(obj, actor)
        except (moderation.Forbidden, moderation.NotFound) as problem:
            modeladmin.message_user(request, f"{obj}: {problem}", messages.ERROR)
        else:
            count += 1
    if count:
        modeladmin.message_user(request, done % {"count": count}, messages.SUCCESS)


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin[Profile]):
    list_display = ["display_name", "user"]
    search_fields = ["display_name", "user__username"]


class PresenceInline(admin.TabularInline[Presence, Room]):
    model = Presence
    fields = ["name", "user", "peer_id", "joined_at", "last_seen"]
    readonly_fields = ["name", "user", "peer_id", "joined_at", "last_seen"]
    extra = 0
    can_delete = False


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin[Room]):
    actions = ["lock_rooms", "unlock_rooms", "end_meetings"]
    list_display = [
        "name",
        "live_participants",
        "slug",
        "owner",
        "kind",
        "capacity",
        "is_private",
        "is_locked",
        "created_at",
        "closed_at",
    ]
    list_filter = ["kind", "is_private", "is_locked", ("closed_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "slug", "owner__username"]
    readonly_fields = ["slug", "password", "created_at", "last_activity_at"]
    inlines = [PresenceInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Room]:
        return super().get_queryset(request).prefetch_related("presences")

    @admin.display(description=_("in the call now"))
    def live_participants(self, room: Room) -> str:
        names = [p.name for p in room.presences.all()]
        return f"{len(names)} / {room.capacity}: {', '.join(names)}" if names else "-"

    @admin.action(description=_("Lock the selected rooms (no new joins)"))
    def lock_rooms(self, request: HttpRequest, queryset: QuerySet[Room]) -> None:
        _each(
            self,
            request,
            queryset,
            lambda r, a: moderation.set_locked(r, a, True),
            "Locked %(count)d room(s).",
        )

    @admin.action(description=_("Unlock the selected rooms"))
    def unlock_rooms(self, request: HttpRequest, queryset: QuerySet[Room]) -> None:
        _each(
            self,
            request,
            queryset,
            lambda r, a: moderation.set_locked(r, a, False),
            "Unlocked %(count)d room(s).",
        )

    @admin.action(description=_("End the meeting for everyone and close the room"))
    def end_meetings(self, request: HttpRequest, queryset: QuerySet[Room]) -> None:
        _each(
            self,
            request,
            queryset.filter(closed_at__isnull=True),
            lambda r, a: moderation.end_meeting(r, a, "ended from the admin site"),
            "Ended %(count)d meeting(s).",
        )


@admin.register(ChatMessage)
class ChatMessageAdmin(admin.ModelAdmin[ChatMessage]):
    actions = ["hide_messages"]
    list_display = ["room", "author_name", "body", "sent_at", "hidden_at", "hidden_by"]
    list_filter = [("hidden_at", admin.EmptyFieldListFilter), "room"]
    search_fields = ["body", "author_name", "author__username", "room__name"]
    readonly_fields = ["room", "author", "author_name", "body", "sent_at", "hidden_at", "hidden_by"]

    @admin.action(description=_("Hide the selected messages from everyone"))
    def hide_messages(self, request: HttpRequest, queryset: QuerySet[ChatMessage]) -> None:
        _each(
            self,
            request,
            queryset.select_related("room"),
            lambda m, a: moderation.hide_message(m.room, a, m.pk),
            "Hid %(count)d message(s).",
        )


def _ban_for(minutes: int | None) -> Callable[[Presence, moderation.Actor], object]:
    def ban(presence: Presence, actor: moderation.Actor) -> object:
        expires = timezone.now() + timedelta(minutes=minutes) if minutes else None
        return moderation.ban(
            presence.room,
            actor,
            user=presence.user,
            reason="banned from the admin site",
            expires_at=expires,
        )

    return ban


@admin.register(Presence)
class PresenceAdmin(admin.ModelAdmin[Presence]):
    """Who is in which call right now, on every worker; kick or ban from here."""

    actions = ["kick", "ban_hour", "ban_day", "ban_forever"]
    list_display = ["name", "user", "room", "peer_id", "joined_at", "last_seen"]
    list_filter = ["room"]
    search_fields = ["name", "user__username", "room__name", "peer_id"]
    readonly_fields = ["room", "user", "peer_id", "channel_name", "name", "joined_at", "last_seen"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Presence]:
        return super().get_queryset(request).select_related("room", "user")

    @admin.action(description=_("Kick from the call (they may rejoin)"))
    def kick(self, request: HttpRequest, queryset: QuerySet[Presence]) -> None:
        _each(
            self,
            request,
            queryset,
            lambda p, a: moderation.kick(
                p.room, a, peer_id=p.peer_id, reason="kicked from the admin site"
            ),
            "Kicked %(count)d participant(s).",
        )

    @admin.action(description=_("Ban from the room for an hour"))
    def ban_hour(self, request: HttpRequest, queryset: QuerySet[Presence]) -> None:
        _each(self, request, queryset, _ban_for(60), "Banned %(count)d participant(s).")

    @admin.action(description=_("Ban from the room for a day"))
    def ban_day(self, request: HttpRequest, queryset: QuerySet[Presence]) -> None:
        _each(self, request, queryset, _ban_for(60 * 24), "Banned %(count)d participant(s).")

    @admin.action(description=_("Ban from the room until the ban is lifted"))
    def ban_forever(self, request: HttpRequest, queryset: QuerySet[Presence]) -> None:
        _each(self, request, queryset, _ban_for(None), "Banned %(count)d participant(s).")


@admin.register(RoomModerator)
class RoomModeratorAdmin(admin.ModelAdmin[RoomModerator]):
    list_display = ["user", "room", "granted_by", "created_at"]
    search_fields = ["user__username", "room__name"]


@admin.register(RoomBan)
class RoomBanAdmin(admin.ModelAdmin[RoomBan]):
    actions = ["lift_bans"]
    list_display = ["user", "room", "banned_by", "reason", "created_at", "expires_at", "lifted_at"]
    list_filter = ["room", ("lifted_at", admin.EmptyFieldListFilter)]
    search_fields = ["user__username", "room__name", "reason"]

    @admin.action(description=_("Lift the selected bans"))
    def lift_bans(self, request: HttpRequest, queryset: QuerySet[RoomBan]) -> None:
        _each(
            self,
            request,
            queryset.select_related("room"),
            moderation.lift_ban,
            "Lifted %(count)d ban(s).",
        )


class AdminInviteForm(forms.ModelForm[Invite]):
    """A new invite link from the admin: the room, and InviteForm's expiry and uses."""

    hours = InviteForm.base_fields["hours"]

    class Meta:
        model = Invite
        fields = ["room", "max_uses"]


@admin.register(Invite)
class InviteAdmin(admin.ModelAdmin[Invite]):
    """Invite links (rooms/guests.py). A new one's URL is shown once, in the message after
    saving: only its hash is stored. Links are revoked, never edited."""

    actions = ["revoke", "revoke_and_remove_guests"]
    form = AdminInviteForm
    list_display = ["room", "created_by", "created_at", "expires_at", "uses", "max_uses", "state"]
    list_filter = ["room", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["room__name", "created_by__username"]

    @admin.display(description=_("state"))
    def state(self, invite: Invite) -> str:
        return str(Invite.State(invite.state()).label)

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Invite, form: Any, change: bool) -> None:
        made, secret = guests.create_invite(
            form.cleaned_data["room"],
            request.user,  # type: ignore[arg-type]
            hours=form.cleaned_data["hours"],
            max_uses=form.cleaned_data["max_uses"],
            source="admin",
        )
        for name in ("pk", "secret_hash", "created_by", "created_at", "expires_at"):
            setattr(obj, name, getattr(made, name))
        url = request.build_absolute_uri(reverse("invite", args=[secret]))
        self.message_user(
            request,
            _("The invite link (copy it now, it is shown only once): %(url)s") % {"url": url},
            messages.WARNING,
        )

    def _revoke(self, request: HttpRequest, queryset: QuerySet[Invite], remove: bool) -> None:
        removed = 0
        for invite in queryset.select_related("room"):
            try:
                removed += guests.revoke_invite(
                    invite,
                    request.user,  # type: ignore[arg-type]
                    remove_guests=remove,
                    source="admin",
                )
            except PermissionError as problem:
                self.message_user(request, f"{invite}: {problem}", messages.ERROR)
        self.message_user(request, f"Revoked; {removed} guest visit(s) ended.", messages.SUCCESS)

    @admin.action(description=_("Revoke the selected links"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[Invite]) -> None:
        self._revoke(request, queryset, remove=False)

    @admin.action(description=_("Revoke the selected links and remove their guests"))
    def revoke_and_remove_guests(self, request: HttpRequest, queryset: QuerySet[Invite]) -> None:
        self._revoke(request, queryset, remove=True)


@admin.register(Guest)
class GuestAdmin(admin.ModelAdmin[Guest]):
    """Who came in by which link. Read-only: ban a guest like anyone, from Presences."""

    list_display = ["name", "room", "invite", "created_at", "ended_at"]
    list_filter = ["room", ("ended_at", admin.EmptyFieldListFilter)]
    search_fields = ["user__profile__display_name", "room__name"]

    @admin.display(description=_("name"))
    def name(self, guest: Guest) -> str:
        return str(guest.user.profile.display_name) if hasattr(guest.user, "profile") else ""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(ModerationAction)
class ModerationActionAdmin(admin.ModelAdmin[ModerationAction]):
    """The audit log: read-only."""

    list_display = ["created_at", "kind", "room", "actor", "target_user", "reason", "source"]
    list_filter = ["kind", "source", "room"]
    search_fields = ["room__name", "actor__username", "target_user__username", "reason"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


# --- Signing in: the site's throttle on the admin's login and password change -----------------
# Django's admin checks passwords in two views of its own. The login takes a form class
# (AdminSite.login_form), so it keeps Django's view with the throttled form; the password
# change takes none, so it is the site's view with the admin's context. config/urls.py
# routes both paths here ahead of admin.site.urls, which would answer them otherwise.
admin.site.login_form = ThrottledAdminLoginForm


def login(request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
    """The admin's login view, answering 429 while locked like the site's."""
    response = admin.site.login(request, extra_context)
    form = (getattr(response, "context_data", None) or {}).get("form")
    return views.answer_throttled(form, response) if form is not None else response


def password_change(
    request: HttpRequest, extra_context: dict[str, Any] | None = None
) -> HttpResponseBase:
    """AdminSite.password_change, with the throttled form."""
    request.current_app = admin.site.name
    return views.ThrottledPasswordChangeView.as_view(
        success_url=reverse("admin:password_change_done"),
        extra_context={**admin.site.each_context(request), **(extra_context or {})},
    )(request)


sign_in_urls: list[URLPattern] = [
    path("login/", login),
    path("password_change/", admin.site.admin_view(password_change, cacheable=True)),
]
