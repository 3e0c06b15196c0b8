"""Calls through a real coturn, and the "Connection details" panel that tells about it.

Each TURN test starts its own daphne with TURN settings (ICE_TRANSPORT_POLICY=relay and no
STUN, so the only way two browsers can reach each other is the relay), next to one coturn
for the module, both inside the test's loopback-only network namespace. coturn checks the
REST credentials the server hands out: the HMAC of the secret, and the expiry in the
username.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import OUTPUT, Browsers, Person, each_pair, screenshot
from tests.browser.servers import Coturn, coturn, crowd, free_udp_port
from tests.servers_common import daphne, wait_until

pytestmark = pytest.mark.browser

People = Callable[..., Person]
SECRET = "turn-test-secret-3f9c"

# Per connection: the selected candidate pair (transport.selectedCandidatePairId, else the
# pair Firefox marks selected, else the nominated succeeded pair) with both candidates, and
# what was received.
ROUTES_JS = """
async () => {
  const out = [];
  for (const [id, peer] of window.confab.peers) {
    const row = {id, state: peer.pc ? peer.pc.connectionState : "none", local: null, remote: null,
                 relays: [], framesDecoded: 0, audioPackets: 0};
    if (peer.pc) {
      const stats = await peer.pc.getStats();
      let pair = null;
      stats.forEach((r) => {
        if (r.type === "transport" && r.selectedCandidatePairId) {
          pair = stats.get(r.selectedCandidatePairId);
        }
      });
      // Firefox: no transport report, its own "selected" field, and possibly several
      // nominated pairs (the controlling side nominated again).
      if (!pair) stats.forEach((r) => { if (r.type === "candidate-pair" && r.selected) pair = r; });
      if (!pair) stats.forEach((r) => {
        if (r.type === "candidate-pair" && r.nominated && r.state === "succeeded") pair = pair || r;
      });
      const pick = (c) => c && {id: c.id, candidateType: c.candidateType, protocol: c.protocol,
                                address: c.address, port: c.port, relayProtocol: c.relayProtocol};
      if (pair) {
        row.local = pick(stats.get(pair.localCandidateId));
        row.remote = pick(stats.get(pair.remoteCandidateId));
      }
      stats.forEach((r) => {
        if (r.type === "local-candidate" && r.candidateType === "relay") {
          row.relays.push([r.address, r.port]);
        }
        if (r.type !== "inbound-rtp") return;
        if (r.kind === "video") row.framesDecoded += r.framesDecoded || 0;
        if (r.kind === "audio") row.audioPackets += r.packetsReceived || 0;
      });
    }
    out.push(row);
  }
  return out;
}
"""

# A throwaway relay-only peer connection that asks coturn for an allocation with the given
# credentials: a relay candidate, or the error Chrome reports (or nothing within 10 s).
ALLOCATE_JS = """
async ([url, username, credential]) => {
  const pc = new RTCPeerConnection({iceServers: [{urls: [url], username, credential}],
                                    iceTransportPolicy: "relay"});
  const result = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve({outcome: "nothing"}), 10000);
    pc.addEventListener("icecandidate", ({candidate}) => {
      if (!candidate || candidate.type !== "relay") return;
      clearTimeout(timer);
      resolve({outcome: "relay"});
    });
    pc.addEventListener("icecandidateerror", (e) => {
      clearTimeout(timer); resolve({outcome: "error", code: e.errorCode, text: e.errorText});
    });
    pc.createDataChannel("probe");
    pc.setLocalDescription();
  });
  pc.close();
  return result;
}
"""

SNAPSHOT_JS = "() => window.confab.diagnostics.snapshot()"


def routes(who: Person) -> list[dict[str, Any]]:
    return list(who.page.evaluate(ROUTES_JS))


def snapshot(who: Person) -> dict[str, Any]:
    return dict(who.page.evaluate(SNAPSHOT_JS))


def wait_for_snapshot(
    who: Person, condition: Callable[[dict[str, Any]], bool], what: str, timeout: float = 15
) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def check() -> bool:
        found.clear()
        found.update(snapshot(who))
        return condition(found)

    try:
        wait_until(check, timeout, f"{who.name}: {what}")
    except AssertionError as error:
        raise AssertionError(f"{error}; last diagnostics: {found}") from None
    return found


def wait_for_routes(
    who: Person, condition: Callable[[list[dict[str, Any]]], bool], what: str, timeout: float = 15
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def check() -> bool:
        found[:] = routes(who)
        return condition(found)

    try:
        wait_until(check, timeout, f"{who.name}: {what}")
    except AssertionError as error:
        raise AssertionError(f"{error}; last routes: {found}") from None
    return found


def rest_credential(secret: str, expiry: int, peer_id: str) -> tuple[str, str]:
    """coturn's use-auth-secret scheme, computed here independently of rooms/ice.py."""
    username = f"{expiry}:{peer_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def relayed_both_ways(found: list[dict[str, Any]]) -> bool:
    """Our relay to theirs. Firefox goes on calling the other side's relay candidate peer-
    reflexive when a check from it came before its signaled copy: then the remote address
    must be the other side's relay (wait_for_relayed_routes checks it with both routes known)."""
    remote = (found[0]["remote"] or {}) if found else {}
    return (
        len(found) == 1
        and found[0]["state"] == "connected"
        and (found[0]["local"] or {}).get("candidateType") == "relay"
        and remote.get("candidateType") in {"relay", "prflx"}
    )


