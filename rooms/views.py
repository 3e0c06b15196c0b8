"""Thin views: the rules they rely on are in services.py and access.py."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView, PasswordChangeView
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rooms import access, guests, ice, services, throttle
from rooms.forms import (
    GuestNameForm,
    InviteForm,
    RoomForm,
    RoomPasswordForm,
    SignUpForm,
    ThrottledLoginForm,
    ThrottledPasswordChangeForm,
    refused_by_throttle,
)
from rooms.models import Invite, Room, display_name


def answer_throttled(form: Form, response: HttpResponse) -> HttpResponse:
    """A form refused by the sign-in throttle is answered 429 Too Many Requests."""
    if refused_by_throttle(form):
        response.status_code = 429
    return response


class ThrottledLoginView(LoginView):
    """Django's login with the throttled form (rooms.forms.ThrottledLoginForm): after
    LOGIN_FAILURES_LIMIT failures in 15 minutes for one username (or four times that from
    one address), every attempt is refused with 429 until the window ends."""

    authentication_form = ThrottledLoginForm
    redirect_authenticated_user = True

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        return answer_throttled(form, super().form_invalid(form))


class ThrottledPasswordChangeView(PasswordChangeView):
    """Django's password change, its old password checked under the same throttle."""

    form_class = ThrottledPasswordChangeForm

    def get_form_kwargs(self) -> dict[str, Any]:
        return {**super().get_form_kwargs(), "request": self.request}

    def form_invalid(self, form: Form) -> HttpResponse:
        return answer_throttled(form, super().form_invalid(form))


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("lobby")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        # No password is checked here, so nothing for the sign-in throttle to count: the
        # account was created by this very request, with the password just chosen.
        login(request, user)
        messages.success(request, _("Welcome to Confab, %(name)s.") % {"name": display_name(user)})
        return redirect(request.GET.get("next") or "lobby")
    return render(request, "registration/signup.html", {"form": form})


@login_required
@require_GET
def lobby(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "rooms/lobby.html",
        {
            "form": RoomForm(initial={"capacity": settings.ROOM_DEFAULT_CAPACITY}),
            "rooms": services.lobby_rooms(),
        },
    )


@login_required
@require_POST
def room_create(request: HttpRequest) -> HttpResponse:
    form = RoomForm(request.POST)
    if not form.is_valid():
        return render(
            request,
            "rooms/lobby.html",
            {"form": form, "rooms": services.lobby_rooms()},
            status=400,
        )
    room = services.create_room(owner=request.user, **form.cleaned_data)  # type: ignore[arg-type]
    return redirect("room", slug=room.slug)


def _open_room(slug: str) -> Room:
    room = Room.objects.open().filter(slug=slug).first()
    if room is None:
        raise Http404(_("There is no open room at this address."))
    return room


@login_required
@require_http_methods(["GET", "POST"])
def room_detail(request: HttpRequest, slug: str) -> HttpResponse:
    room = _open_room(slug)
    if not access.has_access(request.session, room, request.user):
        return _room_password(request, room)
    is_guest = guests.guest_room_id(request.session) is not None
    moderator = access.is_moderator(room, request.user)
    config = {
        "slug": room.slug,
        "name": room.name,
        "kind": room.kind,
        "capacity": room.capacity,
        "ws_path": f"/ws/rooms/{room.slug}/",
        "messages_url": f"/rooms/{room.slug}/messages",
        "people_url": f"/rooms/{room.slug}/people",
        "leave_url": f"/rooms/{room.slug}/leave",
        # A guest has no lobby: Leave ends their visit (the goodbye form) instead.
        "lobby_url": None if is_guest else "/",
        "is_guest": is_guest,
        # Moderators make and revoke invite links there (static/js/invites.js).
        "invites_url": f"/rooms/{room.slug}/invites" if moderator else None,
        "me": display_name(request.user),  # type: ignore[arg-type]
        # "Make moderator" only in the menus of those the server lets promote.
        "can_promote": access.may_promote(room, request.user),
        "heartbeat_seconds": settings.HEARTBEAT_INTERVAL,
        "history_page_size": settings.CHAT_HISTORY_SIZE,
        # "mesh" or "sfu": which transport the page's media layer uses.
        "media": room.media,
        # Peer-to-peer files (static/js/files.js): the size limit in MiB, 0 for off. An
        # SFU room has no peer-to-peer connection to carry them (docs/protocol.md).
        "file_transfer_max_mb": settings.FILE_TRANSFER_MAX_MB
        if room.media == Room.Media.MESH
        else 0,
        # TURN and STUN for the first peer connection, made on the pre-join screen before
        # the welcome brings the seat's own (static/js/transport/mesh.js, "prime"): good
        # for that until `ice_fresh_seconds` after the page loaded.
        **(
            {
                "ice_servers": ice.ice_servers(f"page-{secrets.token_hex(4)}"),
                "ice_transport_policy": settings.ICE_TRANSPORT_POLICY,
                "ice_fresh_seconds": ice.fresh_seconds(),
            }
            if room.media == Room.Media.MESH
            else {}
        ),
        # The stylesheet of the picture-in-picture window (static/js/pip.js).
        "pip_css": static("css/pip.css"),
        # The server's bucket for reactions: the page holds its buttons back by it.
        "reaction_limit": dict(
            zip(("rate", "burst"), settings.RATE_LIMITS["reaction"], strict=True)
        ),
    }
    context = {"room": room, "config": config, "is_guest": is_guest}
    return render(request, "rooms/room.html", context)


