"""Calls in a real browser: media really flows (getStats), and the page says what happens."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import WebSocketRoute, expect

from tests.browser.conftest import (
    OUTPUT,
    Person,
    Server,
    each_pair,
    for_pair,
    frames_decoded,
    screenshot,
    wait_for_more_frames,
)

pytestmark = pytest.mark.browser

People = Callable[..., Person]


@each_pair
def test_two_people_in_a_video_room_created_from_the_lobby_see_and_hear_each_other(
    person: People, engines: tuple[str, str]
) -> None:
    alice, bob = person("Alice", engine=engines[0]), person("Bob", engine=engines[1])
    room_url = alice.create_room(for_pair("Standup", engines))

    # Bob finds the room in his lobby, which lists Alice in it, and walks in.
    bob.page.goto(bob.url("/"))
    room_item = bob.page.locator(".room-item", has_text=for_pair("Standup", engines))
    expect(room_item).to_contain_text("Alice")
    bob.page.screenshot(path=screenshot("lobby", engines))
    bob.page.set_viewport_size({"width": 390, "height": 844})
    bob.page.screenshot(path=screenshot("lobby-phone", engines), full_page=True)
    bob.page.set_viewport_size({"width": 1280, "height": 720})
    room_item.locator(".room-link").click()
    expect(bob.page).to_have_url(room_url)
    bob.wait_joined()

    # Two people: one copy of the camera each, with the most bitrate. The page sets it a
    # moment after connecting, and Firefox then starts its counters of what it receives
    # again: they are read after that.
    for me in (alice, bob):
        me.wait_for_bitrate_caps(1_500_000, senders=1)
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


def test_a_chat_message_sent_by_one_person_appears_for_the_other_as_plain_text(
    person: People,
) -> None:
    alice, bob = person("Alice"), person("Bob")
    room_url = alice.create_room("Chat room")
    bob.join(room_url)

    box = alice.message_box()
    box.fill("Hello <b>Bob</b> & <img src=x onerror=alert(1)>")
    box.press("Enter")
    expect(box).to_have_value("")
    # Shift+Enter is a new line, Enter sends.
    box.type("line one")
    box.press("Shift+Enter")
    box.type("line two")
    box.press("Enter")

    messages = bob.page.locator("#chat-messages .message")
    expect(messages).to_have_count(2)
    first = messages.nth(0)
    expect(first.locator(".message-name")).to_have_text("Alice")
    expect(first.locator(".message-body")).to_have_text(
        "Hello <b>Bob</b> & <img src=x onerror=alert(1)>"
    )
    assert first.locator(".message-body b, .message-body img").count() == 0
    assert re.fullmatch(r"\d{1,2}:\d{2}(\s?[AP]M)?", first.locator("time").inner_text())
    assert messages.nth(1).locator(".message-body").inner_text() == "line one\nline two"
    # The sender's own copy is the server's acknowledgement.
    expect(alice.page.locator("#chat-messages .message.mine")).to_have_count(2)

    # Refusals are said in plain words near the chat box: too long (caught by the page)...
    error = alice.page.locator("#chat-error")
    box.evaluate("(box) => { box.value = 'x'.repeat(2001); }")  # past maxlength
    box.press("Enter")
    expect(error).to_have_text(
        "Messages can be at most 2,000 characters long (this one has 2,001)."
    )
    # ...and refused by the server (a blank body sent past the page's own check).
    box.fill("")
    alice.page.evaluate("window.confab.signaling.send({type: 'chat', body: '   '})")
    expect(error).to_contain_text("That message could not be sent")
    alice.say("all good")
    expect(error).to_be_hidden()
    expect(messages).to_have_count(3)


def test_someone_who_joins_later_sees_the_history_and_can_load_older_messages(
    person: People, server: Server
) -> None:
    alice, bob = person("Alice"), person("Bob")
    room_url = alice.create_room("Busy room")
    slug = room_url.rstrip("/").rsplit("/", 1)[-1]
    server.manage(
        "shell",
        "-c",
        "from rooms.models import ChatMessage, Room\n"
        "from django.contrib.auth.models import User\n"
        f"room = Room.objects.get(slug={slug!r})\n"
        f"author = User.objects.get(username={alice.username!r})\n"
        "ChatMessage.objects.bulk_create([ChatMessage(room=room, author=author,"
        " author_name='Alice', body=f'message {i}') for i in range(1, 61)])\n",
    )

    bob.join(room_url)
    messages = bob.page.locator("#chat-messages .message")
    expect(messages).to_have_count(50)
    expect(messages.last.locator(".message-body")).to_have_text("message 60")
    older = bob.page.get_by_role("button", name="Load older messages")
    older.click()
    expect(messages).to_have_count(60)
    expect(messages.first.locator(".message-body")).to_have_text("message 1")
    expect(older).to_be_hidden()


@each_pair
def test_muting_the_microphone_and_turning_the_camera_off_show_badges_to_the_other_person(
    person: People, engines: tuple[str, str]
) -> None:
    alice, bob = person("Alice", engine=engines[0]), person("Bob", engine=engines[1])
    room_url = alice.create_room(for_pair("Badges", engines))
    bob.join(room_url)
    alice.wait_for_media(1)
    bob_on_alice = alice.tile(bob)
    expect(bob_on_alice.locator(".mic-off")).to_be_hidden()
    expect(bob_on_alice.locator(".cam-off")).to_be_hidden()

    bob.page.get_by_role("button", name="Mute microphone").click()
    expect(bob_on_alice.locator(".mic-off")).to_be_visible()
    expect(bob.page.get_by_role("button", name="Unmute microphone")).to_be_visible()
    expect(bob.page.locator(".tile.local .mic-off")).to_be_visible()

    bob.page.get_by_role("button", name="Turn camera off").click()
    expect(bob_on_alice.locator(".cam-off")).to_be_visible()
    expect(bob_on_alice).to_have_class(re.compile(r"\bno-video\b"))

    # Tracks were only disabled: still attached, nothing renegotiated.
    senders = bob.page.evaluate(
        """() => [...window.confab.peers.values()][0].pc.getSenders()
             .filter((s) => s.track).map((s) => [s.track.kind, s.track.enabled]).sort()"""
    )
    assert senders == [["audio", False], ["video", False]]

    bob.page.get_by_role("button", name="Unmute microphone").click()
    bob.page.get_by_role("button", name="Turn camera on").click()
    expect(bob_on_alice.locator(".mic-off")).to_be_hidden()
    expect(bob_on_alice.locator(".cam-off")).to_be_hidden()
    expect(bob_on_alice).not_to_have_class(re.compile(r"\bno-video\b"))


def test_leaving_returns_to_the_lobby_and_removes_the_tile_on_the_other_side(
    person: People,
) -> None:
    alice, bob = person("Alice"), person("Bob")
    room_url = alice.create_room("Short call")
    bob.join(room_url)
    alice.wait_for_media(1)
    expect(alice.tile(bob)).to_be_visible()

    bob.page.get_by_role("button", name="Leave the call").click()
    expect(bob.page).to_have_url(bob.url("/"))
    expect(alice.tile(bob)).to_have_count(0)
    expect(alice.page.locator("#people-count")).to_have_text("1 of 6")
    assert alice.page.evaluate("window.confab.peers.size") == 0


@each_pair
def test_three_people_each_decode_two_remote_videos(
    person: People, engines: tuple[str, str]
) -> None:
    # Alice and Charlie on one engine, Bob on the other (when they differ).
    alice, bob = person("Alice", engine=engines[0]), person("Bob", engine=engines[1])
    charlie = person("Charlie", engine=engines[0], viewport={"width": 390, "height": 844})
    room_url = alice.create_room(for_pair("Design review", engines))
    bob.join(room_url)
    charlie.join(room_url)
    everyone = (alice, bob, charlie)
    for someone in everyone:
        # A copy of the camera for each of the others, each with less bitrate than in a call
        # of two (Firefox starts its receive counters again when it sets that: read after).
        someone.wait_for_bitrate_caps(800_000, senders=2)
    for someone in everyone:
        someone.wait_for_media(2)
        rows = someone.stats()
        assert sorted(row["name"] for row in rows) == sorted(
            other.name for other in everyone if other is not someone
        )
        assert all(row["framesDecoded"] > 0 and row["audioPackets"] > 0 for row in rows), rows

    # A lived-in call for the screenshots: a few messages, someone muted.
    bob.say("Morning all! Slides are in the shared folder.")
    alice.say("Thanks Bob, starting in a minute.")
    charlie.page.get_by_role("button", name="Mute microphone").click()
    expect(alice.page.locator("#chat-messages .message")).to_have_count(2)
    expect(alice.tile(charlie).locator(".mic-off")).to_be_visible()
    alice.page.screenshot(path=screenshot("three-person-call", engines))

    # Phone width: the chat is closed and opens over the stage.
    expect(charlie.page.locator("#chat")).to_be_hidden()
    expect(charlie.page.locator("#chat-unread")).to_be_visible()
    charlie.page.screenshot(path=screenshot("three-person-call-phone", engines))
    charlie.page.get_by_role("button", name="Chat").click()
    expect(charlie.page.locator("#chat")).to_be_visible()
    expect(charlie.page.locator("#chat-messages .message")).to_have_count(2)
    charlie.page.screenshot(path=screenshot("three-person-call-phone-chat", engines))


@each_pair
def test_a_voice_room_carries_audio_both_ways_and_sends_no_video(
    person: People, engines: tuple[str, str]
) -> None:
    alice, bob = person("Alice", engine=engines[0]), person("Bob", engine=engines[1])
    room_url = alice.create_room(for_pair("Coffee chat", engines), kind="voice")
    bob.join(room_url)
    for me, other in ((alice, bob), (bob, alice)):
        me.wait_for_media(1, video=False)
        [row] = me.stats()
        assert row["audioPackets"] > 0, row
        assert row["outboundAudio"] > 0, row
        assert row["outboundVideo"] == 0, row
        assert row["videoTransceivers"] == 0, row
        assert row["sendingVideo"] == 0, row
        assert me.page.evaluate("window.confab.localStream.getVideoTracks().length") == 0
        expect(me.page.get_by_role("button", name="Turn camera off")).to_have_count(0)
        expect(me.tile(other).locator(".avatar-initial")).to_have_text(other.name[0])
        # The speaking indicator lights up with the fake microphone's beeps once the page
        # may use sound (a click). Beeps are short: look at every frame.
        me.page.locator(".stage-head").click()
        me.page.wait_for_function(
            "(id) => document.querySelector(`.tile[data-peer='${id}']`)"
            ".classList.contains('speaking')",
            arg=me.page.evaluate("[...window.confab.peers.keys()][0]"),
            polling="raf",
        )
    alice.page.screenshot(path=screenshot("voice-room", engines))


def test_when_the_browser_blocks_sound_the_video_still_plays_and_a_button_turns_sound_on(
    person: People,
) -> None:
    alice = person("Alice")
    bob = person("Bob", block_autoplay=True)
    room_url = alice.create_room("Autoplay")
    bob.join(room_url)
    bob.wait_for_media(1)
    sound = bob.page.get_by_role("button", name="Click to enable sound")
    expect(sound).to_be_visible()
    remote = bob.page.locator(".tile:not(.local) video")
    assert remote.evaluate("(video) => video.muted && !video.paused")  # picture, no sound
    sound.click()
    expect(sound).to_be_hidden()
    bob.page.wait_for_function(
        "() => { const v = document.querySelector('.tile:not(.local) video');"
        " return !v.muted && !v.paused; }"
    )


def test_the_third_person_in_a_room_for_two_is_told_that_it_is_full(person: People) -> None:
    alice, bob, charlie = person("Alice"), person("Bob"), person("Charlie")
    room_url = alice.create_room("Pair programming", capacity=2)
    bob.join(room_url)
    charlie.page.goto(room_url)
    closed = charlie.page.locator("#closed")
    expect(closed).to_be_visible()
    expect(closed).to_contain_text("This room is full (2 of 2).")
    expect(closed.get_by_role("link", name="Back to the lobby")).to_be_visible()
    assert charlie.page.evaluate("window.confab.peers.size") == 0
    # Refused before any device was asked for.
    assert charlie.page.evaluate("window.confab.localStream.getTracks().length") == 0
    charlie.page.screenshot(path=str(OUTPUT / "room-full.png"))
    # No retry after a refusal: Alice and Bob stay a pair.
    alice.wait_for_media(1)
    expect(alice.page.locator("#people-count")).to_have_text("2 of 2")


def test_someone_who_denies_the_camera_and_microphone_still_watches_listens_and_chats(
    person: People,
) -> None:
    alice = person("Alice")
    bob = person("Bob", refuse_devices=True)
    room_url = alice.create_room("Town hall")
    bob.join(room_url)
    expect(bob.page.locator("#device-notice")).to_contain_text(
        "You did not allow the camera and microphone"
    )
    bob.wait_for_media(1)  # recvonly transceivers: Bob sees and hears Alice
    bob.page.screenshot(path=str(OUTPUT / "devices-refused.png"))
    alice.page.wait_for_function(
        """() => [...window.confab.peers.values()].some(
             (p) => p.pc && p.pc.connectionState === "connected")"""
    )
    expect(alice.tile(bob).locator(".mic-off")).to_be_visible()
    expect(alice.tile(bob).locator(".cam-off")).to_be_visible()
    expect(bob.page.get_by_role("button", name="No microphone")).to_be_disabled()
    expect(bob.page.get_by_role("button", name="No camera")).to_be_disabled()
    bob.say("I can see you, no camera here")
    expect(alice.page.locator("#chat-messages .message-body")).to_have_text(
        ["I can see you, no camera here"]
    )

    # Bob allows them after all: his tracks join the call by renegotiation.
    bob.page.get_by_role("button", name="Try again").click()
    expect(bob.page.locator("#device-notice")).to_be_hidden()
    alice.wait_for_media(1)
    expect(alice.tile(bob).locator(".mic-off")).to_be_hidden()
    expect(alice.tile(bob).locator(".cam-off")).to_be_hidden()
    expect(bob.page.get_by_role("button", name="Mute microphone")).to_be_enabled()


class Link:
    """One websocket between a page and the server, through Playwright. While `frozen`
    nothing passes either way and a close by the page is not passed on: the server keeps a
    half-open socket, as after a network change that the server has not noticed yet."""

    def __init__(self, page_side: WebSocketRoute) -> None:
        self.page_side = page_side
        self.url = page_side.url
        self.frozen = False
        # While set, a chat message from the page is not passed on: the page gets this
        # instead (an `error` the server would send).
        self.refuse_chat: dict[str, Any] | None = None
        self.from_server: list[dict[str, Any]] = []
        self.server_side = page_side.connect_to_server()
        page_side.on_message(self.page_says)
        self.server_side.on_message(self.server_says)
        page_side.on_close(self.page_closed)

    def page_says(self, message: str | bytes) -> None:
        if self.refuse_chat and isinstance(message, str) and json.loads(message)["type"] == "chat":
            self.page_side.send(json.dumps(self.refuse_chat))
            return
        if not self.frozen:
            self.server_side.send(message)

    def server_says(self, message: str | bytes) -> None:
        if isinstance(message, str):
            self.from_server.append(json.loads(message))
        if not self.frozen:
            self.page_side.send(message)

    def page_closed(self, code: int | None, reason: str | None) -> None:
        if not self.frozen:
            self.server_side.close(code=code or 1000, reason=reason or "")

    def server_closes(self, code: int, refusal: str) -> None:
        """The server says why (`closing`), then closes the page's socket with `code`; its
        own end goes away as with a lost network."""
        self.frozen = True
        closing = {"type": "closing", "code": code, "refusal": refusal, "reason": "(a test)"}
        self.page_side.send(json.dumps(closing))
        self.page_side.close(code=code, reason="")
        self.server_side.close()

    def drop(self) -> None:
        """The network goes away: both ends see the socket close."""
        self.frozen = True
        self.server_side.close()
        self.page_side.close(code=1011, reason="network went away")


def wait_until(condition: Callable[[], bool], someone: Person, timeout: float = 10.0) -> None:
    """Poll a condition that Playwright's event callbacks make true (they run while the
    page is being waited on)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not become true in time")
        someone.page.wait_for_timeout(50)


