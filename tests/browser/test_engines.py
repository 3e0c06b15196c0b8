"""Chromium and Firefox in one call: what the engines do differently (device names, the
speaker API, screen capture), so each test here names its own. The call features that are
the same on both engines run between them in the other modules (`each_pair`)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import (
    OUTPUT,
    Person,
    each_pair,
    for_pair,
    frames_decoded,
    screenshot,
    wait_for_async,
    wait_for_more_frames,
)
from tests.browser.test_experience import (
    CANVAS_CAMERA,
    INBOUND_AUDIO_JS,
    SHOWS_MAGENTA_JS,
    WATCH_NEGOTIATION_JS,
    added_device,
    screen_tile,
    wait_for_screen_frames,
)

pytestmark = pytest.mark.browser

People = Callable[..., Person]

# A second microphone, beside the engine's one fake microphone (Firefox's fake devices are
# one of each): an oscillator through Web Audio.
TONE_MICROPHONE = added_device(
    "audioinput",
    "tone-microphone",
    "Tone microphone",
    """
    const context = new AudioContext();
    const tone = context.createOscillator();
    const out = context.createMediaStreamDestination();
    tone.connect(out);
    tone.start();
    const [track] = out.stream.getAudioTracks();
    window.__toneTrack = track.id;  // its label is the engine's, not ours
    return track;
    """,
)

# The first connection sends the tone microphone's track, and a camera.
SENDING_TONE_JS = """() => {
  const senders = [...window.confab.peers.values()][0].pc.getSenders().filter((s) => s.track);
  return senders.length === 2 && senders.some((s) => s.track.id === window.__toneTrack);
}"""

# Where a page has no setSinkId (Safari before 18, Firefox before 116): no speaker choice.
NO_SET_SINK_ID = "delete HTMLMediaElement.prototype.setSinkId;"


@each_pair
def test_switching_camera_and_microphone_replaces_the_tracks_between_engines(
    person: People, engines: tuple[str, str]
) -> None:
    alice, bob = person("Alice", engine=engines[0]), person("Bob", engine=engines[1])
    bob.context.add_init_script(CANVAS_CAMERA)
    bob.context.add_init_script(TONE_MICROPHONE)
    room_url = alice.create_room(for_pair("Switch", engines))
    bob.join(room_url)
    alice.wait_for_media(1)
    bob.wait_for_media(1)
    for someone in (alice, bob):
        someone.page.evaluate(WATCH_NEGOTIATION_JS)

    page = bob.page
    page.get_by_role("button", name="Camera, microphone and speaker settings").click()
    settings = page.get_by_role("dialog", name="Settings")
    expect(settings).to_be_visible()
    speaker = settings.get_by_label("Speaker")
    expect(speaker).to_be_visible()
    page.screenshot(path=screenshot("settings", engines))
    frames = frames_decoded(alice)
    settings.get_by_label("Camera").select_option(label="Canvas camera")
    settings.get_by_label("Microphone").select_option(label="Tone microphone")
    speaker.select_option(label="Fake Audio Output 2")

    # The new tracks went into the same senders: Alice decodes the magenta canvas, and hears.
    page.wait_for_function(f"() => ({SENDING_TONE_JS})()")
    wait_for_more_frames(alice, frames)
    alice.page.wait_for_function(SHOWS_MAGENTA_JS, polling=200)
    start = alice.page.evaluate(INBOUND_AUDIO_JS)
    wait_for_async(
        alice.page,
        f"async (n) => (await ({INBOUND_AUDIO_JS})()).packets > n + 50",
        start["packets"],
    )
    # Nothing was renegotiated on either side.
    for someone in (alice, bob):
        watch = someone.page.evaluate("window.__negotiation")
        assert watch == {"offers": 0, "answers": 0, "states": []}, (someone.name, watch)
    assert page.evaluate("window.confab.localStream.getTracks().length") == 2
    # The speaker: every remote media element plays on the one chosen (setSinkId).
    chosen = page.evaluate("window.confab.experience.devices.prefs.audiooutput")
    expect(page.locator(".tile:not(.local) video")).to_have_js_property("sinkId", chosen)
    # Muting still works on the new microphone.
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Mute microphone").click()
    expect(alice.tile(bob).locator(".mic-off")).to_be_visible()


SHARING_JS = """() => [...window.confab.peers.values()].map((peer) =>
  peer.pc.getSenders().filter((s) => s.track && s.track.kind === "video").length)"""


@each_pair
def test_a_screen_shared_from_one_engine_reaches_the_other_and_a_late_joiner(
    person: People, engines: tuple[str, str]
) -> None:
    # Alice shares from the first engine; Bob watches on the second, Charlie comes later on
    # the second too.
    alice, bob = person("Alice", engine=engines[0]), person("Bob", engine=engines[1])
    room_url = alice.create_room(for_pair("Screens", engines))
    bob.join(room_url)
    alice.wait_for_media(1)
    bob.wait_for_media(1)
    alice_id = alice.peer_id()

    share = alice.page.get_by_role("button", name="Share your screen")
    share.click()
    expect(alice.page.get_by_role("button", name="Stop sharing your screen")).to_have_attribute(
        "aria-pressed", "true"
    )
    tile = screen_tile(bob, alice_id)
    expect(tile).to_have_attribute("aria-label", "Alice's screen")
    wait_for_screen_frames(bob, alice_id, any_size=True)
    expect(bob.tile(alice).first).not_to_have_class(re.compile(r"\bno-video\b"))
    assert alice.page.evaluate(SHARING_JS) == [2]

    charlie = person("Charlie", engine=engines[1])
    charlie.join(room_url)
    charlie.wait_for_media(2)
    expect(screen_tile(charlie, alice_id)).to_be_visible()
    wait_for_screen_frames(charlie, alice_id, any_size=True)
    expect(screen_tile(charlie, alice_id)).to_have_class(re.compile(r"\bpinned\b"))
    charlie.page.screenshot(path=screenshot("screen-share", engines))

    alice.page.get_by_role("button", name="Stop sharing your screen").click()
    for viewer in (bob, charlie):
        expect(screen_tile(viewer, alice_id)).to_have_count(0)
    # The viewers drop the tile on Alice's `media`; her connections let the screen go on
    # their own time (each sender's replaceTrack): wait for that.
    alice.page.wait_for_function(f"() => JSON.stringify(({SHARING_JS})()) === '[1,1]'")
    # And the other way: Bob shares back to Alice, on the connection they already have.
    bob.page.get_by_role("button", name="Share your screen").click()
    wait_for_screen_frames(alice, bob.peer_id(), any_size=True)
    for someone in (alice, bob, charlie):
        someone.wait_for_media(2)


def test_the_pre_join_screen_in_firefox_previews_and_its_device_choices_hold_in_the_call(
    person: People,
) -> None:
    alice = person("Alice")
    room_url = alice.create_room("Firefox lobby")
    bob = person("Bob", engine="firefox", prejoin=True)
    bob.context.add_init_script(TONE_MICROPHONE)
    page = bob.page
    page.goto(room_url)

    prejoin = page.locator("#prejoin")
    expect(prejoin).to_be_visible()
    expect(page.locator(".prejoin-people-text")).to_have_text("Alice is in the call.")
    page.wait_for_function("() => document.querySelector('.prejoin-video').videoWidth > 0")
    page.locator(".prejoin-kicker").click()  # a first click: the page may use sound
    page.wait_for_function(
        "() => Number(document.querySelector('.prejoin-meter').getAttribute('aria-valuenow')) > 40",
        polling="raf",
    )
    microphone = prejoin.get_by_label("Microphone", exact=True)
    expect(microphone.locator("option")).to_have_count(2)
    microphone.select_option(label="Tone microphone")
    prejoin.get_by_label("Speaker", exact=True).select_option(label="Fake Audio Output 2")
    page.get_by_label("Join with camera off").check()
    expect(page.locator(".prejoin-preview")).to_have_attribute("data-camera", "off")
    page.screenshot(path=str(OUTPUT / "prejoin-firefox.png"))
    page.get_by_role("button", name="Join now").click()
    bob.wait_joined()

    alice.wait_for_media(1, video=False)
    expect(alice.tile(bob).locator(".cam-off")).to_be_visible()
    expect(alice.tile(bob).locator(".mic-off")).to_be_hidden()
    # What goes out is the microphone chosen (the camera's track is there, disabled), and the
    # others play on the speaker chosen.
    page.wait_for_function(f"() => ({SENDING_TONE_JS})()")
    speaker = page.evaluate("window.confab.experience.devices.prefs.audiooutput")
    expect(page.locator(".tile:not(.local) video")).to_have_js_property("sinkId", speaker)
    # The next visit remembers the choices. (Firefox lists speakers only to a page that was
    # given a real microphone, which the tone is not: the speaker is remembered, not shown.)
    page.reload()
    expect(prejoin).to_be_visible()
    expect(microphone.locator("option:checked")).to_have_text("Tone microphone")
    expect(page.get_by_label("Join with camera off")).to_be_checked()
    saved = page.evaluate("JSON.parse(localStorage.getItem('confab.devices')).audiooutput")
    assert saved == speaker

    # A browser without setSinkId: no speaker picker, and the rest works.
    charlie = person("Charlie", engine="firefox", prejoin=True)
    charlie.context.add_init_script(NO_SET_SINK_ID)
    charlie.page.goto(room_url)
    expect(charlie.page.locator("#prejoin")).to_be_visible()
    expect(charlie.page.locator("#prejoin").get_by_label("Microphone", exact=True)).to_be_visible()
    expect(charlie.page.locator("#prejoin").get_by_label("Speaker", exact=True)).to_be_hidden()
    charlie.page.get_by_role("button", name="Join now").click()
    charlie.wait_joined()
    charlie.wait_for_media(1, only=[alice.peer_id()])