def reaches_a_relay_of(one: dict[str, Any], other: dict[str, Any]) -> bool:
    """The remote end of each side's pair is one of the other side's relay candidates. Not
    necessarily the one the other side picked: each side gathers a relay per local interface
    (loopback, and the veth Firefox needs), and Firefox as the controlled side keeps the
    pair nominated first while Chromium nominates again, so each may send from another
    relay than the one it receives on; both pairs are relay to relay all the same."""
    return all(
        [me["remote"]["address"], me["remote"]["port"]] in them["relays"]
        for me, them in ((one, other), (other, one))
    )


def wait_for_relayed_routes(
    one: Person, other: Person, timeout: float = 15
) -> list[dict[str, Any]]:
    """Both sides' selected pairs, once each is relay to relay and ends at a relay of the
    other side (reaches_a_relay_of). Read one side after the other, they may disagree for a
    moment: the controlling side may still move the call to a pair it nominates later."""
    found: list[list[dict[str, Any]]] = []

    def agreed() -> bool:
        found[:] = [routes(one), routes(other)]
        return all(relayed_both_ways(side) for side in found) and reaches_a_relay_of(
            found[0][0], found[1][0]
        )

    try:
        wait_until(agreed, timeout, f"{one.name} and {other.name} relayed to each other's relays")
    except AssertionError as error:
        raise AssertionError(f"{error}; last routes: {found}") from None
    return [side[0] for side in found]


def open_panel(page: Page) -> None:
    page.get_by_role("button", name="Connection details").click()
    expect(page.get_by_role("dialog", name="Connection details")).to_be_visible()


@pytest.fixture(scope="module")
def turn(browsers: Browsers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coturn]:
    # `browsers` first: its session server fails the run outside the loopback namespace.
    with coturn(tmp_path_factory.mktemp("coturn"), SECRET) as server:
        yield server


def turn_settings(turn: Coturn, **overrides: str) -> dict[str, str]:
    settings = {
        "TURN_URLS": turn.url,
        "TURN_SECRET": turn.secret,
        "ICE_TRANSPORT_POLICY": "relay",
        "STUN_URLS": "",
    }
    settings.update(overrides)
    return settings


