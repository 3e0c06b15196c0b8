"""Files sent peer to peer in a call (static/js/files.js, docs/protocol.md "Files (peer to
peer)"): offers, accept and decline, the bytes over a data channel, the size limit on both
sides, cancelling, and sending to one person from a tile's menu. The session's server has
FILE_TRANSFER_MAX_MB=2 (conftest.py)."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, WebSocket, expect

from tests.browser.conftest import OUTPUT, Person, each_pair, for_pair, screenshot

pytestmark = pytest.mark.browser

People = Callable[..., Person]
MIB = 1024 * 1024
FIRST_BLOCK = 256 * 1024  # files.js reads a file in blocks of this size


def record_socket(someone: Person) -> list[tuple[str, dict[str, Any]]]:
    """Every message the page's room socket sends ("sent") or receives ("received")."""
    frames: list[tuple[str, dict[str, Any]]] = []

    def on_socket(socket: WebSocket) -> None:
        if "/ws/rooms/" not in socket.url:
            return

        def recorder(way: str) -> Callable[[str | bytes], None]:
            def on_frame(payload: str | bytes) -> None:
                text = payload if isinstance(payload, str) else payload.decode(errors="replace")
                frames.append((way, json.loads(text)))

            return on_frame

        socket.on("framesent", recorder("sent"))
        socket.on("framereceived", recorder("received"))

    someone.page.on("websocket", on_socket)
    return frames


def wait_for_files_channels(someone: Person, count: int) -> None:
    """The page's file control channels to `count` people are open."""
    someone.page.wait_for_function(
        "(n) => window.confab.files.connected.length === n", arg=count, polling=100
    )


def transfers(someone: Person) -> list[dict[str, Any]]:
    """window.confab.files.transfers without the received Blobs (which do not serialize)."""
    return list(
        someone.page.evaluate(
            """() => window.confab.files.transfers.map(
                 ({blob, ...rest}) => ({...rest, hasBlob: Boolean(blob)}))"""
        )
    )


def card(someone: Person, file_name: str) -> Locator:
    return someone.page.get_by_role("article", name=file_name)


def row(someone: Person, file_name: str, other: Person) -> Locator:
    return card(someone, file_name).locator(f'.xf-row[data-peer="{other.peer_id()}"]')


def toast(someone: Person, text: str) -> Locator:
    return someone.page.locator(".toast", has_text=text)


def send_to_everyone(someone: Person, path: Path) -> None:
    """The "Send a file" control and the browser's file chooser, as a person uses them."""
    with someone.page.expect_file_chooser() as chooser:
        someone.page.get_by_role("button", name="Send a file to everyone").click()
    chooser.value.set_files(str(path))


def send_from_tile_menu(someone: Person, other: Person, path: Path, menu_name: str) -> Locator:
    someone.page.get_by_role("button", name=menu_name).click()
    menu = someone.page.get_by_role("menu", name=menu_name)
    with someone.page.expect_file_chooser() as chooser:
        menu.get_by_role("menuitem", name="Send a file…").click()
    chooser.value.set_files(str(path))
    return menu


def wait_for_transfer(someone: Person, condition: str) -> None:
    """Until some transfer `t` of the page satisfies the JavaScript expression `condition`."""
    someone.page.wait_for_function(
        f"() => window.confab.files.transfers.some((t) => {condition})", polling=100
    )


# The SHA-256 of a Blob, in hex.
SHA256_JS = """async (body) => {
  const digest = await crypto.subtle.digest("SHA-256", await body.arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}"""


def sha256_received(someone: Person, file_name: str) -> str:
    return str(
        someone.page.evaluate(
            f"""async (name) => {{
              const t = window.confab.files.transfers.find((x) => x.name === name && x.blob);
              return ({SHA256_JS})(t.blob);
            }}""",
            file_name,
        )
    )


def assert_controls_fit(someone: Person, width: int) -> None:
    """The call controls, the file button among them, fit in one row of round buttons."""
    boxes = someone.page.eval_on_selector_all(
        ".controls .control",
        """(buttons) => buttons.filter((b) => b.offsetParent).map((b) => {
             const r = b.getBoundingClientRect();
             return {id: b.id || b.className, leave: b.classList.contains("leave"),
                     left: r.left, right: r.right, width: r.width, height: r.height};
           })""",
    )
    assert any("xf-send-button" in box["id"] for box in boxes), boxes
    assert all(box["left"] >= 0 and box["right"] <= width for box in boxes), boxes
    assert all(abs(box["width"] - box["height"]) < 1 for box in boxes if not box["leave"]), boxes


