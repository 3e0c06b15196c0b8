"""SFU rooms in real browsers through a real Janus (docs/protocol.md, "SFU rooms").

Janus runs inside the test's network namespace like coturn and daphne. It skips loopback
interfaces when it gathers ICE candidates, so it is told to offer the address of the veth
the session made inside the namespace (for Firefox, see Browsers.add_default_route); the
browsers reach it there, and nothing leaves the namespace.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import FIREFOX_LINK, OUTPUT, Browsers, Person, wait_for_async
from tests.browser.servers import crowd
from tests.janus_server import JanusProcess, start_janus
from tests.servers_common import daphne, tail

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def veth(browsers: Browsers) -> str:
    """The address Janus offers: the session's veth (made for Firefox before any browser
    started, see Browsers.add_default_route). A pair of its own, added here while the
    browsers run, was a network change to them: a Firefox page loading then never started."""
    return FIREFOX_LINK[2]


@pytest.fixture(scope="module")
def janus(veth: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JanusProcess]:
    process = start_janus(
        tmp_path_factory.mktemp("janus"), api_secret=secrets.token_hex(16), ice_ip=veth
    )
    try:
        yield process
    finally:
        process.stop()


def create_sfu_room(who: Person, name: str, capacity: int = 30) -> str:
    page = who.page
    page.goto(who.url("/"))
    page.fill("#id_name", name)
    page.select_option("#id_media_path", "sfu")
    page.locator("#id_capacity").clear()  # see Person.create_room
    page.fill("#id_capacity", str(capacity))
    page.get_by_role("button", name="Create room").click()
    who.wait_joined()
    return page.url


@contextmanager
def three_in_a_room(
    browsers: Browsers, janus: JanusProcess, tmp_path: Path, room: str, *, before_joining: str = ""
) -> Iterator[tuple[Person, Person, Person]]:
    """Alice (the owner), Bob and Charlie in a new SFU room on this Janus, Alice receiving
    the other two. `before_joining`: a script Bob's page runs before the page's own."""
    settings = {"JANUS_URLS": janus.url, "JANUS_API_SECRET": janus.api_secret}
    with daphne(tmp_path, **settings) as server, crowd(browsers, server.url) as people:
        alice, bob, charlie = (people.person(n) for n in ("Alice", "Bob", "Charlie"))
        if before_joining:
            bob.context.add_init_script(before_joining)
        room_url = create_sfu_room(alice, room)
        bob.join(room_url)
        charlie.join(room_url)
        wait_for_everyone(alice, [bob, charlie])
        yield alice, bob, charlie


RECEIVED_JS = """async () => {
  const out = {kind: window.confab.transportKind, connections: window.confab.connections().length,
               states: window.confab.connections().map((pc) => pc.connectionState), from: {}};
  for (const id of window.confab.peers.keys()) out.from[id] = await window.confab.receivedFrom(id);
  return out;
}"""


def received(who: Person) -> dict[str, Any]:
    return dict(who.page.evaluate(RECEIVED_JS))


def wait_for_everyone(who: Person, others: list[Person], timeout: float = 30_000) -> None:
    """Two connections, both connected, and video frames and audio from each of `others`."""
    ids = [other.peer_id() for other in others]
    try:
        wait_for_async(
            who.page,
            f"""async (ids) => {{
              const r = await ({RECEIVED_JS})();
              return r.connections === 2 && r.states.every((s) => s === "connected")
                && ids.every((id) => r.from[id] && r.from[id].framesDecoded > 0
                                     && r.from[id].audioPackets > 0);
            }}""",
            ids,
            timeout=timeout,
        )
    except Exception as error:
        raise AssertionError(f"{who.name}: not receiving everyone: {received(who)}") from error


def test_five_people_in_an_sfu_room_have_two_connections_each_and_receive_all_four_others(
    browsers: Browsers, janus: JanusProcess, tmp_path: Path
) -> None:
    settings = {"JANUS_URLS": janus.url, "JANUS_API_SECRET": janus.api_secret}
    with daphne(tmp_path, **settings) as server, crowd(browsers, server.url) as people:
        names = ["Alice", "Bob", "Charlie", "Dana", "Erin"]
        everyone = [people.person(name) for name in names]
        room_url = create_sfu_room(everyone[0], "All hands")
        for who in everyone[1:]:
            who.join(room_url)
        for who in everyone:
            wait_for_everyone(who, [other for other in everyone if other is not who])
            state = received(who)
            assert state["kind"] == "sfu"
            assert state["connections"] == 2, state
        for who in everyone:
            expect(who.page.locator(".tile:not(.local)")).to_have_count(4)
        # Files go peer to peer: not here, and the control says why.
        why = "Files cannot be sent in rooms through the media server"
        expect(everyone[0].page.get_by_role("button", name=why)).to_have_attribute(
            "aria-disabled", "true"
        )
        OUTPUT.mkdir(exist_ok=True)
        everyone[0].page.screenshot(path=str(OUTPUT / "sfu-five.png"))


def test_firefox_publishes_and_subscribes_in_an_sfu_room_beside_chromium(
    browsers: Browsers, janus: JanusProcess, tmp_path: Path
) -> None:
    # Alice (Chromium) owns the room; Bob and Charlie are in Firefox: Firefox's simulcast
    # publisher and its subscriber beside Chromium's, everyone receiving everyone.
    settings = {"JANUS_URLS": janus.url, "JANUS_API_SECRET": janus.api_secret}
    with daphne(tmp_path, **settings) as server, crowd(browsers, server.url) as people:
        alice = people.person("Alice")
        bob, charlie = (people.person(name, engine="firefox") for name in ("Bob", "Charlie"))
        room_url = create_sfu_room(alice, "Mixed engines")
        for who in (bob, charlie):
            # Firefox runs each context in a window of its own, and only the newest is in
            # front: a page behind it gets no animation frames, and its pre-join screen waits.
            who.page.bring_to_front()
            who.join(room_url)
        for who in (alice, bob, charlie):
            wait_for_everyone(who, [other for other in (alice, bob, charlie) if other is not who])
            assert received(who)["kind"] == "sfu"
        bob.page.screenshot(path=str(OUTPUT / "sfu-firefox.png"))


def frame_width(who: Person, other: Person) -> int:
    return int(who.page.evaluate(f"window.confab.receivedFrom({other.peer_id()!r})")["frameWidth"])


def audio_packets(who: Person, other: Person) -> int:
    return int(
        who.page.evaluate(f"window.confab.receivedFrom({other.peer_id()!r})")["audioPackets"]
    )


def test_the_pinned_tile_receives_the_high_layer_and_the_strip_a_low_one(
    browsers: Browsers, janus: JanusProcess, tmp_path: Path
) -> None:
    with three_in_a_room(browsers, janus, tmp_path, "Layers") as (alice, bob, charlie):
        alice.tile(bob).dblclick()
        expect(alice.tile(bob)).to_have_class(re.compile(r"\bpinned\b"))
        ids = [bob.peer_id(), charlie.peer_id()]
        try:
            wait_for_async(
                alice.page,
                """async ([stage, strip]) => {
                  const big = await window.confab.receivedFrom(stage);
                  const small = await window.confab.receivedFrom(strip);
                  return big.frameWidth >= 640 && small.frameWidth > 0 && small.frameWidth <= 320;
                }""",
                ids,
                timeout=20_000,
            )
        except Exception as error:
            widths = (frame_width(alice, bob), frame_width(alice, charlie))
            raise AssertionError(f"stage and strip widths: {widths}") from error


# Drops `moderator-request` before the page sees it: a page that ignores a moderator.
IGNORE_MODERATORS = """
(() => {
  const original = WebSocket.prototype.addEventListener;
  WebSocket.prototype.addEventListener = function (type, listener, options) {
    if (type !== "message") return original.call(this, type, listener, options);
    return original.call(this, type, (event) => {
      if (typeof event.data === "string" && event.data.includes('"moderator-request"')) return;
      listener.call(this, event);
    }, options);
  };
})();
"""


def test_a_moderator_mutes_a_page_that_ignores_the_request_and_its_audio_stops(
    browsers: Browsers, janus: JanusProcess, tmp_path: Path
) -> None:
    with three_in_a_room(browsers, janus, tmp_path, "Muted", before_joining=IGNORE_MODERATORS) as (
        alice,
        bob,
        charlie,
    ):
        wait_for_everyone(charlie, [alice, bob])
        alice.page.evaluate(
            "(id) => window.confab.signaling.send({type: 'mute', peer_id: id})", bob.peer_id()
        )
        # Bob's page did not obey: his microphone is still on and he still sends audio.
        sent = bob.page.evaluate("window.confab.localStream.getAudioTracks()[0].enabled")
        assert sent is True
        # Within a second Janus stops forwarding it: Charlie's count stops growing.
        bob_page_sends = """async () => {
          let sent = 0;
          for (const pc of window.confab.connections())
            (await pc.getStats()).forEach((r) => {
              if (r.type === "outbound-rtp" && r.kind === "audio") sent += r.packetsSent || 0;
            });
          return sent;
        }"""
        wait_for_async(
            charlie.page,
            """async (id) => {
              const a = (await window.confab.receivedFrom(id)).audioPackets;
              await new Promise((r) => setTimeout(r, 1000));
              return (await window.confab.receivedFrom(id)).audioPackets === a;
            }""",
            bob.peer_id(),
            timeout=5_000,
        )
        before_bob = bob.page.evaluate(bob_page_sends)
        before = audio_packets(charlie, bob)
        wait_for_async(
            bob.page, f"async () => (await ({bob_page_sends})()) > {before_bob} + 50", timeout=5_000
        )
        assert audio_packets(charlie, bob) == before  # still nothing reaches Charlie
        # Alice is not muted: her audio still reaches Charlie.
        alice_before = audio_packets(charlie, alice)
        wait_for_async(
            charlie.page,
            f"async (id) => (await window.confab.receivedFrom(id)).audioPackets > {alice_before}",
            alice.peer_id(),
        )


def test_kick_and_a_resumed_seat_in_an_sfu_room(
    browsers: Browsers, janus: JanusProcess, tmp_path: Path
) -> None:
    with three_in_a_room(browsers, janus, tmp_path, "Kick") as (alice, bob, charlie):
        # Bob's socket drops; his page resumes the seat and publishes again.
        bob_id = bob.peer_id()
        bob.page.evaluate("window.confab.signaling.drop('no answer from the server')")
        bob.page.wait_for_function("() => window.confab.signaling.connected")
        assert bob.peer_id() == bob_id
        wait_for_everyone(bob, [alice, charlie])
        wait_for_everyone(alice, [bob, charlie])
        # Alice removes Charlie: his page says so, and his tile leaves everyone's page.
        alice.page.evaluate(
            "(id) => window.confab.signaling.send({type: 'kick', peer_id: id})", charlie.peer_id()
        )
        expect(charlie.page.locator("#closed")).to_be_visible()
        expect(bob.tile(charlie)).to_have_count(0)
        expect(alice.tile(charlie)).to_have_count(0)
        assert charlie.page.evaluate("window.confab.connections().length") == 0


# What a page shows of its SFU connections, when the failover test gives up on it.
FAILOVER_STATE_JS = """async (id) => ({
  connections: window.confab.connections().map((pc) => ({
    fresh: !window.__before.includes(pc), connection: pc.connectionState,
    ice: pc.iceConnectionState, signaling: pc.signalingState,
    transceivers: pc.getTransceivers().map((t) => `${t.mid}:${t.direction}`),
  })),
  received: await window.confab.receivedFrom(id),
})"""


def test_a_janus_killed_mid_call_hands_the_room_to_the_other_and_media_comes_back(
    browsers: Browsers, veth: str, tmp_path: Path
) -> None:
    secret = secrets.token_hex(16)
    first = start_janus(
        tmp_path / "first", api_secret=secret, ice_ip=veth, rtp_ports=(21000, 21499)
    )
    second = start_janus(
        tmp_path / "second", api_secret=secret, ice_ip=veth, rtp_ports=(21500, 21999)
    )
    try:
        settings = {"JANUS_URLS": f"{first.url},{second.url}", "JANUS_API_SECRET": secret}
        with (
            daphne(tmp_path / "server", **settings) as server,
            crowd(browsers, server.url) as people,
        ):
            alice, bob = people.person("Alice"), people.person("Bob")
            room_url = create_sfu_room(alice, "Failover")
            bob.join(room_url)
            for me, other in ((alice, bob), (bob, alice)):
                wait_for_everyone(me, [other])
            for me in (alice, bob):
                me.page.evaluate("() => { window.__before = window.confab.connections(); }")
            first.kill()  # the room's Janus (the first of two equally loaded)
            # No reload: the same pages publish again through the other Janus, on two new
            # connections, and decode each other again.
            for me, other in ((alice, bob), (bob, alice)):
                try:
                    wait_for_async(
                        me.page,
                        """async (id) => {
                          const now = window.confab.connections();
                          const old = window.__before;
                          const fresh = now.length === 2 && now.every((pc) => !old.includes(pc));
                          return fresh && (await window.confab.receivedFrom(id)).framesDecoded > 0;
                        }""",
                        other.peer_id(),
                        timeout=30_000,
                    )
                except Exception as error:
                    raise AssertionError(
                        f"{me.name} did not decode {other.name} after the failover: "
                        f"{me.page.evaluate(FAILOVER_STATE_JS, other.peer_id())}; "
                        f"console: {me.console[-15:]}; server: {tail(server.log)}"
                    ) from error
                wait_for_everyone(me, [other], timeout=30_000)
            assert alice.page.evaluate("performance.getEntriesByType('navigation').length") == 1
    finally:
        first.stop()
        second.stop()


def test_a_screen_shared_in_an_sfu_room_reaches_the_others_as_a_tile_of_its_own(
    browsers: Browsers, janus: JanusProcess, tmp_path: Path
) -> None:
    with three_in_a_room(browsers, janus, tmp_path, "Screens") as (alice, bob, charlie):
        alice_id = alice.peer_id()
        alice.page.get_by_role("button", name="Share your screen").click()
        for viewer in (bob, charlie):
            tile = viewer.page.locator(f'.tile[data-screen-of="{alice_id}"]')
            expect(tile).to_be_visible(timeout=15_000)
            expect(tile).to_have_attribute("aria-label", "Alice's screen")
        # Still two connections: the screen is one more m-line of Alice's publisher.
        assert alice.page.evaluate("window.confab.connections().length") == 2
        alice.page.get_by_role("button", name="Stop sharing your screen").click()
        for viewer in (bob, charlie):
            expect(viewer.page.locator(f'.tile[data-screen-of="{alice_id}"]')).to_have_count(
                0, timeout=15_000
            )
        wait_for_everyone(bob, [alice, charlie])
