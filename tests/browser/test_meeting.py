"""The meeting around the call in a real browser: raised hands and their queue, reactions
(docs/protocol.md, `hand` and `reaction`)."""

from __future__ import annotations

import base64
import re
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, expect

from tests.browser.conftest import Person, each_pair, for_pair, screenshot, wait_for_async
from tests.browser.test_experience import (
    INBOUND_AUDIO_JS,
    WATCH_NEGOTIATION_JS,
    inbound_audio,
    wait_for_audio_packets,
)

pytestmark = pytest.mark.browser

People = Callable[..., Person]


def hands(someone: Person) -> Locator:
    """The names in `someone`'s list of raised hands, in its order."""
    return someone.page.locator("#hand-queue .hand-name")


def badge(someone: Person, other: Person | None) -> Locator:
    """The hand badge on `other`'s tile as `someone` sees it (None: their own tile)."""
    tile = someone.page.locator(".tile.local") if other is None else someone.tile(other)
    return tile.locator(".tile-hand")


def test_raised_hands_queue_in_order_for_everyone_and_a_moderator_lowers_one(
    person: People,
) -> None:
    # Alice owns the room (a moderator); Bob is in Firefox.
    alice = person("Alice")
    bob = person("Bob", engine="firefox")
    charlie = person("Charlie")
    room_url = alice.create_room("Hands up")
    for someone in (bob, charlie):
        someone.join(room_url)
    alice.wait_for_media(2)

    bob.page.get_by_role("button", name="Raise your hand").click()
    expect(bob.page.locator("#toggle-hand")).to_have_attribute("aria-pressed", "true")
    expect(bob.page.locator("#toggle-hand")).to_have_attribute("aria-label", "Lower your hand")
    expect(badge(alice, bob)).to_contain_text("1")
    charlie.page.get_by_role("button", name="Raise your hand").click()
    for someone in (alice, bob, charlie):
        expect(hands(someone)).to_have_count(2)
    expect(hands(alice)).to_have_text(["Bob", "Charlie"])
    expect(hands(bob)).to_have_text(["Bob (you)", "Charlie"])
    expect(badge(bob, None)).to_have_attribute("aria-label", "Hand raised (1 in the queue)")
    expect(badge(bob, charlie)).to_have_attribute("aria-label", "Hand raised (2 in the queue)")
    expect(alice.page.locator(".toast", has_text="Charlie raised a hand.")).to_be_visible()
    # Only a moderator may lower someone else's hand: Bob has a Lower button on his own only.
    expect(bob.page.locator("#hand-queue .hand-lower")).to_have_count(1)
    alice.page.screenshot(path=screenshot("hands", ("chromium", "firefox")))

    alice.page.get_by_role("button", name="Lower the hand of Bob").click()
    expect(bob.page.locator(".toast", has_text="A moderator lowered your hand.")).to_be_visible()
    expect(bob.page.locator("#toggle-hand")).to_have_attribute("aria-pressed", "false")
    for someone in (alice, bob, charlie):
        expect(hands(someone)).to_have_text(["Charlie (you)" if someone is charlie else "Charlie"])
    expect(badge(alice, bob)).to_have_count(0)
    expect(badge(bob, charlie)).to_have_attribute("aria-label", "Hand raised (1 in the queue)")

    # Charlie lowers his own: the list goes away everywhere.
    charlie.page.locator("#hand-queue").get_by_role("button", name="Lower your hand").click()
    for someone in (alice, bob, charlie):
        expect(someone.page.locator("#hand-queue")).to_be_hidden()
        expect(someone.page.locator(".tile-hand")).to_have_count(0)


# Every reaction any page received, and any refusal of one.
WATCH_REACTIONS_JS = """() => {
  window.__reactions = {received: [], refused: 0};
  window.confab.signaling.on("reaction", (m) => window.__reactions.received.push(m.reaction));
  window.confab.signaling.on("error", (m) => {
    if (m.ref === "reaction") window.__reactions.refused += 1;
  });
}"""


