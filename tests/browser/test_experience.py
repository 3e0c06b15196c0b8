"""The call experience in a real browser: the pre-join screen, switching devices during a
call, screen share, the active speaker, connection quality, pin and full screen, shortcuts."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import ViewportSize, WebSocket, expect

from tests.browser.conftest import (
    OUTPUT,
    Person,
    frames_decoded,
    wait_for_async,
    wait_for_more_frames,
)

pytestmark = pytest.mark.browser

People = Callable[..., Person]


def record_sent(someone: Person) -> list[dict[str, Any]]:
    """Every protocol message the page sends on its room socket, in order."""
    sent: list[dict[str, Any]] = []

    def on_socket(socket: WebSocket) -> None:
        if "/ws/rooms/" not in socket.url:
            return

        def on_frame(payload: str | bytes) -> None:
            if isinstance(payload, str):
                sent.append(json.loads(payload))

        socket.on("framesent", on_frame)

    someone.page.on("websocket", on_socket)
    return sent


# Inbound audio from the only peer: energy (getStats totalAudioEnergy) and packets.
INBOUND_AUDIO_JS = """async () => {
  const [peer] = window.confab.peers.values();
  let energy = 0, packets = 0;
  (await peer.pc.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "audio") {
      energy += r.totalAudioEnergy || 0;
      packets += r.packetsReceived || 0;
    }
  });
  return {energy, packets};
}"""


def inbound_audio(someone: Person) -> dict[str, float]:
    return dict(someone.page.evaluate(INBOUND_AUDIO_JS))


def wait_for_audio_packets(someone: Person, more_than: float) -> dict[str, float]:
    wait_for_async(
        someone.page, f"async (n) => (await ({INBOUND_AUDIO_JS})()).packets > n", more_than
    )
    return inbound_audio(someone)


def test_choices_made_before_joining_take_effect_in_the_call_and_are_remembered(
    person: People,
) -> None:
    alice = person("Alice")
    room_url = alice.create_room("Morning sync")
    bob = person("Bob", prejoin=True)
    sent = record_sent(bob)
    bob.page.goto(room_url)

    # Before joining: a preview, a live microphone level, the pickers and who is here. The
    # websocket is not open yet.
    page = bob.page
    prejoin = page.locator("#prejoin")
    expect(prejoin).to_be_visible()
    expect(page.locator("#prejoin-title")).to_have_text("Morning sync")
    expect(page.locator(".prejoin-people-text")).to_have_text("Alice is in the call.")
    page.wait_for_function("() => document.querySelector('.prejoin-video').videoWidth > 0")
    page.locator(".prejoin-kicker").click()  # a first click: the page may use sound
    page.wait_for_function(
        "() => Number(document.querySelector('.prejoin-meter').getAttribute('aria-valuenow')) > 40",
        polling="raf",
    )
    assert page.evaluate("window.confab.selfId") is None
    assert sent == []
    page.screenshot(path=str(OUTPUT / "prejoin.png"))
    microphone = prejoin.get_by_label("Microphone", exact=True)
    microphone.select_option(label="Fake Audio Input 1")
    prejoin.get_by_label("Speaker", exact=True).select_option(label="Fake Audio Output 1")
    page.get_by_label("Join with microphone off").check()
    expect(page.locator(".prejoin-name .prejoin-badge")).to_be_visible()
    page.wait_for_function(
        "() => document.querySelector('.prejoin-video').srcObject"
        "&& document.querySelector('.prejoin-video').videoWidth > 0"
    )
    page.get_by_label("Join with camera off").check()
    expect(page.locator(".prejoin-preview")).to_have_attribute("data-camera", "off")
    page.get_by_role("button", name="Join now").click()
    bob.wait_joined()
    expect(prejoin).to_have_count(0)

    # In the call: the microphone and camera are there but off from the start, and the first
    # word about them said so.
    alice.wait_for_media(1, video=False)
    bob_on_alice = alice.tile(bob)
    expect(bob_on_alice.locator(".mic-off")).to_be_visible()
    expect(bob_on_alice.locator(".cam-off")).to_be_visible()
    expect(bob_on_alice).to_have_class(re.compile(r"\bno-video\b"))
    media = [m for m in sent if m["type"] == "media"]
    assert media[0] == {"type": "media", "audio": False, "video": False, "screen": False}
    expect(page.get_by_role("button", name="Unmute microphone")).to_be_visible()
    expect(page.get_by_role("button", name="Turn camera on")).to_be_visible()
    senders = page.evaluate(
        """() => [...window.confab.peers.values()][0].pc.getSenders()
             .filter((s) => s.track).map((s) => [s.track.kind, s.track.enabled, s.track.label])
             .sort()"""
    )
    assert senders == [
        ["audio", False, "Fake Audio Input 1"],
        ["video", False, "fake_device_0"],
    ], senders
    # Alice receives silence: packets keep coming, their energy does not grow.
    start = wait_for_audio_packets(alice, 0)
    later = wait_for_audio_packets(alice, start["packets"] + 50)
    assert later["energy"] - start["energy"] < 1e-6, (start, later)
    # The speaker chosen before joining plays the others.
    speaker = page.evaluate("window.confab.experience.devices.prefs.audiooutput")
    assert page.evaluate("document.querySelector('.tile:not(.local) video').sinkId") == speaker

    # Unmuted, the beeps reach Alice (the measure above could tell).
    page.get_by_role("button", name="Unmute microphone").click()
    expect(bob_on_alice.locator(".mic-off")).to_be_hidden()
    start = inbound_audio(alice)
    wait_for_async(
        alice.page,
        f"async (e) => (await ({INBOUND_AUDIO_JS})()).energy > e + 1e-4",
        start["energy"],
    )

    # The next visit remembers every choice.
    page.reload()
    expect(prejoin).to_be_visible()
    expect(page.get_by_label("Join with microphone off")).to_be_checked()
    expect(page.get_by_label("Join with camera off")).to_be_checked()
    expect(microphone.locator("option:checked")).to_have_text("Fake Audio Input 1")
    expect(prejoin.get_by_label("Speaker", exact=True).locator("option:checked")).to_have_text(
        "Fake Audio Output 1"
    )
    expect(page.locator(".prejoin-people-text")).to_have_text("Alice is in the call.")


def added_device(kind: str, device_id: str, label: str, make_track: str) -> str:
    """An init script: one more device of `kind` ("videoinput" or "audioinput") beside the
    engine's fake ones, in enumerateDevices; a getUserMedia that asks for it by id gets the
    track that the JS function body `make_track` returns, with the other kind (if asked for)
    from the engine's devices."""
    own, other = ("video", "audio") if kind == "videoinput" else ("audio", "video")
    return f"""
(() => {{
  const devices = navigator.mediaDevices;
  if (!devices) return;
  const enumerate = devices.enumerateDevices.bind(devices);
  const real = devices.getUserMedia.bind(devices);
  devices.enumerateDevices = async () => [
    ...(await enumerate()),
    {{deviceId: "{device_id}", groupId: "{device_id}", kind: "{kind}", label: "{label}",
     toJSON() {{ return this; }}}},
  ];
  devices.getUserMedia = async (constraints) => {{
    const asked = constraints && constraints.{own};
    const wanted = asked && asked.deviceId && (asked.deviceId.exact || asked.deviceId.ideal);
    if (wanted !== "{device_id}") return real(constraints);
    const track = (() => {{ {make_track} }})();
    const rest = constraints.{other}
      ? (await real({{{other}: constraints.{other}}})).getTracks() : [];
    return new MediaStream([track, ...rest]);
  }};
}})();
"""