def proxy_sockets(someone: Person) -> list[Link]:
    links: list[Link] = []
    someone.page.route_web_socket(re.compile(r"/ws/rooms/"), lambda ws: links.append(Link(ws)))
    return links


# Counts what a page would show if someone left: peer-left messages and removed tiles.
WATCH_DEPARTURES_JS = """() => {
  window.__departures = {peerLeft: 0, tilesRemoved: 0};
  window.confab.signaling.on("peer-left", () => { window.__departures.peerLeft += 1; });
  new MutationObserver((records) => {
    for (const record of records)
      for (const node of record.removedNodes)
        if (node.classList?.contains("tile")) window.__departures.tilesRemoved += 1;
  }).observe(document.getElementById("tiles"), {childList: true});
  for (const peer of window.confab.peers.values()) peer.pc.__before_the_drop = true;
}"""

KEPT_JS = """() => ({
  ...window.__departures,
  tiles: document.querySelectorAll("#tiles .tile:not(.local)").length,
  peers: window.confab.peers.size,
  kept: [...window.confab.peers.values()].every((peer) => peer.pc && peer.pc.__before_the_drop),
})"""


def restart_ice_and_wait(someone: Person) -> None:
    """An ICE restart from `someone`'s side of their only call, until it is done."""
    before = someone.page.evaluate(UFRAG_JS)
    someone.page.evaluate("[...window.confab.peers.values()][0].pc.restartIce()")
    wait_ice_restarted(someone, before)