@each_pair
def test_a_reaction_floats_over_the_senders_tile_for_everyone(
    person: People, engines: tuple[str, str]
) -> None:
    alice = person("Alice", engine=engines[0])
    bob = person("Bob", engine=engines[1])
    room_url = alice.create_room(for_pair("Applause", engines))
    bob.join(room_url)
    alice.wait_for_media(1)
    bob.wait_for_media(1)
    for someone in (alice, bob):
        someone.page.evaluate(WATCH_REACTIONS_JS)

    bob.page.get_by_role("button", name="React").click()
    picker = bob.page.get_by_role("dialog", name="Reactions")
    expect(picker.get_by_role("button")).to_have_count(6)
    picker.get_by_role("button", name="Applause").click()
    float_on_alice = alice.tile(bob).locator(".reaction-float")
    expect(float_on_alice).to_have_text("👏")
    expect(float_on_alice).to_have_attribute("aria-label", "Bob: Applause")
    expect(bob.page.locator(".tile.local .reaction-float")).to_have_text("👏")
    # It floats away by itself.
    expect(float_on_alice).to_have_count(0, timeout=10_000)

    # Clicking on and on: the page holds its buttons back before the server's limit (a
    # burst of 5, then 1 a second; the bucket filled up again while the applause floated),
    # so the server refuses nothing.
    love = picker.get_by_role("button", name="Love")
    # Six clicks at once (a click on a disabled button does nothing): five go out.
    love.evaluate("(button) => { for (let i = 0; i < 6; i += 1) button.click(); }")
    expect(love).to_be_disabled()
    alice.page.wait_for_function("() => window.__reactions.received.length === 6")
    expect(love).to_be_enabled(timeout=5_000)
    love.click()
    for someone in (alice, bob):
        # Bob hears his own reaction back from the server too, a moment after Alice may.
        someone.page.wait_for_function("() => window.__reactions.received.length >= 7")
        got = someone.page.evaluate("window.__reactions")
        assert got == {"received": ["clap"] + ["heart"] * 6, "refused": 0}, (someone.name, got)


# --- Voice: processing and push to talk -----------------------------------------------------

MIC_SETTINGS_JS = """() => {
  const s = window.confab.localStream.getAudioTracks()[0].getSettings();
  return {noiseSuppression: s.noiseSuppression, echoCancellation: s.echoCancellation,
          autoGainControl: s.autoGainControl};
}"""


def open_settings(someone: Person) -> Locator:
    someone.page.get_by_role("button", name="Camera, microphone and speaker settings").click()
    panel = someone.page.get_by_role("dialog", name="Settings")
    expect(panel).to_be_visible()
    return panel


NOISE_SUPPRESSION = "Noise suppression and echo cancellation"


def test_voice_processing_goes_off_on_the_live_microphone_without_renegotiating_and_stays_off(
    person: People,
) -> None:
    alice, bob = person("Alice"), person("Bob")
    room_url = alice.create_room("Clean sound")
    bob.join(room_url)
    bob.wait_for_media(1)
    assert set(bob.page.evaluate(MIC_SETTINGS_JS).values()) == {True}
    bob.page.evaluate(WATCH_NEGOTIATION_JS)

    box = open_settings(bob).get_by_label(NOISE_SUPPRESSION)
    expect(box).to_be_checked()
    box.uncheck()
    bob.page.wait_for_function(
        f"() => Object.values(({MIC_SETTINGS_JS})()).every((on) => on === false)"
    )
    # The new microphone track went into the same sender: no offer, no answer.
    assert bob.page.evaluate("window.__negotiation") == {"offers": 0, "answers": 0, "states": []}
    wait_for_audio_packets(alice, inbound_audio(alice)["packets"] + 20)  # still coming
    wait_for_sound(alice)

    # Remembered: the next call starts with it off; on again, it is on again.
    bob.page.reload()
    bob.wait_for_media(1)
    assert set(bob.page.evaluate(MIC_SETTINGS_JS).values()) == {False}
    box = open_settings(bob).get_by_label(NOISE_SUPPRESSION)
    expect(box).not_to_be_checked()
    box.check()
    bob.page.wait_for_function(
        f"() => Object.values(({MIC_SETTINGS_JS})()).every((on) => on === true)"
    )