def make_file(tmp_path: Path, name: str, size: int) -> tuple[Path, bytes]:
    data = os.urandom(size)
    path = tmp_path / name
    path.write_bytes(data)
    return path, data


# Holds the sender's file reads after the first block until released, so that a transfer
# stays in progress for as long as the test needs (a 2 MB file crosses loopback in an
# instant). Only Blob.arrayBuffer is touched; the app and its channels are untouched.
HOLD_READS = """() => {
  if (!window.__hold) {
    const real = Blob.prototype.arrayBuffer;
    window.__hold = {reads: 0, open: false, waiting: []};
    Blob.prototype.arrayBuffer = function () {
      const hold = window.__hold;
      hold.reads += 1;
      if (hold.open || hold.reads === 1) return real.call(this);
      return new Promise((resolve) => hold.waiting.push(() => resolve(real.call(this))));
    };
  }
  Object.assign(window.__hold, {reads: 0, open: false});
}"""

RELEASE_READS = """() => {
  window.__hold.open = true;
  for (const release of window.__hold.waiting.splice(0)) release();
}"""

# What a page with another limit (or a lying one) would announce: the size in its offers is
# replaced by window.__announce while that is set.
REWRITE_OFFERS = """() => {
  const real = RTCDataChannel.prototype.send;
  RTCDataChannel.prototype.send = function (data) {
    if (typeof data === "string" && window.__announce !== undefined) {
      const message = JSON.parse(data);
      if (message.type === "file-offer") {
        data = JSON.stringify({...message, size: window.__announce});
      }
    }
    return real.call(this, data);
  };
}"""


@each_pair
def test_a_file_sent_to_the_room_reaches_whoever_accepts_it_byte_for_byte(
    person: People, tmp_path: Path, engines: tuple[str, str]
) -> None:
    # Alice sends from one engine; Bob takes the file in the other (when they differ).
    alice, bob = person("Alice", engine=engines[0]), person("Bob", engine=engines[1])
    charlie = person("Charlie", engine=engines[0])
    frames = {someone.name: record_socket(someone) for someone in (alice, bob, charlie)}
    room_url = alice.create_room(for_pair("File drop", engines))
    bob.join(room_url)
    charlie.join(room_url)
    for someone in (alice, bob, charlie):
        someone.wait_for_media(2)
        wait_for_files_channels(someone, 2)
    path, data = make_file(tmp_path, "site-photos.zip", 300_000)
    seen_before = {name: len(list_) for name, list_ in frames.items()}

    send_to_everyone(alice, path)

    # Each of them is asked, and answers on their own.
    for someone in (bob, charlie):
        offer = card(someone, "site-photos.zip")
        expect(offer).to_contain_text("Alice wants to send you this file.")
        expect(offer).to_contain_text("293 KB · from Alice")
        expect(offer.get_by_role("button", name="Accept site-photos.zip")).to_be_visible()
    outgoing = card(alice, "site-photos.zip")
    expect(outgoing).to_contain_text("to 2 people")
    expect(row(alice, "site-photos.zip", bob)).to_contain_text("Waiting for Bob…")
    bob.page.screenshot(animations="disabled", path=screenshot("files-offer", engines))

    charlie.page.get_by_role("button", name="Decline site-photos.zip").click()
    expect(card(charlie, "site-photos.zip")).to_have_count(0)
    bob.page.get_by_role("button", name="Accept site-photos.zip").click()

    offer = card(bob, "site-photos.zip")
    expect(offer).to_contain_text("Received from Alice")
    expect(row(alice, "site-photos.zip", bob)).to_contain_text("Sent to Bob")
    expect(row(alice, "site-photos.zip", charlie)).to_contain_text("Charlie declined")
    expect(row(alice, "site-photos.zip", bob).locator("progress")).to_have_attribute("value", "100")
    expect(offer.locator("progress")).to_have_attribute("value", "100")
    by_peer = {t["peer"]: t for t in transfers(alice)}
    assert by_peer[bob.peer_id()]["state"] == "sent"
    assert by_peer[bob.peer_id()]["progress"] == 1
    assert by_peer[charlie.peer_id()]["state"] == "declined"
    [received] = transfers(bob)
    assert (received["state"], received["bytes"], received["progress"]) == ("done", 300_000, 1)
    assert transfers(charlie) == []

    # What Bob's page holds (and its Save link offers) is the very bytes Alice chose.
    sha256 = hashlib.sha256(data).hexdigest()
    assert sha256_received(bob, "site-photos.zip") == sha256
    save = offer.get_by_role("link", name="Save site-photos.zip")
    expect(save).to_have_attribute("download", "site-photos.zip")
    expect(save).to_have_attribute("href", re.compile(r"^blob:"))
    # Saved the way a person saves it. (Playwright hears no download from Firefox over BiDi.)
    if bob.engine == "chromium":
        with bob.page.expect_download() as download:
            save.click()
        assert download.value.suggested_filename == "site-photos.zip"
        assert Path(download.value.path()).read_bytes() == data
    alice.page.mouse.move(1, 1)  # no hover on the control just clicked
    alice.page.screenshot(animations="disabled", path=screenshot("files-sent", engines))
    bob.page.screenshot(animations="disabled", path=screenshot("files-received", engines))

    # Nothing of it went through the server: no frame names the file, and nobody
    # renegotiated (the file channel is in-band on the existing SCTP association).
    for name, list_ in frames.items():
        later = [message for _, message in list_[seen_before[name] :]]
        assert not any("site-photos" in json.dumps(message) for message in later), name
        assert not [m for m in later if m.get("type") in {"offer", "answer"}], name
    # The control channel made no negotiation of its own either: Alice, who was there
    # first, only ever answered.
    assert [m for way, m in frames["Alice"] if way == "sent" and m["type"] == "offer"] == []

    # Dismissing the card lets the file go.
    offer.get_by_role("button", name="Dismiss").click()
    expect(offer).to_have_count(0)
    assert transfers(bob) == []