def _room_password(request: HttpRequest, room: Room) -> HttpResponse:
    """Ask for a private room's password; guesses are throttled per person and room."""
    form = RoomPasswordForm(request.POST or None)
    ident = f"{request.user.pk}:{room.pk}"
    if throttle.exceeded("room-password", ident, settings.ROOM_PASSWORD_FAILURES_LIMIT):
        blocked = _("Too many wrong passwords. Try again in 15 minutes.")
        context = {"room": room, "form": RoomPasswordForm(), "blocked": blocked}
        return render(request, "rooms/room_password.html", context, status=429)
    if request.method == "POST" and form.is_valid():
        if room.check_password(form.cleaned_data["password"]):
            throttle.reset("room-password", ident)
            access.grant_access(request.session, room)
            return redirect("room", slug=room.slug)
        throttle.hit("room-password", ident, settings.THROTTLE_WINDOW)
        form.add_error("password", _("That password is not right."))
    return render(request, "rooms/room_password.html", {"room": room, "form": form})


def members_only(
    view: Callable[[HttpRequest, Room], JsonResponse],
) -> Callable[[HttpRequest, str], JsonResponse]:
    """A JSON view of an open room for people who may enter it (403 for others)."""

    @login_required
    @require_GET
    @functools.wraps(view)
    def wrapped(request: HttpRequest, slug: str) -> JsonResponse:
        room = _open_room(slug)
        if not access.has_access(request.session, room, request.user):
            return JsonResponse({"error": "forbidden"}, status=403)
        return view(request, room)

    return wrapped


@members_only
def room_people(request: HttpRequest, room: Room) -> JsonResponse:
    """Who is in the call now, for the pre-join screen."""
    summary = services.room_summary(room)
    return JsonResponse(
        {key: summary[key] for key in ("names", "occupancy", "capacity", "is_locked")}
    )


@members_only
def room_messages(request: HttpRequest, room: Room) -> JsonResponse:
    """Older chat pages for the call page: `?before=<id>`."""
    before_raw = request.GET.get("before")
    try:
        before = int(before_raw) if before_raw else None
    except ValueError:
        return JsonResponse(
            {"error": "bad_request", "message": "before must be a message id"}, status=400
        )
    history = services.chat_history(room, before=before)
    return JsonResponse(
        {
            "messages": [m.as_event() for m in history],
            "has_more": len(history) == settings.CHAT_HISTORY_SIZE,
        }
    )


# The token in the body is the proof (only the page that was welcomed knows it), and a
# beacon cannot carry a CSRF header: docs/protocol.md, "Leaving when the socket is already
# gone". The answer is always the same, so it tells a guesser nothing.
@csrf_exempt
@require_POST
def room_leave(request: HttpRequest, slug: str) -> HttpResponse:
    """A page's last word: give up the seat its resume token holds."""
    token = request.POST.get("token", "")[:200]
    services.leave_by_token(slug=slug, user=request.user, token=token)
    return HttpResponse(status=204)


# --- Guests by invitation (rooms/guests.py) --------------------------------------------------

INVITE_REFUSAL_STATUS = {
    guests.InviteRefused.UNKNOWN: 404,
    guests.InviteRefused.EXPIRED: 410,
    guests.InviteRefused.REVOKED: 410,
    guests.InviteRefused.USED_UP: 410,
    guests.InviteRefused.ROOM_CLOSED: 410,
    guests.InviteRefused.BANNED: 403,
    guests.InviteRefused.TOO_MANY: 429,
}