def test_a_microphone_without_noise_suppression_says_so_instead_of_offering_it(
    person: People,
) -> None:
    # Firefox's fake microphone offers its processing only off (getCapabilities).
    alice, bob = person("Alice"), person("Bob", engine="firefox")
    room_url = alice.create_room("Plain sound firefox")
    bob.join(room_url)
    bob.wait_for_media(1)
    panel = open_settings(bob)
    expect(panel.get_by_label(NOISE_SUPPRESSION)).to_be_disabled()
    expect(
        panel.get_by_text("This microphone has no noise suppression to turn on or off.")
    ).to_be_visible()
    bob.page.screenshot(path=screenshot("voice-settings", ("firefox", "firefox")))


# Whether the sound coming from the other side has been silent for a second: the received
# energy stopped growing (a disabled microphone sends silence).
QUIET_FOR_A_SECOND_JS = f"""async () => {{
  const {{energy}} = await ({INBOUND_AUDIO_JS})();
  const now = performance.now();
  const seen = (window.__quiet ||= {{energy, since: now}});
  if (energy > seen.energy + 1e-7) Object.assign(seen, {{energy, since: now}});
  return now - seen.since > 1000;
}}"""


def wait_until_quiet(someone: Person) -> None:
    someone.page.evaluate("delete window.__quiet")
    wait_for_async(someone.page, QUIET_FOR_A_SECOND_JS, timeout=15_000)


def wait_for_sound(someone: Person) -> None:
    energy = inbound_audio(someone)["energy"]
    wait_for_async(
        someone.page, f"async (e) => (await ({INBOUND_AUDIO_JS})()).energy > e + 0.01", energy
    )


@pytest.mark.parametrize("engine", ["chromium", "firefox"])
def test_push_to_talk_sends_sound_only_while_space_is_held(person: People, engine: str) -> None:
    alice, bob = person("Alice"), person("Bob", engine=engine)
    room_url = alice.create_room(f"Walkie-talkie {engine}")
    bob.join(room_url)
    alice.wait_for_media(1)
    wait_for_sound(alice)

    open_settings(bob).get_by_label("Push to talk: hold Space to speak while muted").check()
    bob.page.keyboard.press("Escape")  # the settings close
    bob.page.get_by_role("button", name="Mute microphone").click()
    expect(alice.tile(bob).locator(".mic-off")).to_be_visible()
    wait_until_quiet(alice)

    bob.page.locator("#tiles").click()  # focus on the page, not on a button
    bob.page.keyboard.down("Space")
    expect(alice.tile(bob).locator(".mic-off")).to_be_hidden()
    wait_for_sound(alice)
    assert bob.page.evaluate("window.confab.localStream.getAudioTracks()[0].enabled") is True
    bob.page.keyboard.up("Space")
    expect(alice.tile(bob).locator(".mic-off")).to_be_visible()
    expect(bob.page.get_by_role("button", name="Unmute microphone")).to_be_visible()
    wait_until_quiet(alice)

    # Remembered, and off again when unticked: Space does nothing then.
    bob.page.reload()
    bob.wait_for_media(1)
    box = open_settings(bob).get_by_label("Push to talk: hold Space to speak while muted")
    expect(box).to_be_checked()
    box.uncheck()
    bob.page.keyboard.press("Escape")
    bob.page.get_by_role("button", name="Mute microphone").click()
    bob.page.locator("#tiles").click()
    bob.page.keyboard.down("Space")
    expect(bob.page.get_by_role("button", name="Unmute microphone")).to_be_visible()
    bob.page.keyboard.up("Space")


# --- The people panel, and who came and went ---------------------------------------------------

# Counts the notes the page plays (each chime is two oscillators started).
COUNT_NOTES = """(() => {
  window.__notes = 0;
  const start = OscillatorNode.prototype.start;
  OscillatorNode.prototype.start = function (...args) {
    window.__notes += 1;
    return start.apply(this, args);
  };
})();"""


def people_panel(someone: Person) -> Locator:
    panel = someone.page.get_by_role("dialog", name="People in the call")
    if not panel.is_visible():
        someone.page.get_by_role("button", name="People in the call").click()
    expect(panel).to_be_visible()
    return panel


def row(panel: Locator, name: str) -> Locator:
    return panel.locator(".people-row", has_text=name)


