from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import (
    AuthenticationForm,
    PasswordChangeForm,
    UserCreationForm,
    UsernameField,
)
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from rooms import guests, services, throttle
from rooms.models import MAX_CAPACITY, MIN_CAPACITY, SFU_MAX_CAPACITY, Profile, Room

# The error code of a refusal by the sign-in throttle: views answer it with 429.
THROTTLED = "throttled"


def _locked_error() -> ValidationError:
    return ValidationError(
        _("Too many failed sign-in attempts. Try again in 15 minutes."), code=THROTTLED
    )


def _address(request: HttpRequest | None) -> str | None:
    # REMOTE_ADDR is the client's own address behind nginx: daphne runs with --proxy-headers
    # and nginx sets X-Forwarded-For itself (docs/deployment.md, "Proxying").
    return str(request.META.get("REMOTE_ADDR", "")) if request is not None else None


def refused_by_throttle(form: forms.Form) -> bool:
    return any(
        error.code == THROTTLED for errors in form.errors.as_data().values() for error in errors
    )


class ThrottledLoginForm(AuthenticationForm):
    """Django's login form, under the sign-in throttle (rooms.throttle): while the username
    or the client's address has too many recent failures, nothing is checked, not even a
    right password; every username and password it refuses counts as a failure.

    The site's login and the admin's (ThrottledAdminLoginForm) both use it, so one set of
    rules covers every way in.
    """

    def clean(self) -> dict[str, Any]:
        # Already stripped and NFKC-normalised by UsernameField: what authenticate() gets.
        username = self.cleaned_data.get("username")
        address = _address(self.request)
        if throttle.login_locked(username, address):
            raise _locked_error()
        try:
            return super().clean()
        except ValidationError:
            # A wrong password, and also a right one the form refuses (an inactive account,
            # or no staff status on the admin): counting those too keeps the count from
            # telling a guesser which password was right.
            throttle.login_failed(username, address)
            raise


class ThrottledAdminLoginForm(ThrottledLoginForm, AdminAuthenticationForm):
    """The admin site's login form (staff only) under the same throttle as the site's."""


class ThrottledPasswordChangeForm(PasswordChangeForm):
    """Django's password change, with the old password under the sign-in throttle: it is a
    password check too, and someone holding a stolen session could otherwise guess the
    password with it (to sign in elsewhere) as fast as they like. Failures count against the
    same username as failed sign-ins."""

    def __init__(self, user: User, *args: Any, request: HttpRequest | None = None, **kwargs: Any):
        self.request = request
        super().__init__(user, *args, **kwargs)

    def clean_old_password(self) -> str:
        username = self.user.get_username()
        address = _address(self.request)
        if throttle.login_locked(username, address):
            raise _locked_error()
        try:
            return str(super().clean_old_password())
        except ValidationError:
            throttle.login_failed(username, address)
            raise


class SignUpForm(UserCreationForm[User]):
    display_name = forms.CharField(
        label=_("Display name"),
        max_length=60,
        help_text=_("Shown to others in calls and chat."),
    )

    class Meta:
        model = User
        fields = ("username", "display_name")
        field_classes = {"username": UsernameField}

    def save(self, commit: bool = True) -> User:
        user = super().save(commit=commit)
        if commit:
            Profile.objects.create(user=user, display_name=self.cleaned_data["display_name"])
        return user


TOO_MANY_FOR_MESH = _(
    "A peer-to-peer room holds at most %(max)s people; choose the media server for more."
)


class RoomForm(forms.Form):
    name = forms.CharField(label=_("Room name"), max_length=80)
    capacity = forms.IntegerField(
        label=_("Capacity"), min_value=MIN_CAPACITY, max_value=SFU_MAX_CAPACITY, initial=6
    )
    kind = forms.ChoiceField(label=_("Kind"), choices=Room.Kind.choices, initial=Room.Kind.VIDEO)
    # Not `media`: that name is a Form's own (its CSS and JS assets).
    media_path = forms.ChoiceField(
        label=_("Media"), choices=Room.Media.choices, initial=Room.Media.MESH, required=False
    )
    is_private = forms.BooleanField(label=_("Private (password required)"), required=False)
    password = forms.CharField(
        label=_("Room password"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
        max_length=128,
    )
    waiting_room = forms.ChoiceField(
        label=_("Waiting room"),
        choices=Room.Waiting.choices,
        initial=Room.Waiting.OFF,
        required=False,
        help_text=_("Who must be let in by a moderator. Moderators can change it in the call."),
    )

    def clean_waiting_room(self) -> str:
        return str(self.cleaned_data.get("waiting_room") or Room.Waiting.OFF)

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError(_("Give the room a name."))
        return name

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sfu_available = services.sfu_available()
        if not self.sfu_available:
            # Offered only with a Janus server configured; the lobby says why not.
            self.fields["media_path"].disabled = True
            self.fields["media_path"].help_text = _(
                "Rooms for more than 12 people go through a media server (Janus), and "
                "none is configured here (JANUS_URLS). Ask the administrator."
            )
        self.fields["capacity"].help_text = _(
            "Up to %(mesh)s people peer to peer, up to %(sfu)s through the media server."
        ) % {"mesh": MAX_CAPACITY, "sfu": SFU_MAX_CAPACITY}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("is_private") and not data.get("password"):
            self.add_error("password", _("A private room needs a password."))
        media = data.pop("media_path", None) or Room.Media.MESH
        if media == Room.Media.SFU and not self.sfu_available:
            self.add_error("media_path", _("No media server is configured here."))
        capacity = data.get("capacity")
        if capacity is not None and capacity > services.max_capacity(media):
            self.add_error(
                "capacity",
                TOO_MANY_FOR_MESH % {"max": MAX_CAPACITY},
            )
        data["media"] = media
        return data


class RoomPasswordForm(forms.Form):
    password = forms.CharField(label=_("Room password"), widget=forms.PasswordInput)


class GuestNameForm(forms.Form):
    """The name a guest is shown by (rooms/guests.py)."""

    name = forms.CharField(
        label=_("Your name"),
        max_length=guests.NAME_MAX_LENGTH,
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "nickname"}),
        help_text=_("The others in the call see this name, marked as a guest."),
    )

    def clean_name(self) -> str:
        name = " ".join(self.cleaned_data["name"].split())
        if not name:
            raise ValidationError(_("Please enter a name."), code="required")
        return name


class InviteForm(forms.Form):
    """A moderator's new invite link: how long it lasts and how many guests it lets in."""

    hours = forms.TypedChoiceField(
        label=_("Expires after"),
        coerce=int,
        choices=[
            (1, _("1 hour")),
            (24, _("1 day")),
            (24 * 7, _("7 days")),
        ],
        initial=guests.DEFAULT_EXPIRY_HOURS,
    )
    max_uses = forms.IntegerField(
        label=_("Uses"),
        min_value=1,
        max_value=guests.MAX_USES_LIMIT,
        required=False,
        help_text=_("Empty: any number of guests until it expires."),
    )