def test_the_size_limit_holds_on_both_sides(person: People, tmp_path: Path) -> None:
    # Alice on a phone: a moderator in a video room has the most controls of anyone.
    alice, bob = person("Alice", viewport={"width": 390, "height": 844}), person("Bob")
    room_url = alice.create_room("Big files")
    bob.join(room_url)
    alice.wait_for_media(1)
    bob.wait_for_media(1)
    assert alice.page.evaluate("window.confab.files.limit") == 2 * MIB
    assert_controls_fit(alice, 390)

    # The sender refuses a file over the limit: nothing is offered.
    wait_for_files_channels(alice, 1)
    big, _ = make_file(tmp_path, "too-big.iso", 3 * MIB)
    send_to_everyone(alice, big)
    expect(
        toast(alice, "“too-big.iso” is 3 MB: files larger than 2 MB cannot be sent here")
    ).to_be_visible()
    assert transfers(alice) == []

    # A page that announces more than our limit (another server's setting, or a modified
    # page) is declined without asking, and both sides say why.
    alice.page.evaluate(REWRITE_OFFERS)
    alice.page.evaluate("window.__announce = 10 * 1024 ** 3")
    small, _ = make_file(tmp_path, "notes.txt", 2_000)
    send_to_everyone(alice, small)
    refused = card(bob, "notes.txt")
    expect(refused).to_contain_text("Larger than the 2 MB limit here: declined automatically.")
    expect(refused).to_contain_text("10 GB · from Alice")
    expect(row(alice, "notes.txt", bob)).to_contain_text("Too large for Bob: declined")
    alice.page.screenshot(animations="disabled", path=str(OUTPUT / "files-refused-phone.png"))
    # The control channel is ordered: had the big file been offered, Bob would have it first.
    assert [t["name"] for t in transfers(bob)] == ["notes.txt"]

    # A sender that sends more than it announced is stopped, and nothing is kept.
    alice.page.evaluate("window.__announce = 1000")
    liar, _ = make_file(tmp_path, "liar.bin", 100_000)
    send_to_everyone(alice, liar)
    bob.page.get_by_role("button", name="Accept liar.bin").click()
    expect(card(bob, "liar.bin")).to_contain_text("Alice sent more than announced: stopped.")
    expect(row(alice, "liar.bin", bob)).to_contain_text("Bob cancelled")
    stopped = next(t for t in transfers(bob) if t["name"] == "liar.bin")
    assert stopped["state"] == "oversize"
    assert stopped["bytes"] <= 1000
    assert not stopped["hasBlob"]
    expect(card(bob, "liar.bin").get_by_role("link", name="Save liar.bin")).to_have_count(0)