# A second camera for the switch: a canvas (magenta, with a moving square) beside the
# engine's one fake camera.
CANVAS_CAMERA = added_device(
    "videoinput",
    "canvas-camera",
    "Canvas camera",
    """
    const canvas = document.createElement("canvas");
    canvas.width = 640;
    canvas.height = 360;
    const g = canvas.getContext("2d");
    let n = 0;
    setInterval(() => {
      g.fillStyle = "#d946ef";
      g.fillRect(0, 0, 640, 360);
      g.fillStyle = "#ffffff";
      g.fillRect((n += 8) % 600, 150, 40, 40);
    }, 40);
    return canvas.captureStream(25).getVideoTracks()[0];
    """,
)

# What the first remote video shows: the mean colour of a frame, drawn on a canvas.
REMOTE_COLOUR_JS = """() => {
  const video = document.querySelector(".tile:not(.local):not(.screen) video");
  const canvas = document.createElement("canvas");
  canvas.width = 32;
  canvas.height = 18;
  const g = canvas.getContext("2d");
  g.drawImage(video, 0, 0, 32, 18);
  const data = g.getImageData(0, 0, 32, 18).data;
  const sum = [0, 0, 0];
  for (let i = 0; i < data.length; i += 4) for (let c = 0; c < 3; c += 1) sum[c] += data[i + c];
  return sum.map((s) => Math.round(s / (data.length / 4)));
}"""

