"""Guests (rooms/guests.py) see one room and nothing else of the site."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from rooms import guests

# What a guest's browser may load besides their room: the invite pages, the translations
# and the language switch, static files and the health check.
GUEST_PATHS = ("/invite/", "/i18n/", "/jsi18n/", "/static/", "/healthz")


class GuestOnlyMiddleware:
    """A guest's session reaches their own room's pages only. The lobby, other rooms, the
    account pages and the admin answer 403 with a way back to their room. The websockets
    check the same in the join (rooms/services.py) and the lobby consumer."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        slug = guests.guest_room_slug(request.session)
        if slug is None or not request.user.is_authenticated:
            return self.get_response(request)
        own = f"/rooms/{slug}/"
        if request.path.startswith((own, *GUEST_PATHS)):
            return self.get_response(request)
        return render(request, "rooms/guest_only.html", {"room_url": own}, status=403)