def wait_ice_restarted(someone: Person, before: str) -> None:
    """Until `someone`'s only call is stable and connected again with another ICE ufrag
    than `before`."""
    someone.page.wait_for_function(
        """(before) => {
             const pc = [...window.confab.peers.values()][0].pc;
             const ufrag = pc.localDescription.sdp.match(/a=ice-ufrag:(\\S+)/)[1];
             return pc.signalingState === "stable" && pc.connectionState === "connected"
               && ufrag !== before;
           }""",
        arg=before,
    )


@each_pair
def test_a_dropped_connection_resumes_its_seat_and_the_call_carries_on(
    person: People, engines: tuple[str, str]
) -> None:
    alice, bob = person("Alice", engine=engines[0]), person("Bob", engine=engines[1])
    links = proxy_sockets(bob)
    room_url = alice.create_room(for_pair("Flaky network", engines))
    bob.join(room_url)
    alice.wait_for_media(1)
    bob.wait_for_media(1)
    bob_id = bob.peer_id()
    for someone in (alice, bob):
        someone.page.evaluate(WATCH_DEPARTURES_JS)

    # The network drops: the server loses the socket, the page sees an abnormal close.
    frames = {someone.name: frames_decoded(someone) for someone in (alice, bob)}
    links[-1].drop()
    notice = bob.page.locator("#conn-notice")
    expect(notice).to_have_text("Connection lost — reconnecting…")
    expect(bob.page.locator("#conn-status")).to_have_text("Reconnecting…")
    expect(notice).to_be_hidden()
    expect(bob.page.locator("#conn-status")).to_have_text("Connected")
    assert len(links) == 2
    assert "?resume=" in links[1].url
    assert [m["resumed"] for m in links[1].from_server if m["type"] == "welcome"] == [True]
    # The same seat: same peer id, the same peer connections and tiles, nobody left.
    assert bob.peer_id() == bob_id
    for someone in (alice, bob):
        assert someone.page.evaluate(KEPT_JS) == {
            "peerLeft": 0,
            "tilesRemoved": 0,
            "tiles": 1,
            "peers": 1,
            "kept": True,
        }, someone.name
        wait_for_more_frames(someone, frames[someone.name])  # video still decoded

    # Signaling goes through the new socket both ways: chat, and an ICE restart.
    bob.say("back again")
    expect(alice.page.locator("#chat-messages .message-body")).to_have_text(["back again"])
    restart_ice_and_wait(alice)
    for someone in (alice, bob):
        wait_for_more_frames(someone, frames_decoded(someone))  # video through the new pair

    # A half-open socket: the page gives up on it (as its heartbeat does when the server
    # falls silent) while the server still holds it. The new socket takes the seat and the
    # server closes the old one with 4408, which nobody has to hear about.
    links[-1].frozen = True
    bob.page.evaluate("window.confab.signaling.drop('no answer from the server')")
    expect(bob.page.locator("#conn-status")).to_have_text("Connected")
    assert len(links) == 3
    assert [m["resumed"] for m in links[2].from_server if m["type"] == "welcome"] == [True]
    wait_until(
        lambda: any(
            m["type"] == "closing" and m["code"] == 4408 and m.get("refusal") == "superseded"
            for m in links[1].from_server
        ),
        bob,
    )
    assert bob.peer_id() == bob_id
    for someone in (alice, bob):
        wait_for_more_frames(someone, frames_decoded(someone))
        assert someone.page.evaluate(KEPT_JS)["peerLeft"] == 0
    expect(bob.page.locator("#closed")).to_be_hidden()