def test_a_cancel_stops_a_transfer_on_both_sides(person: People, tmp_path: Path) -> None:
    alice, bob = person("Alice"), person("Bob")
    room_url = alice.create_room("Slow uploads")
    bob.join(room_url)
    alice.wait_for_media(1)
    bob.wait_for_media(1)
    wait_for_files_channels(alice, 1)
    size = 1_500_000
    path, _ = make_file(tmp_path, "holiday-video.mp4", size)

    # The receiver cancels while the bytes flow.
    alice.page.evaluate(HOLD_READS)
    send_to_everyone(alice, path)
    bob.page.get_by_role("button", name="Accept holiday-video.mp4").click()
    wait_for_transfer(bob, f"t.state === 'receiving' && t.bytes === {FIRST_BLOCK}")
    percent = f"{FIRST_BLOCK * 100 // size}%"
    incoming = card(bob, "holiday-video.mp4")
    expect(incoming.locator(".xf-percent")).to_have_text(percent)
    expect(incoming).to_contain_text("Receiving from Alice…")
    expect(row(alice, "holiday-video.mp4", bob)).to_contain_text("Sending to Bob…")
    # The sender counts what has left its buffer: all of the first block, by now.
    expect(row(alice, "holiday-video.mp4", bob).locator(".xf-percent")).to_have_text(percent)
    expect(incoming.locator("progress")).to_have_attribute("value", percent.rstrip("%"))
    bob.page.screenshot(animations="disabled", path=str(OUTPUT / "files-progress.png"))
    alice.page.screenshot(animations="disabled", path=str(OUTPUT / "files-sending.png"))
    bob.page.get_by_role("button", name="Cancel receiving holiday-video.mp4").click()
    expect(incoming).to_contain_text("Cancelled")
    expect(row(alice, "holiday-video.mp4", bob)).to_contain_text("Bob cancelled")
    alice.page.evaluate(RELEASE_READS)

    # The sender cancels.
    second, _ = make_file(tmp_path, "second-take.mp4", size)
    alice.page.evaluate(HOLD_READS)
    send_to_everyone(alice, second)
    bob.page.get_by_role("button", name="Accept second-take.mp4").click()
    wait_for_transfer(bob, f"t.name === 'second-take.mp4' && t.bytes === {FIRST_BLOCK}")
    alice.page.get_by_role("button", name="Cancel sending second-take.mp4 to Bob").click()
    expect(row(alice, "second-take.mp4", bob)).to_contain_text("Cancelled")
    expect(card(bob, "second-take.mp4")).to_contain_text("Alice cancelled")
    alice.page.evaluate(RELEASE_READS)

    # A file after them goes through whole; by then the released reads have long run, and
    # neither cancelled transfer moved.
    third, data = make_file(tmp_path, "after.bin", 50_000)
    send_to_everyone(alice, third)
    bob.page.get_by_role("button", name="Accept after.bin").click()
    expect(card(bob, "after.bin")).to_contain_text("Received from Alice")
    assert sha256_received(bob, "after.bin") == hashlib.sha256(data).hexdigest()
    for someone in (alice, bob):
        states = {t["name"]: (t["state"], t["bytes"]) for t in transfers(someone)}
        assert states["holiday-video.mp4"] == ("cancelled", FIRST_BLOCK), someone.name
        assert states["second-take.mp4"] == ("cancelled", FIRST_BLOCK), someone.name
    # Cancelled cards can be dismissed; nothing is left to save.
    for someone in (alice, bob):
        for name in ("holiday-video.mp4", "second-take.mp4"):
            card(someone, name).get_by_role("button", name="Dismiss").click()
            expect(card(someone, name)).to_have_count(0)


def test_a_file_sent_from_a_tile_menu_reaches_only_that_person_in_a_voice_room_too(
    person: People, tmp_path: Path
) -> None:
    alice, bob = person("Alice"), person("Bob")
    charlie = person("Charlie", viewport={"width": 390, "height": 844})
    room_url = alice.create_room("Voice huddle", kind="voice")
    bob.join(room_url)
    charlie.join(room_url)
    for someone in (alice, bob, charlie):
        someone.wait_for_media(2, video=False)
        wait_for_files_channels(someone, 2)
    path, data = make_file(tmp_path, "minutes.pdf", 120_000)

    # Bob is no moderator: his tile menus hold just this.
    menu = send_from_tile_menu(bob, charlie, path, "Options for Charlie")
    expect(menu).to_be_hidden()
    outgoing = card(bob, "minutes.pdf")
    expect(outgoing).to_contain_text("117 KB · to Charlie")
    expect(row(bob, "minutes.pdf", charlie)).to_contain_text("Waiting for Charlie…")

    offer = card(charlie, "minutes.pdf")
    expect(offer).to_contain_text("Bob wants to send you this file.")
    charlie.page.screenshot(animations="disabled", path=str(OUTPUT / "files-offer-phone.png"))
    assert_controls_fit(charlie, 390)
    charlie.page.get_by_role("button", name="Accept minutes.pdf").click()
    expect(offer).to_contain_text("Received from Bob")
    expect(row(bob, "minutes.pdf", charlie)).to_contain_text("Sent to Charlie")
    assert sha256_received(charlie, "minutes.pdf") == hashlib.sha256(data).hexdigest()
    charlie.page.screenshot(animations="disabled", path=str(OUTPUT / "files-received-phone.png"))

    # One offer, to Charlie only.
    assert [(t["direction"], t["peer"]) for t in transfers(bob)] == [("out", charlie.peer_id())]
    assert transfers(alice) == []
    expect(alice.page.locator(".xf-card")).to_have_count(0)

    # A moderator's tile menu has it too, before the moderation items.
    alice.page.get_by_role("button", name="Moderate Bob").click()
    moderate = alice.page.get_by_role("menu", name="Moderate Bob")
    expect(moderate.get_by_role("menuitem")).to_have_text(
        ["Send a file…", "Mute", "Make moderator", "Remove from the call…", "Ban from the room…"]
    )
    alice.page.keyboard.press("Escape")
    expect(moderate).to_be_hidden()


