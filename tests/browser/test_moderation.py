"""Moderation in a real browser: the tile menu, the moderator controls, hiding messages, the
admin site ending a meeting, and what the person concerned sees (docs/moderation.md)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Locator, expect

from tests.browser.conftest import OUTPUT, Person, Server

pytestmark = pytest.mark.browser

# A ban with an expiry is worded with it (closing.refusal "banned" with `until`).
BANNED_FOR_A_DAY = re.compile(r"^You are banned from this room \(until .+\)\.$")

People = Callable[..., Person]

REASON_LABEL = "Reason (kept in the moderation log)"


def tile_menu(moderator: Person, target: Person) -> Locator:
    """Open the moderation menu on `target`'s tile with the mouse; returns the menu."""
    moderator.page.get_by_role("button", name=f"Moderate {target.name}").click()
    menu = moderator.page.get_by_role("menu", name=f"Moderate {target.name}")
    expect(menu).to_be_visible()
    return menu


def room_menu(moderator: Person) -> Locator:
    moderator.page.get_by_role("button", name="Moderator controls").click()
    menu = moderator.page.get_by_role("menu", name="Moderator controls")
    expect(menu).to_be_visible()
    return menu


def toast(someone: Person, text: str) -> Locator:
    return someone.page.locator(".toast", has_text=text)


def make_staff(server: Server, someone: Person) -> None:
    server.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User\n"
        f"User.objects.filter(username={someone.username!r})"
        ".update(is_staff=True, is_superuser=True)\n",
    )


def test_an_admin_ends_the_meeting_from_the_admin_site_and_both_pages_say_so(
    person: People, server: Server
) -> None:
    alice, bob, admin = person("Alice"), person("Bob"), person("Admin")
    make_staff(server, admin)
    room_url = alice.create_room("All hands")
    bob.join(room_url)
    alice.wait_for_media(1)

    page = admin.page
    page.goto(admin.url("/admin/rooms/room/"))
    page.locator("#result_list tbody tr", has_text="All hands").locator(
        "input.action-select"
    ).check()
    page.select_option(
        "select[name=action]", label="End the meeting for everyone and close the room"
    )
    page.get_by_role("button", name="Go").click()
    expect(page.locator(".messagelist")).to_contain_text("Ended 1 meeting(s).")

    for someone in (alice, bob):
        closed = someone.page.locator("#closed")
        expect(closed).to_be_visible()
        expect(closed.locator("#closed-title")).to_have_text(
            "The meeting was ended by a moderator."
        )
        expect(closed.locator("#closed-hint")).to_have_text(
            "The room is closed now. You can go back to the lobby and pick another room."
        )
        expect(someone.page.locator("#conn-status")).to_have_text("Not connected")
        assert someone.page.evaluate("window.confab.peers.size") == 0
    # Alice moderated the room; the call is over, so her controls are gone.
    expect(alice.page.get_by_role("button", name="Moderator controls")).to_have_count(0)
    # The room is closed: there is nothing to come back to.
    response = bob.page.goto(room_url)
    assert response is not None
    assert response.status == 404


def test_a_moderator_removes_someone_with_the_tile_menu(person: People, server: Server) -> None:
    alice, bob = person("Alice"), person("Bob")
    room_url = alice.create_room("Team sync")  # Alice owns it: she moderates it
    bob.join(room_url)
    alice.wait_for_media(1)
    bob.wait_for_media(1)
    # Bob is not a moderator: no moderation for him (his tile menus only send files).
    expect(bob.page.get_by_role("button", name="Moderate Alice")).to_have_count(0)
    expect(bob.page.get_by_role("button", name="Moderator controls")).to_have_count(0)

    menu = tile_menu(alice, bob)
    expect(menu.get_by_role("menuitem")).to_have_text(
        [
            "Send a file…",  # for everyone (static/js/files.js), then moderation
            "Mute",
            "Stop video",
            "Make moderator",
            "Remove from the call…",
            "Ban from the room…",
        ]
    )
    alice.tile(bob).hover()
    alice.page.screenshot(path=str(OUTPUT / "moderation-tile-menu.png"))

    menu.get_by_role("menuitem", name="Remove from the call…").click()
    expect(menu).to_be_hidden()
    dialog = alice.page.get_by_role("dialog", name="Remove Bob from the call?")
    expect(dialog).to_be_visible()
    dialog.get_by_label(REASON_LABEL).fill("Testing the remove button")
    alice.page.screenshot(path=str(OUTPUT / "moderation-remove-dialog.png"))
    dialog.get_by_role("button", name="Remove").click()

    closed = bob.page.locator("#closed")
    expect(closed.locator("#closed-title")).to_have_text(
        "You were removed from this room by a moderator."
    )
    expect(closed.locator("#closed-hint")).to_have_text(
        "You may join this room again later, or go back to the lobby."
    )
    expect(alice.tile(bob)).to_have_count(0)
    expect(toast(alice, "A moderator removed Bob from the call.")).to_be_visible()
    expect(alice.page.locator("#people-count")).to_have_text("1 of 6")
    expect(dialog).to_have_count(0)
    bob.page.screenshot(path=str(OUTPUT / "moderation-removed.png"))

    # The reason went to the audit log.
    logged = server.manage(
        "shell",
        "-c",
        "from rooms.models import ModerationAction\n"
        "a = ModerationAction.objects.order_by('-pk').first()\n"
        "print(a.kind, a.source, a.reason, sep='|')\n",
    )
    assert logged.strip().splitlines()[-1] == "kick|call|Testing the remove button"

    # A kick is not a ban: Bob may come back.
    bob.join(room_url)
    alice.wait_for_media(1)