def test_someone_who_joined_while_the_socket_was_down_is_met_after_the_resume(
    person: People,
) -> None:
    alice, bob, charlie = person("Alice"), person("Bob"), person("Charlie")
    links = proxy_sockets(bob)
    room_url = alice.create_room("Late arrival")
    bob.join(room_url)
    bob.wait_for_media(1)
    bob_id, alice_id = bob.peer_id(), alice.peer_id()

    # Bob's socket goes half-open: Charlie's arrival and his offer to Bob are lost on it.
    links[-1].frozen = True
    charlie.join(room_url)
    charlie.wait_for_media(1, only=[alice_id])
    bob.page.evaluate("window.confab.signaling.drop('no answer from the server')")

    # Resumed, Bob meets Charlie: whichever offer wins, all three are connected.
    for someone in (alice, bob, charlie):
        someone.wait_for_media(2)
    assert bob.peer_id() == bob_id
    expect(bob.page.locator(".tile:not(.local)")).to_have_count(2)


def test_a_reconnect_that_cannot_resume_its_seat_joins_afresh(person: People) -> None:
    alice, bob = person("Alice"), person("Bob")
    links = proxy_sockets(bob)
    room_url = alice.create_room("New seat")
    bob.join(room_url)
    bob.wait_for_media(1)
    first_id = bob.peer_id()

    # The seat cannot be taken back (here: the token is not the server's).
    bob.page.evaluate("window.confab.signaling.resumeToken = 'not-a-token-the-server-made'")
    links[-1].drop()
    bob.page.wait_for_function("(first) => window.confab.selfId !== first", arg=first_id)
    second_id = bob.peer_id()
    # A fresh join: new connections. Bob's page never takes his own earlier seat (which the
    # server holds for a while to let a page resume) for somebody else.
    bob.wait_for_media(1)
    assert first_id not in bob.page.evaluate("[...window.confab.peers.keys()]")
    expect(bob.page.locator(".tile:not(.local)")).to_have_count(1)
    alice.wait_for_media(1, only=[second_id])