SHOWS_MAGENTA_JS = f"""() => {{
  const [r, g, b] = ({REMOTE_COLOUR_JS})();
  return r > 150 && b > 150 && g < 120;
}}"""

# Counts offers and answers a page makes from now on (renegotiations), and watches every
# connection's signalingState.
WATCH_NEGOTIATION_JS = """() => {
  const watch = (window.__negotiation = {offers: 0, answers: 0, states: []});
  const send = window.confab.signaling.send.bind(window.confab.signaling);
  window.confab.signaling.send = (message) => {
    if (message.type === "offer") watch.offers += 1;
    if (message.type === "answer") watch.answers += 1;
    return send(message);
  };
  for (const peer of window.confab.peers.values()) {
    const pc = peer.pc;
    pc.addEventListener("signalingstatechange", () => watch.states.push(pc.signalingState));
  }
}"""

SENDERS_JS = """() => [...window.confab.peers.values()][0].pc.getSenders()
  .filter((s) => s.track)
  .map((s) => ({kind: s.track.kind, label: s.track.label, id: s.track.id}))"""


def test_switching_camera_microphone_and_speaker_during_a_call_keeps_it_without_renegotiating(
    person: People,
) -> None:
    alice = person("Alice")
    bob = person("Bob")
    bob.context.add_init_script(CANVAS_CAMERA)
    room_url = alice.create_room("Device switch")
    bob.join(room_url)
    alice.wait_for_media(1)
    bob.wait_for_media(1)
    red, green, blue = alice.page.evaluate(REMOTE_COLOUR_JS)
    assert green > max(red, blue), (red, green, blue)  # the fake camera's green pattern
    for someone in (alice, bob):
        someone.page.evaluate(WATCH_NEGOTIATION_JS)
    before = {s["kind"]: s for s in bob.page.evaluate(SENDERS_JS)}

    page = bob.page
    page.get_by_role("button", name="Camera, microphone and speaker settings").click()
    settings = page.get_by_role("dialog", name="Settings")
    expect(settings).to_be_visible()
    expect(settings.get_by_label("Camera")).to_have_value(
        page.evaluate("window.confab.localStream.getVideoTracks()[0].getSettings().deviceId")
    )
    frames = frames_decoded(alice)
    settings.get_by_label("Camera").select_option(label="Canvas camera")
    settings.get_by_label("Microphone").select_option(label="Fake Audio Input 2")
    settings.get_by_label("Speaker").select_option(label="Fake Audio Output 2")

    # The new tracks went into the same senders: Alice now decodes the magenta canvas.
    page.wait_for_function(
        """() => {
             const senders = [...window.confab.peers.values()][0].pc.getSenders();
             const labels = senders.filter((s) => s.track).map((s) => s.track.label);
             return labels.includes("Fake Audio Input 2") && !labels.includes("fake_device_0");
           }"""
    )
    after = {s["kind"]: s for s in page.evaluate(SENDERS_JS)}
    assert after["video"]["id"] != before["video"]["id"]
    assert after["audio"]["label"] == "Fake Audio Input 2"
    wait_for_more_frames(alice, frames)
    alice.page.wait_for_function(SHOWS_MAGENTA_JS, polling=200)
    wait_for_more_frames(alice, frames_decoded(alice))
    # Nothing was renegotiated on either side, and the old camera is off.
    for someone in (alice, bob):
        watch = someone.page.evaluate("window.__negotiation")
        assert watch == {"offers": 0, "answers": 0, "states": []}, (someone.name, watch)
        [row] = someone.stats()
        assert row["state"] == "connected"
    assert page.evaluate("window.confab.localStream.getTracks().length") == 2
    expect(page.locator(".tile.local video")).to_have_js_property("videoWidth", 640)
    # The speaker: every remote media element plays on the one chosen.
    speaker = page.evaluate("window.confab.experience.devices.prefs.audiooutput")
    expect(page.locator(".tile:not(.local) video")).to_have_js_property("sinkId", speaker)
    # Muting still works on the new microphone (the same sender, disabled).
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Mute microphone").click()
    expect(alice.tile(bob).locator(".mic-off")).to_be_visible()