def test_a_moderator_hides_a_message_and_it_disappears_for_everyone(person: People) -> None:
    alice, bob = person("Alice"), person("Bob")
    room_url = alice.create_room("Hidden words")
    bob.join(room_url)
    bob.say("oops, wrong window")
    bob.say("sorry about that")
    message = alice.page.locator("#chat-messages .message", has_text="oops")
    expect(message).to_have_count(1)
    # Only moderators get Hide buttons.
    expect(bob.page.locator("#chat-messages .message")).to_have_count(2)
    expect(bob.page.get_by_role("button", name=re.compile(r"^Hide"))).to_have_count(0)

    message.hover()
    hide = message.get_by_role("button", name="Hide the message from Bob")
    expect(hide).to_be_visible()
    hide.click()
    for someone in (alice, bob):
        expect(someone.page.locator("#chat-messages .message-body")).to_have_text(
            ["sorry about that"]
        )
    # Later joiners do not see it either.
    bob.page.reload()
    bob.wait_joined()
    expect(bob.page.locator("#chat-messages .message-body")).to_have_text(["sorry about that"])


def test_a_mute_request_turns_the_microphone_off_and_everyone_sees_the_badge(
    person: People,
) -> None:
    alice, bob = person("Alice"), person("Bob")
    room_url = alice.create_room("Noisy room")
    bob.join(room_url)
    alice.wait_for_media(1)
    expect(alice.tile(bob).locator(".mic-off")).to_be_hidden()

    # With the keyboard: Enter opens the menu on its first item ("Send a file…", which
    # everyone has), arrows move, Escape closes it.
    button = alice.page.get_by_role("button", name="Moderate Bob")
    button.focus()
    button.press("Enter")
    menu = alice.page.get_by_role("menu", name="Moderate Bob")
    expect(menu.get_by_role("menuitem", name="Send a file…")).to_be_focused()
    alice.page.keyboard.press("ArrowDown")
    expect(menu.get_by_role("menuitem", name="Mute")).to_be_focused()
    alice.page.keyboard.press("ArrowDown")
    expect(menu.get_by_role("menuitem", name="Stop video")).to_be_focused()
    alice.page.keyboard.press("Escape")
    expect(menu).to_be_hidden()
    expect(button).to_be_focused()
    expect(button).to_have_attribute("aria-expanded", "false")
    button.press("Enter")
    expect(menu.get_by_role("menuitem", name="Send a file…")).to_be_focused()
    alice.page.keyboard.press("ArrowDown")
    expect(menu.get_by_role("menuitem", name="Mute")).to_be_focused()
    alice.page.keyboard.press("Enter")

    expect(toast(bob, "A moderator muted you.")).to_be_visible()
    expect(bob.page.get_by_role("button", name="Unmute microphone")).to_be_visible()
    assert bob.page.evaluate("window.confab.localStream.getAudioTracks()[0].enabled") is False
    expect(bob.page.locator(".tile.local .mic-off")).to_be_visible()
    expect(alice.tile(bob).locator(".mic-off")).to_be_visible()

    # Once muted, the menu says so; the camera goes off the same way.
    menu = tile_menu(alice, bob)
    expect(menu.get_by_role("menuitem", name="Mute")).to_be_disabled()
    menu.get_by_role("menuitem", name="Stop video").click()
    expect(toast(bob, "A moderator turned your camera off.")).to_be_visible()
    assert bob.page.evaluate("window.confab.localStream.getVideoTracks()[0].enabled") is False
    expect(alice.tile(bob).locator(".cam-off")).to_be_visible()
    expect(bob.page.get_by_role("button", name="Turn camera on")).to_be_visible()

    # Bob may switch his microphone back on: everyone sees that too (docs/moderation.md).
    bob.page.get_by_role("button", name="Unmute microphone").click()
    expect(alice.tile(bob).locator(".mic-off")).to_be_hidden()


