"""The waiting room in real browsers, across two workers behind nginx (deploy/run-cluster.sh,
as tests/browser/test_cluster.py starts it): Alice moderates on one worker, Bob waits on the
other and is let in, Charlie is refused for want of a seat and then declined."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Browsers, Person, screenshot
from tests.browser.servers import cluster, crowd
from tests.browser.test_cluster import wait_for_lobby_sockets

pytestmark = pytest.mark.browser


def create_room_with_waiting(alice: Person, name: str) -> str:
    """The lobby form, with "Everyone but moderators waits" and room for two."""
    page = alice.page
    page.goto(alice.url("/"))
    page.fill("#id_name", name)
    page.locator("#id_capacity").clear()
    page.fill("#id_capacity", "2")
    page.select_option("#id_waiting_room", "everyone")
    page.get_by_role("button", name="Create room").click()
    expect(page).to_have_url(re.compile(r"/rooms/(?!new/)[^/]+/$"))
    alice.wait_joined()
    return page.url


def start_waiting(someone: Person, room_url: str) -> None:
    """Open the room and pass the pre-join screen: the page waits to be let in."""
    someone.page.goto(room_url)
    seen = someone.page.wait_for_function(
        """() => (document.querySelector("#prejoin .prejoin-join") ? "prejoin" : false)
             || (document.querySelector("#waiting-card:not([hidden])") ? "waiting" : false)"""
    )
    if seen.json_value() == "prejoin":
        someone.page.get_by_role("button", name="Join now").click()
    card = someone.page.locator("#waiting-card")
    expect(card).to_be_visible()
    expect(card.get_by_role("heading")).to_have_text("Waiting to be let in")


def test_a_moderator_on_one_worker_lets_in_and_declines_people_waiting_on_the_other(
    browsers: Browsers, tmp_path: Path
) -> None:
    with cluster(tmp_path / "cluster", workers=2) as running:
        access_log = running.logs / "nginx-access.log"
        with crowd(browsers, running.url) as people:
            alice, bob, charlie = (people.person(n) for n in ("Alice", "Bob", "Charlie"))
            for someone in (bob, charlie):
                someone.page.goto("about:blank")  # out of the lobby (its live socket)
            room_url = create_room_with_waiting(alice, "Front door")
            alice_worker = alice.page.evaluate("window.confab.diagnostics.worker")
            wait_for_lobby_sockets(running, access_log)

            # Bob waits (on the other worker: least_conn). He holds no seat: 1 of 2.
            start_waiting(bob, room_url)
            expect(bob.page.locator("#waiting-text")).to_contain_text("A moderator of this room")
            queue = alice.page.locator("#waiting-queue")
            expect(queue).to_be_visible()
            expect(queue.locator(".waiting-name")).to_have_text(["Bob"])
            expect(alice.page.locator("#people-count")).to_contain_text("1")
            alice.page.screenshot(path=screenshot("waiting-queue", ("chromium", "chromium")))
            bob.page.screenshot(path=screenshot("waiting-card", ("chromium", "chromium")))

            alice.page.get_by_role("button", name="Admit Bob").click()
            bob.wait_joined()
            assert bob.page.evaluate("window.confab.diagnostics.worker") != alice_worker
            alice.wait_for_media(1)
            bob.wait_for_media(1)
            expect(queue).to_be_hidden()
            expect(bob.page.locator("#waiting-card")).to_be_hidden()

            # Charlie waits; the room is full, so letting him in is refused and he waits on.
            start_waiting(charlie, room_url)
            expect(queue.locator(".waiting-name")).to_have_text(["Charlie"])
            alice.page.get_by_role("button", name="Admit Charlie").click()
            expect(alice.page.locator(".toast", has_text="The room is full")).to_be_visible()
            expect(charlie.page.locator("#waiting-card")).to_be_visible()
            expect(alice.page.locator(".tile:not(.local)")).to_have_count(1)
            alice.page.get_by_role("button", name="Decline Charlie").click()
            expect(charlie.page.locator("#closed-title")).to_have_text(
                "A moderator did not let you in."
            )
            expect(queue).to_be_hidden()