def screen_tile(viewer: Person, sharer_id: str) -> Any:
    return viewer.page.locator(f'.tile.screen[data-screen-of="{sharer_id}"]')


def wait_for_screen_frames(viewer: Person, sharer_id: str, *, any_size: bool = False) -> None:
    """The sharer's screen plays on the viewer's screen tile: at Chromium's fake screen's
    1280 pixels, or (`any_size`: a screen shared from Firefox, whatever size it sends) at
    any size."""
    viewer.page.wait_for_function(
        """([id, anySize]) => {
             const video = document.querySelector(`.tile.screen[data-screen-of="${id}"] video`);
             return video && (anySize ? video.videoWidth > 0 : video.videoWidth === 1280)
               && !video.paused;
           }""",
        arg=[sharer_id, any_size],
    )


SCREEN_SENDERS_JS = """() => [...window.confab.peers.values()].map((peer) => {
  const videos = peer.pc.getTransceivers().filter((t) => t.receiver.track.kind === "video");
  return {
    videoTransceivers: videos.length,
    screens: peer.pc.getSenders().filter((s) => s.track?.label.startsWith("screen")).length,
  };
})"""


# Counts how often the active-speaker highlight left a tile (hysteresis: not between beeps).
WATCH_HIGHLIGHT_JS = """(id) => {
  const tile = document.querySelector(`.tile[data-peer="${id}"]`);
  const watch = (window.__highlight = {lost: 0});
  let on = tile.classList.contains("active-speaker");
  new MutationObserver(() => {
    const now = tile.classList.contains("active-speaker");
    if (on && !now) watch.lost += 1;
    on = now;
  }).observe(tile, {attributes: true, attributeFilter: ["class"]});
}"""


def active_speakers(someone: Person) -> list[str]:
    return list(
        someone.page.evaluate(
            """() => [...document.querySelectorAll(".tile.active-speaker")]
                 .map((t) => t.dataset.peer || "local")"""
        )
    )


AUDIO_FROM_JS = """async (id) => {
  let packets = 0;
  (await window.confab.peers.get(id).pc.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "audio") packets += r.packetsReceived || 0;
  });
  return packets;
}"""


def inbound_audio_from(someone: Person, peer_id: str) -> int:
    return int(someone.page.evaluate(AUDIO_FROM_JS, peer_id))


def wait_for_audio_from(someone: Person, peer_id: str, packets: int) -> None:
    """Until `packets` audio packets came from that peer (50 a second): time measured in
    sound, not in sleeps."""
    wait_for_async(
        someone.page,
        f"async ([id, n]) => (await ({AUDIO_FROM_JS})(id)) >= n",
        [peer_id, packets],
        polling=250,
    )