UFRAG_JS = """() => {
  const pc = [...window.confab.peers.values()][0].pc;
  return pc.localDescription.sdp.match(/a=ice-ufrag:(\\S+)/)[1];
}"""


def is_offer_message(message: str | bytes) -> bool:
    return isinstance(message, str) and json.loads(message).get("type") == "offer"


RESTART_ICE_JS = "[...window.confab.peers.values()][0].pc.restartIce()"
ADD_M_LINE_JS = """() => {
  const pc = [...window.confab.peers.values()][0].pc;
  window.__m_lines = pc.getTransceivers().length;
  pc.addTransceiver("audio", {direction: "inactive"});
}"""
NEGOTIATED_BOTH_M_LINES_JS = """() => {
  const pc = [...window.confab.peers.values()][0].pc;
  const transceivers = pc.getTransceivers();
  return pc.signalingState === "stable" && transceivers.length === window.__m_lines + 2
    && transceivers.every((t) => t.mid !== null) && pc.connectionState === "connected";
}"""


@pytest.mark.parametrize("change", ["ice-restart", "m-line"])
@each_pair
def test_offers_that_cross_are_settled_by_perfect_negotiation(
    person: People, engines: tuple[str, str], change: str
) -> None:
    alice, bob = person("Alice", engine=engines[0]), person("Bob", engine=engines[1])
    # A proxy on each page's socket. While `holding`, what a page sends waits (in order)
    # until both pages have sent an offer; then both go out together: the offers cross.
    holding = False
    queues: dict[str, list[tuple[WebSocketRoute, str | bytes]]] = {"Alice": [], "Bob": []}

    def proxy_for(name: str) -> Callable[[WebSocketRoute], None]:
        def route(page_side: WebSocketRoute) -> None:
            server_side = page_side.connect_to_server()

            def from_page(message: str | bytes) -> None:
                nonlocal holding
                queue = queues[name]
                is_offer = is_offer_message(message)
                if holding and (queue or is_offer):
                    queue.append((server_side, message))
                    if all(any(is_offer_message(m) for _, m in q) for q in queues.values()):
                        holding = False
                        for q in queues.values():
                            for server, held in q:
                                server.send(held)
                    return
                server_side.send(message)

            page_side.on_message(from_page)

        return route

    for someone in (alice, bob):
        someone.page.route_web_socket(re.compile(r"/ws/rooms/"), proxy_for(someone.name))
    room_url = alice.create_room(for_pair(f"Crossed wires {change}", engines))
    bob.join(room_url)
    alice.wait_for_media(1)
    bob.wait_for_media(1)
    before = {someone.name: someone.page.evaluate(UFRAG_JS) for someone in (alice, bob)}
    # Both renegotiate at once: an ICE restart each, or a new m-line each.
    restart = change == "ice-restart"

    holding = True
    for someone in (alice, bob):
        someone.page.evaluate(RESTART_ICE_JS if restart else ADD_M_LINE_JS)
    for someone in (alice, bob):
        if restart:
            wait_ice_restarted(someone, before[someone.name])
        else:
            # Stable with both new m-lines (ours and theirs) negotiated.
            someone.page.wait_for_function(NEGOTIATED_BOTH_M_LINES_JS)
    assert not holding, "the two offers never crossed"
    alice.wait_for_media(1)
    bob.wait_for_media(1)