def test_moderator_controls_lock_promote_ban_and_end_the_meeting(person: People) -> None:
    alice, bob, charlie = person("Alice"), person("Bob"), person("Charlie")
    room_url = alice.create_room("Board meeting")
    bob.join(room_url)
    alice.wait_for_media(1)

    # Lock: the badge and a toast for everyone; newcomers are refused.
    room_menu(alice).get_by_role("menuitem", name="Lock the room").click()
    expect(bob.page.locator("#room-locked")).to_be_visible()
    expect(toast(bob, "The room is locked: nobody new can join.")).to_be_visible()
    charlie.page.goto(room_url)
    expect(charlie.page.locator("#closed-title")).to_have_text(
        "This room is locked: nobody new can join right now."
    )
    room_menu(alice).get_by_role("menuitem", name="Unlock the room").click()
    expect(alice.page.locator("#room-locked")).to_be_hidden()
    expect(bob.page.locator("#room-locked")).to_be_hidden()

    # The owner makes Bob a moderator: his page grows the controls.
    tile_menu(alice, bob).get_by_role("menuitem", name="Make moderator").click()
    alice.page.get_by_role("dialog", name="Make Bob a moderator?").get_by_role(
        "button", name="Make moderator"
    ).click()
    expect(toast(bob, "You are now a moderator of this room.")).to_be_visible()
    expect(toast(alice, "Bob is now a moderator.")).to_be_visible()
    expect(bob.page.get_by_role("button", name="Moderator controls")).to_be_visible()

    # A moderator who is not the owner cannot remove the owner, nor make moderators.
    tile_menu(bob, alice).get_by_role("menuitem", name="Remove from the call…").click()
    bob.page.get_by_role("dialog", name="Remove Alice from the call?").get_by_role(
        "button", name="Remove"
    ).click()
    expect(toast(bob, "The room's owner cannot be removed or banned.")).to_be_visible()
    # (The server refuses a promotion by anyone but the owner or staff: tests/signaling.)
    expect(tile_menu(bob, alice).get_by_role("menuitem", name="Make moderator")).to_have_count(0)
    bob.page.keyboard.press("Escape")
    expect(alice.tile(bob)).to_have_count(1)

    # Ban for a day, with a reason.
    tile_menu(alice, bob).get_by_role("menuitem", name="Ban from the room…").click()
    dialog = alice.page.get_by_role("dialog", name="Ban Bob from this room?")
    dialog.get_by_label("1 day").check()
    dialog.get_by_label(REASON_LABEL).fill("Repeated interruptions")
    alice.page.screenshot(path=str(OUTPUT / "moderation-ban-dialog.png"))
    dialog.get_by_role("button", name="Ban").click()
    expect(bob.page.locator("#closed-title")).to_have_text(BANNED_FOR_A_DAY)
    expect(bob.page.locator("#closed-hint")).to_have_text(
        "You cannot join this room again while the ban lasts."
    )
    expect(toast(alice, "A moderator banned Bob from this room.")).to_be_visible()
    expect(alice.tile(bob)).to_have_count(0)
    bob.page.goto(room_url)
    expect(bob.page.locator("#closed-title")).to_have_text(BANNED_FOR_A_DAY)

    # End the meeting, after a confirmation.
    room_menu(alice).get_by_role("menuitem", name="End the meeting for everyone…").click()
    dialog = alice.page.get_by_role("dialog", name="End the meeting for everyone?")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    expect(alice.page.locator("#closed")).to_be_hidden()
    room_menu(alice).get_by_role("menuitem", name="End the meeting for everyone…").click()
    alice.page.get_by_role("dialog", name="End the meeting for everyone?").get_by_role(
        "button", name="End meeting"
    ).click()
    expect(alice.page.locator("#closed-title")).to_have_text(
        "The meeting was ended by a moderator."
    )