def test_quality_bars_pin_full_screen_and_keyboard_shortcuts(person: People) -> None:
    alice, bob = person("Alice"), person("Bob")
    room_url = alice.create_room("Controls")
    bob.join(room_url)
    alice.wait_for_media(1)
    bob.wait_for_media(1)
    page = bob.page
    alice_id = alice.peer_id()
    alice_tile = page.locator(f'.tile[data-peer="{alice_id}"]')

    # Connection quality: three bars on loopback, the details in a popover.
    quality = alice_tile.locator(".tile-quality")
    expect(quality).to_have_attribute("data-level", "3")
    expect(quality).to_have_attribute("aria-label", "Good connection with Alice. Show the details.")
    quality.click()
    details = page.get_by_role("dialog", name="Connection quality")
    expect(details).to_be_visible()
    expect(details).to_contain_text("Connection with Alice")
    expect(details.locator("dd").first).to_have_text(re.compile(r"^\d+ ms$"))
    expect(details).to_contain_text(re.compile(r"Receiving\s*\d+(\.\d)? (k|M)bit/s"))
    expect(details).to_contain_text(re.compile(r"Video received\s*\d+\u00d7\d+ at \d+ fps"))
    expect(details).to_contain_text("Direct")
    page.keyboard.press("Escape")
    expect(details).to_be_hidden()

    # Pin: a double-click enlarges a tile; its pin button undoes it.
    alice_tile.dblclick()
    expect(alice_tile).to_have_class(re.compile(r"\bpinned\b"))
    expect(page.locator("#tiles")).to_have_class(re.compile(r"\bhas-pinned\b"))
    big = alice_tile.bounding_box()
    small = page.locator(".tile.local").bounding_box()
    assert big
    assert small
    assert big["width"] > 3 * small["width"], (big, small)
    page.screenshot(path=str(OUTPUT / "pinned.png"))
    alice_tile.hover()
    alice_tile.get_by_role("button", name="Unpin Alice").click()
    expect(alice_tile).not_to_have_class(re.compile(r"\bpinned\b"))
    page.locator(".tile.local").get_by_role("button", name="Pin Bob (you)").click()
    expect(page.locator(".tile.local")).to_have_class(re.compile(r"\bpinned\b"))
    page.locator(".tile.local").dblclick()
    expect(page.locator("#tiles")).not_to_have_class(re.compile(r"\bhas-pinned\b"))

    # Full screen: a tile, then the whole call.
    alice_tile.hover()
    alice_tile.get_by_role("button", name="Show Alice full screen").click()
    page.wait_for_function("(id) => document.fullscreenElement?.dataset.peer === id", arg=alice_id)
    alice_tile.get_by_role("button", name="Exit full screen").click()
    page.wait_for_function("() => document.fullscreenElement === null")
    page.get_by_role("button", name="Show the call full screen").click()
    page.wait_for_function("() => document.fullscreenElement?.id === 'call'")
    page.get_by_role("button", name="Exit full screen").click()
    page.wait_for_function("() => document.fullscreenElement === null")

    # Keyboard shortcuts (not while typing).
    page.locator(".stage-head").click()
    page.keyboard.press("m")
    expect(page.get_by_role("button", name="Unmute microphone")).to_be_visible()
    expect(alice.tile(bob).locator(".mic-off")).to_be_visible()
    page.keyboard.press("v")
    expect(page.get_by_role("button", name="Turn camera on")).to_be_visible()
    expect(alice.tile(bob).locator(".cam-off")).to_be_visible()
    page.keyboard.press("s")
    expect(page.get_by_role("button", name="Stop sharing your screen")).to_be_visible()
    expect(alice.page.locator(".tile.screen")).to_be_visible()
    page.keyboard.press("s")
    expect(page.get_by_role("button", name="Share your screen")).to_be_visible()
    expect(alice.page.locator(".tile.screen")).to_have_count(0)
    page.keyboard.press("?")
    shortcuts = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(shortcuts).to_be_visible()
    expect(shortcuts.locator("kbd")).to_have_text(["M", "V", "C", "S", "H", "Space", "?"])
    page.screenshot(path=str(OUTPUT / "keyboard-shortcuts.png"))
    page.keyboard.press("Escape")
    expect(shortcuts).to_be_hidden()
    page.keyboard.press("h")  # a hand goes up, and down again
    expect(page.locator("#toggle-hand")).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("h")
    expect(page.locator("#toggle-hand")).to_have_attribute("aria-pressed", "false")
    page.keyboard.press("c")
    expect(page.locator("#chat")).to_be_hidden()
    page.keyboard.press("c")
    expect(page.locator("#chat")).to_be_visible()
    box = bob.message_box()
    expect(box).to_be_focused()
    box.type("mvs")
    expect(box).to_have_value("mvs")
    expect(page.get_by_role("button", name="Unmute microphone")).to_be_visible()
    expect(page.get_by_role("button", name="Share your screen")).to_be_visible()
    # Every control has a name.
    unnamed = page.evaluate(
        """() => [...document.querySelectorAll("#call button")]
             .filter((b) => !(b.getAttribute("aria-label") || b.textContent.trim()))
             .map((b) => b.outerHTML.slice(0, 80))"""
    )
    assert unnamed == []


