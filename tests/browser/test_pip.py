"""Picture-in-picture (static/js/pip.js) in Chromium, which has Document Picture-in-Picture:
the window plays the other person's camera and its Mute and Leave work the call."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Person, screenshot

pytestmark = pytest.mark.browser

People = Callable[..., Person]

PIP = "documentPictureInPicture.window?.document"
# Frames the window's video has shown, and its size: decoded media, not an empty element.
PIP_VIDEO_JS = f"""() => {{
  const video = {PIP}.querySelector("video.pip-video");
  if (!video || !video.videoWidth) return null;
  return {{frames: video.getVideoPlaybackQuality().totalVideoFrames, width: video.videoWidth,
           name: {PIP}.querySelector(".pip-name").textContent}};
}}"""


def test_the_picture_in_picture_window_plays_the_other_person_and_mutes_and_leaves(
    person: People,
) -> None:
    alice, bob = person("Alice"), person("Bob")
    room_url = alice.create_room("Small window")
    bob.join(room_url)
    alice.wait_for_media(1)
    button = alice.page.get_by_role("button", name="Picture in picture")
    with alice.context.expect_page() as opened:
        button.click()
    window = opened.value  # Playwright sees the small window as a page of its own
    expect(button).to_have_attribute("aria-pressed", "true")
    first = alice.page.wait_for_function(PIP_VIDEO_JS, polling=200).json_value()
    assert first["name"] == "Bob"
    assert first["width"] > 0
    alice.page.wait_for_function(
        f"() => ({PIP_VIDEO_JS})().frames > {first['frames'] + 10}", polling=200
    )
    window.screenshot(path=screenshot("pip-window", ("chromium", "chromium")))

    # Mute from the small window: the call's microphone goes off, and Bob sees it.
    alice.page.evaluate(f"() => {PIP}.querySelector('.pip-mute').click()")
    expect(bob.tile(alice).locator(".mic-off")).to_be_visible()
    assert alice.page.evaluate(f"() => {PIP}.querySelector('.pip-mute').textContent") == "Unmute"

    # Leave from it: the call ends for Alice and the window closes.
    alice.page.evaluate(f"() => {PIP}.querySelector('.pip-leave').click()")
    expect(alice.page).to_have_url(alice.url("/"))
    expect(bob.page.locator(".tile:not(.local)")).to_have_count(0)
    assert alice.page.evaluate("() => documentPictureInPicture.window") is None
