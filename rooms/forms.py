from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import UserCreationForm, UsernameField
from django.contrib.auth.models import User
from django.utils.translation import gettext_lazy as _

from rooms.models import MAX_CAPACITY, MIN_CAPACITY, Profile, Room


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


class RoomForm(forms.Form):
    name = forms.CharField(label=_("Room name"), max_length=80)
    capacity = forms.IntegerField(
        label=_("Capacity"), min_value=MIN_CAPACITY, max_value=MAX_CAPACITY, initial=6
    )
    kind = forms.ChoiceField(label=_("Kind"), choices=Room.Kind.choices, initial=Room.Kind.VIDEO)
    is_private = forms.BooleanField(label=_("Private (password required)"), required=False)
    password = forms.CharField(
        label=_("Room password"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
        max_length=128,
    )

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError(_("Give the room a name."))
        return name

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("is_private") and not data.get("password"):
            self.add_error("password", _("A private room needs a password."))
        return data


class RoomPasswordForm(forms.Form):
    password = forms.CharField(label=_("Room password"), widget=forms.PasswordInput)