def test_the_people_panel_shows_everyones_state_and_the_call_says_who_came_and_went(
    person: People,
) -> None:
    alice, bob = person("Alice"), person("Bob")
    alice.context.add_init_script(COUNT_NOTES)
    room_url = alice.create_room("Roll call")
    bob.join(room_url)
    alice.wait_for_media(1)

    panel = people_panel(alice)
    expect(panel.locator(".people-title")).to_have_text("2 people in the call")
    expect(row(panel, "Alice (you)").get_by_role("img", name="Moderator")).to_be_visible()
    expect(row(panel, "Bob").get_by_role("img", name="Moderator")).to_have_count(0)
    panel.get_by_label("Play a sound when someone joins or leaves").check()

    bob.page.get_by_role("button", name="Mute microphone").click()
    bob.page.locator("#toggle-hand").click()
    expect(row(panel, "Bob").get_by_role("img", name="Microphone off")).to_be_visible()
    expect(
        row(panel, "Bob").get_by_role("img", name="Hand raised (1 in the queue)")
    ).to_be_visible()
    alice.page.screenshot(path=screenshot("people-panel", ("chromium", "chromium")))

    # The row's menu is the tile's: a moderator lowers the hand from it.
    row(panel, "Bob").get_by_role("button", name="Moderate Bob").click()
    alice.page.get_by_role("menu", name="Moderate Bob").get_by_role(
        "menuitem", name="Lower hand"
    ).click()
    expect(bob.page.locator(".toast", has_text="A moderator lowered your hand.")).to_be_visible()

    notes = alice.page.evaluate("window.__notes")
    charlie = person("Charlie")
    charlie.join(room_url)
    expect(alice.page.locator(".toast", has_text="Charlie joined.")).to_be_visible()
    expect(people_panel(alice).locator(".people-title")).to_have_text("3 people in the call")
    alice.page.wait_for_function("(n) => window.__notes === n + 2", arg=notes)
    charlie.page.get_by_role("button", name="Leave the call").click()
    expect(alice.page.locator(".toast", has_text="Charlie left.")).to_be_visible()
    alice.page.wait_for_function("(n) => window.__notes === n + 4", arg=notes)
    expect(people_panel(alice).locator(".people-title")).to_have_text("2 people in the call")
    expect(bob.page.locator(".toast", has_text="Charlie left.")).to_be_visible()


# --- Recording, with consent shown ----------------------------------------------------------

# EBML ids (Matroska) read from the recorded file: containers are walked into, whatever
# their size (MediaRecorder writes the Segment and its Clusters with an unknown size).
CONTAINERS = {0x18538067, 0x1549A966, 0x1654AE6B, 0xAE, 0x1F43B675, 0xA0}
DURATION, TIMECODE_SCALE, CODEC_ID, CLUSTER_TIMECODE = 0x4489, 0x2AD7B1, 0x86, 0xE7
BLOCKS = {0xA3, 0xA1}  # SimpleBlock, Block: track number, then a 16-bit time in the cluster


def _vint(data: bytes, at: int, *, keep_marker: bool) -> tuple[int, int]:
    length = 1
    while not data[at] & (0x80 >> (length - 1)):
        length += 1
    value = data[at] if keep_marker else data[at] & (0xFF >> length)
    for i in range(1, length):
        value = value * 256 + data[at + i]
    unknown = not keep_marker and value == (1 << (7 * length)) - 1
    return (-1 if unknown else value), length


def webm_facts(data: bytes) -> dict[str, Any]:
    """What the file says of itself: its Duration (seconds), its codecs, and the time of
    its last frame (seconds)."""
    facts: dict[str, Any] = {"duration": None, "codecs": set(), "last_frame": 0.0}
    scale = 1_000_000
    cluster = 0
    at = 0
    while at < len(data):
        element, id_length = _vint(data, at, keep_marker=True)
        size, size_length = _vint(data, at + id_length, keep_marker=False)
        start = at + id_length + size_length
        if element in CONTAINERS:
            at = start
            continue
        body = data[start : start + size]
        if element == TIMECODE_SCALE:
            scale = int.from_bytes(body, "big")
        elif element == DURATION:
            ticks = struct.unpack(">d" if size == 8 else ">f", body)[0]
            facts["duration"] = ticks * scale / 1e9
        elif element == CODEC_ID:
            facts["codecs"].add(body.decode())
        elif element == CLUSTER_TIMECODE:
            cluster = int.from_bytes(body, "big")
        elif element in BLOCKS:
            _, track_length = _vint(body, 0, keep_marker=False)
            relative = int.from_bytes(body[track_length : track_length + 2], "big", signed=True)
            facts["last_frame"] = max(facts["last_frame"], (cluster + relative) * scale / 1e9)
        at = start + size
    return facts