def _with_browser_key(request: HttpRequest, response: HttpResponse, raw: str) -> HttpResponse:
    if request.COOKIES.get(guests.BROWSER_COOKIE) != raw:
        response.set_cookie(
            guests.BROWSER_COOKIE,
            raw,
            max_age=guests.BROWSER_COOKIE_AGE,
            httponly=True,
            samesite="Lax",
            secure=settings.SESSION_COOKIE_SECURE,
        )
    return response


@require_http_methods(["GET", "POST"])
def invite(request: HttpRequest, secret: str) -> HttpResponse:
    """An invite link: who holds it picks a name and joins its room as a guest."""
    raw_key = request.COOKIES.get(guests.BROWSER_COOKIE) or guests.new_browser_key()
    form = GuestNameForm(request.POST or None)
    try:
        the_invite = guests.invite_for(secret[:100])
        guests.check_browser(the_invite, raw_key)
        room = the_invite.room
        if guests.needs_no_guest(the_invite, request.user, request.session):
            return redirect("room", slug=room.slug)
        if request.method == "POST" and form.is_valid():
            visit = guests.redeem(
                secret[:100],
                name=form.cleaned_data["name"],
                raw_browser_key=raw_key,
                address=str(request.META.get("REMOTE_ADDR", "")),
            )
            login(request, visit.user, backend="django.contrib.auth.backends.ModelBackend")
            guests.start_session(request.session, visit.guest)
            return _with_browser_key(request, redirect("room", slug=room.slug), raw_key)
    except guests.InviteRefused as refused:
        if refused.reason == guests.InviteRefused.BAD_NAME:
            form.add_error("name", _("Please enter a name."))
        else:
            response = render(
                request,
                "rooms/invite_refused.html",
                {"refusal": refused.reason},
                status=INVITE_REFUSAL_STATUS[refused.reason],
            )
            return _with_browser_key(request, response, raw_key)
    response = render(request, "rooms/invite.html", {"room": the_invite.room, "form": form})
    return _with_browser_key(request, response, raw_key)


@require_POST
def room_goodbye(request: HttpRequest, slug: str) -> HttpResponse:
    """Leave pressed on the call page. A guest's visit ends here, and their session."""
    if guests.guest_room_id(request.session) is None:
        return redirect("lobby")
    room = Room.objects.filter(slug=slug).first()
    guests.leave(request.user, request.session)
    logout(request)
    return render(request, "rooms/goodbye.html", {"room": room})


def moderators_only(
    view: Callable[..., JsonResponse],
) -> Callable[..., JsonResponse]:
    """A JSON view of an open room for its moderators (403 for others)."""

    @login_required
    @functools.wraps(view)
    def wrapped(request: HttpRequest, slug: str, **kwargs: Any) -> JsonResponse:
        room = _open_room(slug)
        if not access.is_moderator(room, request.user):
            return JsonResponse({"error": "not_moderator"}, status=403)
        return view(request, room, **kwargs)

    return wrapped


def _invite_list(room: Room) -> list[dict[str, object]]:
    return [invite.as_item() for invite in guests.room_invites(room)]


@moderators_only
@require_http_methods(["GET", "POST"])
def room_invites(request: HttpRequest, room: Room) -> JsonResponse:
    """The room's invite links (GET), or a new one (POST hours, max_uses): its URL is in
    this answer only, since only the secret's hash is kept."""
    if request.method == "GET":
        return JsonResponse({"invites": _invite_list(room)})
    form = InviteForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"error": "bad_request", "fields": form.errors}, status=400)
    made, secret = guests.create_invite(
        room,
        request.user,  # type: ignore[arg-type]
        hours=form.cleaned_data["hours"],
        max_uses=form.cleaned_data["max_uses"],
    )
    url = request.build_absolute_uri(f"/invite/{secret}")
    return JsonResponse(
        {"invite": made.as_item(), "url": url, "invites": _invite_list(room)},
        status=201,
    )


@moderators_only
@require_POST
def room_invite_revoke(request: HttpRequest, room: Room, pk: int) -> JsonResponse:
    """Revoke a link (POST remove_guests=1: and end the visits of the guests it let in)."""
    the_invite = Invite.objects.filter(room=room, pk=pk).first()
    if the_invite is None:
        return JsonResponse({"error": "not_found"}, status=404)
    removed = guests.revoke_invite(
        the_invite,
        request.user,  # type: ignore[arg-type]
        remove_guests=request.POST.get("remove_guests") == "1",
    )
    return JsonResponse({"removed": removed, "invites": _invite_list(room)})