# Fills the grid up to `count` tiles with copies of a remote tile (layout only: no media).
FILL_GRID_JS = """(count) => {
  const tiles = document.getElementById("tiles");
  const model = tiles.querySelector(".tile:not(.local)");
  for (const extra of tiles.querySelectorAll(".tile.extra")) extra.remove();
  for (let i = tiles.children.length; i < count; i += 1) {
    const tile = model.cloneNode(true);
    tile.classList.add("extra");
    tile.classList.remove("active-speaker", "speaking", "pinned");
    tile.dataset.peer = `extra-${i}`;
    tile.querySelector(".tile-name").textContent = `Person ${i + 1}`;
    tile.setAttribute("aria-label", `Person ${i + 1}`);
    tiles.append(tile);
  }
}"""

# Tile boxes inside the grid: sizes, overlaps, and whether the page itself scrolls sideways.
GRID_JS = """() => {
  const tiles = document.getElementById("tiles");
  const boxes = [...tiles.children].map((t) => t.getBoundingClientRect());
  let overlaps = 0;
  boxes.forEach((a, i) => boxes.slice(i + 1).forEach((b) => {
    const across = a.left < b.right - 1 && b.left < a.right - 1;
    if (across && a.top < b.bottom - 1 && b.top < a.bottom - 1) overlaps += 1;
  }));
  const area = tiles.getBoundingClientRect();
  return {
    count: boxes.length,
    narrowest: Math.min(...boxes.map((b) => b.width)),
    overlaps,
    outside: boxes.filter((b) => b.left < area.left - 1 || b.right > area.right + 1).length,
    scrolls: tiles.scrollHeight > tiles.clientHeight + 1,
    pageScrollsSideways: document.documentElement.scrollWidth > innerWidth,
  };
}"""


GRID_LAID_OUT_JS = """() => {
  const tiles = document.getElementById("tiles");
  if (tiles.dataset.count !== String(tiles.children.length)) return false;
  const frame = () => new Promise((done) => requestAnimationFrame(done));
  const width = () => tiles.style.getPropertyValue("--tile-width");
  const before = width();
  return frame().then(frame).then(() => width() === before);
}"""


def relayout(someone: Person, width: int, height: int) -> None:
    """Resize the window one pixel wider, then back (the grid lays itself out again on
    resize). Its ResizeObserver runs with a later rendering step, not when the viewport call
    returns: after each resize, wait for its mark (`data-count`, cleared first) and for the
    tile width to hold over two drawn frames."""
    sizes = [ViewportSize(width=width + 1, height=height), ViewportSize(width=width, height=height)]
    for size in sizes:
        someone.page.evaluate("() => { document.getElementById('tiles').dataset.count = ''; }")
        someone.page.set_viewport_size(size)
        someone.page.wait_for_function(GRID_LAID_OUT_JS)


