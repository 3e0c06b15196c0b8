"""Guests by invitation in real browsers (rooms/guests.py): a moderator makes a link in the
call, someone without an account joins by it (in Firefox, beside Alice's Chromium), sees
their room and nothing else, is banned and stays out; revoked and expired links say why."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Locator, expect

from tests.browser.conftest import Person, screenshot
from tests.servers_common import Server

pytestmark = pytest.mark.browser

People = Callable[..., Person]


def invite_dialog(moderator: Person) -> Locator:
    moderator.page.get_by_role("button", name="Moderator controls").click()
    moderator.page.get_by_role("menuitem", name="Invite guests…").click()
    dialog = moderator.page.get_by_role("dialog", name="Invite guests")
    expect(dialog).to_be_visible()
    return dialog


def make_link(moderator: Person, *, uses: int | None = None) -> str:
    """A new invite link, made in the call's room menu, as its maker copies it."""
    dialog = invite_dialog(moderator)
    if uses is not None:
        dialog.get_by_label("Guests it lets in").fill(str(uses))
    dialog.get_by_role("button", name="Create link").click()
    link = dialog.get_by_label("The new invite link")
    expect(link).not_to_have_value("")
    return link.input_value()


def come_in(guest: Person, link: str) -> None:
    """Open the link without an account, pick a name, join."""
    guest.page.bring_to_front()  # Firefox under Xvfb: only the window in front gets on
    guest.page.goto(link)
    expect(guest.page.get_by_role("heading", level=1)).to_be_visible()
    guest.page.get_by_label("Your name").fill(guest.name)
    guest.page.get_by_role("button", name="Join as a guest").click()
    guest.wait_joined()


def test_a_guest_joins_by_link_sees_only_their_room_and_a_ban_keeps_them_out(
    person: People, server: Server
) -> None:
    alice = person("Alice")
    room_url = alice.create_room("Open house")
    # Another room of Alice's, made in the server's database: the guest must not get in.
    other = server.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User\n"
        "from rooms import services\n"
        f"owner = User.objects.get(username={alice.username!r})\n"
        "print(services.create_room(owner=owner, name='Back office').slug)\n",
    ).strip()
    link = make_link(alice)
    assert link.startswith(alice.url("/invite/"))
    alice.page.screenshot(path=screenshot("invite-dialog", ("chromium", "chromium")))
    alice.page.keyboard.press("Escape")

    erin = person("Erin", engine="firefox", guest=True)
    erin.page.goto(link)
    expect(erin.page.get_by_role("heading", name="Open house")).to_be_visible()
    erin.page.screenshot(path=screenshot("invite-page", ("firefox", "firefox")))
    come_in(erin, link)
    expect(erin.page).to_have_url(room_url)
    # Media both ways: decoded frames and audio, not just a connected state.
    alice.wait_for_media(1)
    erin.wait_for_media(1)
    expect(alice.tile(erin).locator(".tile-guest")).to_have_text("guest")
    expect(erin.page.locator(".tile.local .tile-guest")).to_be_visible()
    expect(alice.tile(erin).locator(".tile-guest")).to_be_visible()
    expect(erin.page.locator(".topbar .guest-mark")).to_have_text("guest")
    alice.page.screenshot(path=screenshot("guest-in-call", ("chromium", "firefox")))

    # A guest has no lobby, no account pages, no other room.
    elsewhere = erin.context.new_page()
    for path in ["/", f"/rooms/{other}/", "/accounts/password/", "/rooms/new/"]:
        response = elsewhere.goto(erin.url(path))
        assert response is not None
        assert response.status == 403, path
        expect(elsewhere.get_by_role("heading", level=1)).to_have_text(
            "As a guest you can enter only the room you were invited to."
        )
    expect(elsewhere.get_by_role("link", name="Back to your room")).to_have_attribute(
        "href", room_url.removeprefix(erin.base_url)
    )
    elsewhere.close()

    # Banned: the call closes, and neither the same link nor the lobby lets them back.
    alice.page.get_by_role("button", name="Moderate Erin").click()
    alice.page.get_by_role("menuitem", name="Ban from the room…").click()
    dialog = alice.page.get_by_role("dialog", name="Ban Erin from this room?")
    dialog.get_by_role("button", name="Ban").click()
    expect(erin.page.locator("#closed-title")).to_contain_text("You are banned from this room")
    expect(erin.page.locator("#closed-lobby")).to_have_count(0)  # a guest has no lobby
    erin.page.goto(link)
    expect(erin.page.get_by_role("heading", level=1)).to_have_text("You are banned from this room.")
    expect(alice.page.locator(".tile:not(.local)")).to_have_count(0)


def test_a_guests_leave_ends_the_visit_and_revoked_and_expired_links_say_why(
    person: People, server: Server
) -> None:
    alice = person("Alice")
    alice.create_room("Short visit")
    once = make_link(alice, uses=1)
    alice.page.keyboard.press("Escape")
    frank = person("Frank", guest=True)
    come_in(frank, once)
    alice.wait_for_media(1)
    expect(alice.page.locator("#people-count")).to_contain_text("2")
    frank.page.get_by_role("button", name="Leave the call").click()
    expect(frank.page.get_by_role("heading", level=1)).to_have_text("You left the call.")
    expect(alice.page.locator(".tile:not(.local)")).to_have_count(0)
    # Used once, by Frank: a link for one guest lets in nobody else.
    gina = person("Gina", guest=True)
    gina.page.goto(once)
    expect(gina.page.get_by_role("heading", level=1)).to_have_text(
        "This invite link has been used as often as it allows."
    )

    # Revoked from the call's list of links: the list says so, the link says so.
    revoked = make_link(alice)
    dialog = alice.page.get_by_role("dialog", name="Invite guests")
    items = dialog.locator(".invite-item")
    expect(items).to_have_count(2)
    expect(items.first).to_have_attribute("data-state", "valid")
    items.first.get_by_role("button", name="Revoke").click()
    expect(items.first).to_have_attribute("data-state", "revoked")
    expect(items.first.locator(".invite-state")).to_have_text("Revoked")
    gina.page.goto(revoked)
    expect(gina.page.get_by_role("heading", level=1)).to_have_text("This invite link was revoked.")

    # Expired: the link's day is over (moved back in the server's database).
    alice.page.keyboard.press("Escape")
    expired = make_link(alice)
    # The dialog started from its defaults again: no limit on this one.
    expect(items.first.locator(".invite-facts")).to_contain_text("used 0 times")
    server.manage(
        "shell",
        "-c",
        "from datetime import timedelta\n"
        "from django.utils import timezone\n"
        "from rooms.models import Invite\n"
        "Invite.objects.filter(revoked_at__isnull=True, uses=0)"
        ".update(expires_at=timezone.now() - timedelta(seconds=1))\n",
    )
    gina.page.goto(expired)
    expect(gina.page.get_by_role("heading", level=1)).to_have_text("This invite link has expired.")