@each_pair
def test_a_relay_only_call_goes_through_coturn_on_both_sides_and_the_panel_shows_it(
    browsers: Browsers, turn: Coturn, tmp_path: Path, engines: tuple[str, str]
) -> None:
    with daphne(tmp_path, **turn_settings(turn)) as server, crowd(browsers, server.url) as people:
        alice = people.person("Alice", engine=engines[0])
        bob = people.person("Bob", engine=engines[1])
        room_url = alice.create_room("Relayed")
        bob.join(room_url)
        # Read once the page has capped the bitrate (a moment after connecting), which makes
        # Firefox start its counters of what it receives again.
        for me in (alice, bob):
            me.wait_for_bitrate_caps(1_500_000, senders=1)
        alice.wait_for_media(1)
        bob.wait_for_media(1)

        # The selected pair on both sides: our relay to their relay, nothing else.
        for route in wait_for_relayed_routes(alice, bob):
            assert route["local"]["relayProtocol"] == "udp", route
            assert route["framesDecoded"] > 0, route
            assert route["audioPackets"] > 0, route

        # The diagnostics say the same, and gathered nothing but relay candidates.
        for me in (alice, bob):
            found = wait_for_snapshot(
                me,
                lambda s: (
                    len(s["peers"]) == 1 and (s["peers"][0]["local"] or {}).get("type") == "relay"
                ),
                "the diagnostics to see the relayed route",
            )
            assert found["turnConfigured"], found
            assert found["policy"] == "relay", found
            assert found["candidates"]["relay"] >= 1, found
            assert found["candidates"]["host"] == found["candidates"]["srflx"] == 0, found
            assert found["servers"][turn.url]["state"] == "ok", found
            assert [hint["code"] for hint in found["hints"]] == ["relay-only"], found
            assert found["peers"][0]["rtt"] is not None, found

        page = alice.page
        open_panel(page)
        panel = page.locator("#diagnostics")
        expect(panel.locator(".diag-hint")).to_have_text(
            "Relay-only policy in use: all audio and video go through the TURN relay."
        )
        expect(panel.locator(".diag-peer .diag-peer-name")).to_have_text("Bob")
        expect(panel.locator(".diag-peer .diag-route")).to_have_text(re.compile("relayed", re.I))
        expect(panel.locator(".diag-local")).to_have_text(
            re.compile(r"^relay · UDP · 127\.0\.0\.1:\d+$")
        )
        # Firefox may go on naming Bob's relay peer-reflexive (see relayed_both_ways).
        remote = "(relay|prflx)" if alice.engine == "firefox" else "relay"
        expect(panel.locator(".diag-remote")).to_have_text(
            re.compile(rf"^{remote} · UDP · 127\.0\.0\.1:\d+$")
        )
        expect(panel.locator(".diag-rtt")).to_have_text(re.compile(r"^\d+ ms$"))
        expect(panel.locator('.diag-candidates [data-type="relay"]')).to_have_class(
            re.compile("found")
        )
        expect(panel.locator(".diag-server.ok")).to_contain_text(turn.url)
        page.screenshot(path=screenshot("diagnostics", engines))

        # Keyboard: Escape closes it and gives focus back to the button.
        page.keyboard.press("Escape")
        expect(panel).to_be_hidden()
        button = page.get_by_role("button", name="Connection details")
        expect(button).to_be_focused()
        expect(button).to_have_attribute("aria-expanded", "false")

        # On a phone it is a sheet above the controls (with the chat, an overlay there, shut).
        page.set_viewport_size({"width": 390, "height": 844})
        page.get_by_role("button", name="Close the chat").click()
        open_panel(page)
        expect(panel.locator(".diag-peer .diag-route")).to_have_text(re.compile("relayed", re.I))
        box = panel.bounding_box()
        assert box is not None
        assert box["x"] >= 0, box
        assert box["x"] + box["width"] <= 390, box
        page.screenshot(path=screenshot("diagnostics-phone", engines))