def test_a_shared_screen_is_a_tile_of_its_own_for_everyone_and_goes_when_sharing_stops(
    person: People,
) -> None:
    alice, bob, charlie = person("Alice"), person("Bob"), person("Charlie")
    room_url = alice.create_room("Design review")
    bob.join(room_url)
    charlie.join(room_url)
    for someone in (alice, bob, charlie):
        someone.wait_for_media(2)
    alice_id = alice.peer_id()

    share = alice.page.get_by_role("button", name="Share your screen")
    share.click()
    expect(alice.page.get_by_role("button", name="Stop sharing your screen")).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(alice.page.locator(".tile.local-screen")).to_have_attribute("aria-label", "Your screen")
    for viewer in (bob, charlie):
        tile = screen_tile(viewer, alice_id)
        expect(tile).to_be_visible()
        expect(tile).to_have_attribute("aria-label", "Alice's screen")
        wait_for_screen_frames(viewer, alice_id)
        # Beside Alice's camera, which goes on as before.
        assert tile.evaluate("(t) => t.previousElementSibling.dataset.peer") == alice_id
        expect(viewer.tile(alice).first).not_to_have_class(re.compile(r"\bno-video\b"))
        viewer.wait_for_media(2)
    assert alice.page.evaluate(SCREEN_SENDERS_JS) == [{"videoTransceivers": 2, "screens": 1}] * 2

    # Someone who comes while the screen is shared sees it too.
    dave = person("Dave")
    dave.join(room_url)
    # Three negotiations for the newcomer, one with a screen, while four pages share 2 cores:
    # 15 s was short in CI runs (all three connected and decoding just after).
    dave.wait_for_media(3, timeout=30_000)
    expect(screen_tile(dave, alice_id)).to_be_visible()
    wait_for_screen_frames(dave, alice_id)
    # A screen takes the stage (pinned) for those who had not pinned anything.
    for viewer in (bob, charlie, dave):
        expect(screen_tile(viewer, alice_id)).to_have_class(re.compile(r"\bpinned\b"))
    # Alice presents, the others listen.
    for listener in (bob, charlie, dave):
        listener.page.get_by_role("button", name="Mute microphone").click()
    bob.say("Can you zoom in on the header?")
    alice_on_bob = bob.page.locator(f'.tile[data-peer="{alice_id}"]')
    expect(alice_on_bob).to_have_class(re.compile(r"\bactive-speaker\b"))
    bob.page.screenshot(path=str(OUTPUT / "four-person-call-with-screen-share.png"))

    # Stopped with the button: the tile goes everywhere; the m-line stays for next time.
    alice.page.get_by_role("button", name="Stop sharing your screen").click()
    for viewer in (bob, charlie, dave):
        expect(screen_tile(viewer, alice_id)).to_have_count(0)
        expect(viewer.page.locator(".tile.screen")).to_have_count(0)
    expect(alice.page.locator(".tile.local-screen")).to_have_count(0)
    expect(share).to_have_attribute("aria-pressed", "false")
    assert alice.page.evaluate(SCREEN_SENDERS_JS) == [{"videoTransceivers": 2, "screens": 0}] * 3

    # Shared again, then stopped from the browser's own "Stop sharing" bar (the track ends).
    share.click()
    for viewer in (bob, charlie, dave):
        wait_for_screen_frames(viewer, alice_id)
    assert alice.page.evaluate(SCREEN_SENDERS_JS) == [{"videoTransceivers": 2, "screens": 1}] * 3
    alice.page.evaluate(
        """() => {
             const [peer] = window.confab.peers.values();
             const sender = peer.pc.getSenders().find((s) => s.track?.label.startsWith("screen"));
             sender.track.stop();
             sender.track.dispatchEvent(new Event("ended"));
           }"""
    )
    for viewer in (bob, charlie, dave):
        expect(screen_tile(viewer, alice_id)).to_have_count(0)
    expect(share).to_have_attribute("aria-pressed", "false")
    # Everyone still sees everyone's camera.
    for someone in (alice, bob, charlie, dave):
        someone.wait_for_media(3)