# What the page saves: the file behind an <a download> it clicks, read back as base64.
# (The page's CSP lets nothing fetch a blob: URL, so the Blob is kept as it is made.)
KEEP_SAVED_FILE = """(() => {
  const blobs = new Map();
  const create = URL.createObjectURL;
  URL.createObjectURL = (blob) => {
    const url = create.call(URL, blob);
    blobs.set(url, blob);
    return url;
  };
  const click = HTMLAnchorElement.prototype.click;
  HTMLAnchorElement.prototype.click = function () {
    const blob = this.download && blobs.get(this.href);
    if (blob) {
      const name = this.download;
      window.__saved = blob.arrayBuffer().then((buffer) => {
        const bytes = new Uint8Array(buffer);
        let text = "";
        for (let i = 0; i < bytes.length; i += 0x8000) {
          text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
        }
        return {name, bytes: btoa(text)};
      });
    }
    return click.call(this);
  };
})();"""


def indicator(someone: Person) -> Locator:
    return someone.page.locator("#recording-indicator")


@pytest.mark.parametrize("engine", ["chromium", "firefox"])
def test_a_moderator_records_the_meeting_everyone_sees_it_and_the_file_lasts_as_long(
    person: People, tmp_path: Path, engine: str
) -> None:
    # The recorder in either engine; Bob in the other one.
    alice = person("Alice", engine=engine)
    alice.context.add_init_script(KEEP_SAVED_FILE)
    bob = person("Bob", engine="chromium" if engine == "firefox" else "firefox")
    room_url = alice.create_room(f"On the record {engine}")
    bob.join(room_url)
    alice.wait_for_media(1)
    # Only moderators have the button; the server refuses anyone else (test_meeting.py).
    expect(bob.page.locator("#toggle-recording")).to_be_hidden()

    alice.page.get_by_role("button", name="Record the meeting on this computer").click()
    for someone in (alice, bob):
        expect(indicator(someone)).to_have_text("Recording: Alice")
    started = time.monotonic()
    charlie = person("Charlie")
    charlie.join(room_url)
    expect(indicator(charlie)).to_have_text("Recording: Alice")  # a latecomer sees it too
    alice.page.screenshot(path=screenshot("recording", (engine, engine)))
    # Let it record a while: until the page's clock says 4 s have passed.
    alice.page.wait_for_function(
        "(t) => performance.now() > t", arg=alice.page.evaluate("performance.now() + 4000")
    )

    stop = alice.page.get_by_role("button", name="Stop recording and save it")
    if engine == "chromium":
        with alice.page.expect_download() as download:
            stop.click()
        assert download.value.suggested_filename.startswith("confab-on-the-record-chromium-")
    else:
        stop.click()  # Playwright over BiDi reports no downloads: the page's copy is read
    elapsed = time.monotonic() - started
    # The file is made once the recorder has stopped, a moment after the click.
    alice.page.wait_for_function("() => window.__saved !== undefined")
    kept = alice.page.evaluate("async () => await window.__saved")
    saved = tmp_path / kept["name"]
    saved.write_bytes(base64.b64decode(kept["bytes"]))
    assert re.fullmatch(rf"confab-on-the-record-{engine}-[\d-]+\.webm", saved.name), saved.name
    facts = webm_facts(saved.read_bytes())
    assert {"V_VP8", "A_OPUS"} <= facts["codecs"], facts
    assert facts["duration"] is not None, facts
    assert abs(facts["duration"] - elapsed) < 1.5, (facts, elapsed)
    assert abs(facts["last_frame"] - facts["duration"]) < 1.5, facts
    for someone in (alice, bob, charlie):
        expect(indicator(someone)).to_be_hidden()