def test_a_chat_message_the_server_could_not_deliver_goes_back_to_the_box(
    person: People,
) -> None:
    alice, bob = person("Alice"), person("Bob")
    links = proxy_sockets(alice)
    room_url = alice.create_room("Lost words")
    bob.join(room_url)
    expect(alice.tile(bob)).to_have_count(1)

    # The server could not deliver it (its database was away): `error server_error` with
    # ref chat, and nobody got the message. Nothing typed is lost.
    links[-1].refuse_chat = {
        "type": "error",
        "code": "server_error",
        "detail": "unavailable",
        "message": "the database or the channel layer failed",
        "ref": "chat",
    }
    alice.say("The minutes are in the shared folder")
    error = alice.page.locator("#chat-error")
    expect(error).to_have_text(
        "Your message could not be sent because of a problem on the server. "
        "It is back in the message box: send it again."
    )
    expect(alice.message_box()).to_have_value("The minutes are in the shared folder")
    expect(bob.page.locator("#chat-messages .message")).to_have_count(0)

    # Sent again once the server is well: delivered, the error and the box cleared.
    links[-1].refuse_chat = None
    alice.message_box().press("Enter")
    expect(error).to_be_hidden()
    expect(alice.message_box()).to_have_value("")
    expect(bob.page.locator("#chat-messages .message-body")).to_have_text(
        "The minutes are in the shared folder"
    )


def test_a_server_that_cannot_take_the_page_or_failed_with_it_is_retried_with_a_notice(
    person: People,
) -> None:
    alice = person("Alice")
    links = proxy_sockets(alice)
    alice.create_room("Outage")
    first_id = alice.peer_id()
    notice = alice.page.locator("#conn-notice")

    # 4503 (`unavailable`): not final; the page says so and tries again, and takes its seat
    # back (the server held it).
    links[-1].server_closes(4503, "unavailable")
    expect(notice).to_have_text("The server cannot take you in right now. Trying again…")
    expect(alice.page.locator("#conn-status")).to_have_text("Reconnecting…")
    expect(notice).to_be_hidden()
    expect(alice.page.locator("#conn-status")).to_have_text("Connected")
    assert alice.peer_id() == first_id
    assert len(links) == 2

    # 4500 (`server_error`): the server gave the seat up; the page rejoins as a new join.
    links[-1].server_closes(4500, "server_error")
    expect(notice).to_have_text("The server had a problem with your connection. Rejoining…")
    alice.page.wait_for_function("(first) => window.confab.selfId !== first", arg=first_id)
    expect(notice).to_be_hidden()
    assert "resume=" not in links[-1].url
    expect(alice.page.locator("#closed")).to_be_hidden()