def test_a_rebuilt_connection_ends_its_transfers_and_files_go_on_the_new_one(
    person: People, tmp_path: Path
) -> None:
    alice, bob = person("Alice"), person("Bob")
    room_url = alice.create_room("Shaky line")
    bob.join(room_url)
    alice.wait_for_media(1)
    bob.wait_for_media(1)
    wait_for_files_channels(alice, 1)
    path, _ = make_file(tmp_path, "draft.mov", 1_500_000)
    alice.page.evaluate(HOLD_READS)
    send_to_everyone(alice, path)
    bob.page.get_by_role("button", name="Accept draft.mov").click()
    wait_for_transfer(bob, f"t.state === 'receiving' && t.bytes === {FIRST_BLOCK}")

    # The last step of a repair (call.js): a new RTCPeerConnection on both sides.
    bob.page.evaluate("(id) => window.confab.rebuildConnection(id)", alice.peer_id())
    expect(card(bob, "draft.mov")).to_contain_text("Connection lost")
    expect(row(alice, "draft.mov", bob)).to_contain_text("Connection lost")
    alice.page.evaluate(RELEASE_READS)
    alice.wait_for_media(1)
    bob.wait_for_media(1)

    # The new connections have control channels of their own.
    wait_for_files_channels(alice, 1)
    wait_for_files_channels(bob, 1)
    again, data = make_file(tmp_path, "draft-again.mov", 200_000)
    send_to_everyone(alice, again)
    bob.page.get_by_role("button", name="Accept draft-again.mov").click()
    expect(card(bob, "draft-again.mov")).to_contain_text("Received from Alice")
    expect(row(alice, "draft-again.mov", bob)).to_contain_text("Sent to Bob")
    assert sha256_received(bob, "draft-again.mov") == hashlib.sha256(data).hexdigest()
    lost = next(t for t in transfers(bob) if t["name"] == "draft.mov")
    assert (lost["state"], lost["hasBlob"]) == ("lost", False)


FILES_OFF_JS = """
new MutationObserver((_, observer) => {
  const element = document.getElementById("room-config");
  try {
    const config = JSON.parse(element.textContent);
    config.file_transfer_max_mb = 0;
    element.textContent = JSON.stringify(config);
    observer.disconnect();
  } catch {
    // not there, or not parsed whole yet
  }
}).observe(document, { childList: true, subtree: true });
"""


def test_someone_whose_page_has_file_transfer_off_is_named_rather_than_waited_for(
    person: People, tmp_path: Path
) -> None:
    """A page loaded with FILE_TRANSFER_MAX_MB=0 (say, before a restart that changed it)
    opens no file channel: an offer to it ends with a word instead of waiting forever."""
    alice, bob, charlie = person("Alice"), person("Bob"), person("Charlie")
    room_url = alice.create_room("Mixed pages")

    # Bob's page reads a room-config with file transfer off. (Rewritten as the parser adds
    # it: a document served by page.route would not count as loopback for Chromium's local
    # network access checks, and its websocket would be refused.)
    bob.page.add_init_script(FILES_OFF_JS)
    bob.join(room_url)
    charlie.join(room_url)
    alice.wait_for_media(2)
    expect(bob.page.get_by_role("button", name="Send a file to everyone")).to_have_count(0)

    wait_for_files_channels(alice, 1)  # Charlie's

    path, _ = make_file(tmp_path, "agenda.txt", 2_000)
    send_to_everyone(alice, path)
    expect(row(alice, "agenda.txt", charlie)).to_contain_text("Waiting for Charlie")
    expect(row(alice, "agenda.txt", bob)).to_contain_text(
        "Bob cannot receive files here", timeout=20_000
    )
    expect(card(charlie, "agenda.txt")).to_be_visible()
    expect(card(bob, "agenda.txt")).to_have_count(0)
