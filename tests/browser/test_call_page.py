"""Calls in a real browser: media really flows (getStats), and the page says what happens."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import OUTPUT, Person

pytestmark = pytest.mark.browser

People = Callable[..., Person]


def test_two_people_in_a_video_room_created_from_the_lobby_see_and_hear_each_other(
    person: People,
) -> None:
    alice, bob = person("Alice"), person("Bob")
    room_url = alice.create_room("Standup")

    # Bob finds the room in his lobby, which lists Alice in it, and walks in.
    bob.page.goto(bob.url("/"))
    room_item = bob.page.locator(".room-item", has_text="Standup")
    expect(room_item).to_contain_text("Alice")
    bob.page.screenshot(path=str(OUTPUT / "lobby.png"))
    room_item.locator(".room-link").click()
    expect(bob.page).to_have_url(room_url)
    bob.wait_joined()

    alice.wait_for_media(1)
    bob.wait_for_media(1)
    for me, other in ((alice, bob), (bob, alice)):
        [stats] = me.stats()
        assert stats["state"] == "connected"
        assert stats["framesDecoded"] > 0, stats
        assert stats["audioPackets"] > 0, stats
        expect(me.tile(other)).to_be_visible()
        expect(me.tile(other).locator(".tile-name")).to_have_text(other.name)
        expect(me.page.locator(".tile.local .tile-name")).to_have_text(f"{me.name} (you)")
        expect(me.page.locator("#people-count")).to_have_text("2 of 6")