def test_the_grid_stays_usable_from_two_to_twelve_tiles_on_a_laptop_and_a_phone(
    person: People,
) -> None:
    alice = person("Alice")
    bob = person("Bob", viewport={"width": 390, "height": 844}, prejoin=True)
    room_url = alice.create_room("Twelve of us", capacity=12)

    # The pre-join screen on a phone: one column, the preview on top.
    bob.page.goto(room_url)
    expect(bob.page.locator("#prejoin")).to_be_visible()
    bob.page.wait_for_function("() => document.querySelector('.prejoin-video').videoWidth > 0")
    expect(bob.page.locator(".prejoin-people-text")).to_have_text("Alice is in the call.")
    bob.page.screenshot(path=str(OUTPUT / "prejoin-phone.png"))
    assert not bob.page.evaluate("document.documentElement.scrollWidth > innerWidth")
    bob.page.get_by_role("button", name="Join now").click()
    bob.wait_joined()
    bob.wait_for_media(1)

    for someone, (width, height), minimum in ((alice, (1280, 720), 150), (bob, (390, 844), 96)):
        for count in (2, 4, 7, 12):
            someone.page.evaluate(FILL_GRID_JS, count)
            relayout(someone, width, height)
            grid = someone.page.evaluate(GRID_JS)
            assert grid["count"] == count, grid
            assert grid["overlaps"] == 0, (someone.name, count, grid)
            assert grid["outside"] == 0, (someone.name, count, grid)
            assert grid["narrowest"] >= minimum, (someone.name, count, grid)
            assert not grid["pageScrollsSideways"], (someone.name, count, grid)
            if someone is alice:  # a laptop shows all twelve without scrolling
                assert not grid["scrolls"], (count, grid)
        someone.page.screenshot(path=str(OUTPUT / f"grid-twelve-{someone.name.lower()}.png"))
        # Pinned, the others go to a strip; still nothing overlaps.
        someone.page.locator(".tile.extra").first.dblclick()
        grid = someone.page.evaluate(GRID_JS)
        assert grid["overlaps"] == 0, (someone.name, grid)
        assert grid["outside"] == 0, (someone.name, grid)
        someone.page.screenshot(path=str(OUTPUT / f"grid-pinned-{someone.name.lower()}.png"))


def test_whoever_talks_is_highlighted_as_the_active_speaker_without_flicker(
    person: People,
) -> None:
    alice, bob, charlie = person("Alice"), person("Bob"), person("Charlie")
    room_url = alice.create_room("Radio hour", kind="voice")
    bob.join(room_url)
    charlie.join(room_url)
    for someone in (alice, bob, charlie):
        someone.wait_for_media(2, video=False)
    alice_id, bob_id = alice.peer_id(), bob.peer_id()
    for listener in (bob, charlie):
        listener.page.get_by_role("button", name="Mute microphone").click()
    page = charlie.page
    page.locator(".stage-head").click()  # the page may use sound from now on

    # Alice's fake microphone beeps: she is the active speaker for Charlie, nobody else is.
    alice_tile = page.locator(f'.tile[data-peer="{alice_id}"]')
    expect(alice_tile).to_have_class(re.compile(r"\bactive-speaker\b"))
    assert active_speakers(charlie) == [alice_id]
    # The highlight holds through the pauses between beeps (a few seconds of audio).
    page.evaluate(WATCH_HIGHLIGHT_JS, alice_id)
    start = inbound_audio_from(charlie, alice_id)
    wait_for_audio_from(charlie, alice_id, start + 150)
    assert page.evaluate("window.__highlight") == {"lost": 0}
    assert active_speakers(charlie) == [alice_id]

    # Bob starts talking too, as loud as Alice: the floor stays with Alice (no ping-pong).
    bob.page.get_by_role("button", name="Unmute microphone").click()
    expect(page.locator(f'.tile[data-peer="{bob_id}"] .mic-off')).to_be_hidden()
    start = inbound_audio_from(charlie, bob_id)
    wait_for_audio_from(charlie, bob_id, start + 150)
    assert active_speakers(charlie) == [alice_id]
    assert page.evaluate("window.__highlight") == {"lost": 0}

    # Alice stops: the highlight moves to Bob.
    alice.page.get_by_role("button", name="Mute microphone").click()
    expect(page.locator(f'.tile[data-peer="{bob_id}"]')).to_have_class(
        re.compile(r"\bactive-speaker\b")
    )
    expect(alice_tile).not_to_have_class(re.compile(r"\bactive-speaker\b"))
    page.screenshot(path=str(OUTPUT / "voice-room-active-speaker.png"))