def test_when_coturn_refuses_the_credentials_the_call_does_not_connect_and_the_panel_says_so(
    browsers: Browsers, turn: Coturn, tmp_path: Path
) -> None:
    wrong = turn_settings(turn, TURN_SECRET="not-" + turn.secret)
    with daphne(tmp_path, **wrong) as server, crowd(browsers, server.url) as people:
        alice, bob = people.person("Alice"), people.person("Bob")
        room_url = alice.create_room("Refused")
        bob.join(room_url)

        def refused(s: dict[str, Any]) -> bool:
            return any(hint["code"] == "turn-refused" for hint in s["hints"])

        for me in (alice, bob):
            found = wait_for_snapshot(me, refused, "the diagnostics to report refused credentials")
            assert found["servers"][turn.url]["state"] == "refused", found
            assert {error["code"] for error in found["errors"]} == {401}, found
            assert found["candidates"]["relay"] == 0, found
            # Relay-only and refused: no candidate at all, so nothing can ever connect.
            assert sum(found["candidates"].values()) == 0, found
            [route] = routes(me)
            assert route["state"] != "connected", route
            assert route["local"] is None, route
        expect(bob.tile(alice).locator(".tile-state")).to_have_text("Connecting…")

        page = alice.page
        expect(page.locator("#toggle-diagnostics")).to_have_attribute("data-alert", "error")
        open_panel(page)
        panel = page.locator("#diagnostics")
        expect(panel.locator('.diag-hint[data-code="turn-refused"]')).to_contain_text(
            "The TURN server refused our credentials."
        )
        expect(panel.locator(".diag-server")).to_contain_text("refused our credentials (401)")
        expect(panel.locator(".diag-peer .diag-route")).to_have_text(re.compile("connecting", re.I))
        page.screenshot(path=str(OUTPUT / "diagnostics-refused.png"))


def test_fresh_credentials_arrive_before_expiry_and_an_ice_restart_after_it_still_relays(
    browsers: Browsers, turn: Coturn, tmp_path: Path
) -> None:
    ttl = 6
    settings = turn_settings(turn, TURN_CREDENTIAL_TTL=str(ttl))
    with daphne(tmp_path, **settings) as server, crowd(browsers, server.url) as people:
        alice, bob = people.person("Alice"), people.person("Bob")
        room_url = alice.create_room("Refreshed")
        bob.join(room_url)
        alice.wait_for_media(1)
        bob.wait_for_media(1)
        before = {
            me.name: wait_for_routes(me, relayed_both_ways, "a relayed call")[0]
            for me in (alice, bob)
        }

        # ice-servers comes at 3/4 of the TTL, before the welcome's credentials expire.
        first: dict[str, int] = {}
        for me in (alice, bob):
            found = wait_for_snapshot(
                me, lambda s: s["iceServersUpdates"] >= 1, "an ice-servers message", timeout=ttl + 5
            )
            first[me.name] = found["firstCredentialExpiry"]
            assert found["iceServersUpdatedAt"] / 1000 < first[me.name], found
            assert found["credentialExpiry"] > first[me.name], found

        # Wait (for the clock, not a fixed time) until both first credentials have expired.
        expired_at = max(first.values()) + 1
        alice.page.wait_for_function(
            "(t) => Date.now() / 1000 > t", arg=expired_at, timeout=(ttl + 5) * 1000
        )
        assert time.time() > expired_at

        # coturn now refuses the first credentials and accepts the current ones.
        peer_id = alice.peer_id()
        expired = rest_credential(turn.secret, first["Alice"], peer_id)
        outcome = alice.page.evaluate(ALLOCATE_JS, [turn.url, *expired])
        assert outcome == {"outcome": "error", "code": 401, "text": outcome.get("text")}, outcome
        current = rest_credential(turn.secret, snapshot(alice)["credentialExpiry"], peer_id)
        assert alice.page.evaluate(ALLOCATE_JS, [turn.url, *current]) == {"outcome": "relay"}

        # An ICE restart now gathers new relay candidates with the refreshed credentials.
        old_sdp = alice.page.evaluate(
            "[...window.confab.peers.values()][0].pc.localDescription.sdp"
        )
        assert alice.page.evaluate("window.confab.restartIce()") == 1
        after: dict[str, dict[str, Any]] = {}
        for me in (alice, bob):
            old = before[me.name]

            def moved(found: list[dict[str, Any]], old: dict[str, Any] = old) -> bool:
                return (
                    relayed_both_ways(found)
                    and found[0]["local"]["id"] != old["local"]["id"]
                    and found[0]["local"]["port"] != old["local"]["port"]
                )

            after[me.name] = wait_for_routes(me, moved, "a new relayed pair after the restart")[0]
        new_sdp = alice.page.evaluate(
            "[...window.confab.peers.values()][0].pc.localDescription.sdp"
        )
        assert ice_ufrag(new_sdp) != ice_ufrag(old_sdp)

        # ... and media keeps flowing over it.
        for me in (alice, bob):
            frames = after[me.name]["framesDecoded"]

            def decoding(found: list[dict[str, Any]], frames: int = frames) -> bool:
                return relayed_both_ways(found) and found[0]["framesDecoded"] > frames + 10

            wait_for_routes(me, decoding, "frames decoded after the restart")
            found = snapshot(me)
            assert not [h for h in found["hints"] if h["level"] == "error"], found

        # coturn allocated for the restart with credentials newer than the expired ones.
        allocations = allocated_usernames(turn.log.read_text(errors="replace"))
        assert any(
            int(name.split(":")[0]) > first["Alice"] and name.endswith(":" + peer_id)
            for name in allocations
        ), allocations


def ice_ufrag(sdp: str) -> str:
    match = re.search(r"^a=ice-ufrag:(\S+)", sdp, re.M)
    assert match, sdp
    return match.group(1)


def allocated_usernames(log: str) -> list[str]:
    """Usernames of successful ALLOCATE requests in coturn's --verbose log."""
    return re.findall(r"user <([^>]+)>: incoming packet ALLOCATE processed, success", log)


def test_without_turn_the_panel_warns_and_shows_a_direct_route(person: People) -> None:
    # The session server has neither STUN nor TURN: two pages on loopback connect host to host.
    alice, bob = person("Alice"), person("Bob")
    room_url = alice.create_room("No relay")
    bob.join(room_url)
    alice.wait_for_media(1)
    page = alice.page
    expect(page.locator("#toggle-diagnostics")).to_have_attribute("data-alert", "warn")
    open_panel(page)
    panel = page.locator("#diagnostics")
    expect(panel.locator(".diag-hint")).to_have_text(
        "Calls across different networks may fail: this server has no TURN relay configured."
    )
    expect(panel.locator("#diag-turn")).to_have_text("Not configured")
    expect(panel.locator(".diag-peer .diag-route")).to_have_text(re.compile("direct", re.I))
    # One of this machine's own addresses: loopback, or the namespace's veth (conftest).
    expect(panel.locator(".diag-local")).to_have_text(
        re.compile(r"^host · UDP · (127\.0\.0\.1|10\.77\.0\.[12]):\d+$")
    )
    expect(panel.locator('.diag-candidates [data-type="host"]')).to_have_class(re.compile("found"))
    expect(panel.locator('.diag-candidates [data-type="relay"]')).not_to_have_class(
        re.compile("found")
    )
    # The close button closes it too.
    panel.get_by_role("button", name="Close connection details").click()
    expect(panel).to_be_hidden()


def test_an_unreachable_turn_server_is_named_once_no_relay_came(
    browsers: Browsers, turn: Coturn, tmp_path: Path
) -> None:
    # A TURN URL where nothing answers. Chrome may take ~40 s to report an error for it, or
    # report none; the page says so once no relay came within RELAY_EXPECTED_MS.
    nowhere = f"turn:127.0.0.1:{free_udp_port()}?transport=udp"
    settings = turn_settings(turn, TURN_URLS=nowhere, ICE_TRANSPORT_POLICY="all")
    with daphne(tmp_path, **settings) as server, crowd(browsers, server.url) as people:
        alice, bob = people.person("Alice"), people.person("Bob")
        room_url = alice.create_room("Unreachable")
        bob.join(room_url)
        # Policy "all": on one machine host candidates still connect the call.
        alice.wait_for_media(1)
        found = wait_for_snapshot(
            alice,
            lambda s: any(h["code"] == "turn-unreachable" for h in s["hints"]),
            "the diagnostics to call the TURN server unreachable",
        )
        assert found["candidates"]["relay"] == 0, found
        open_panel(alice.page)
        expect(alice.page.locator('.diag-hint[data-code="turn-unreachable"]')).to_contain_text(
            "TURN server unreachable"
        )
