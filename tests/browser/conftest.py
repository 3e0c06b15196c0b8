"""Browser tests: a real daphne server and Debian's Chromium, driven by Playwright.

The whole run must happen inside a loopback-only network namespace, so that WebRTC only
gathers loopback candidates and nothing leaves the machine. As root (`make test-browser`):

    unshare --net sh -c 'ip link set lo up && exec .venv/bin/pytest tests/browser'

Outside such a namespace every test here fails with that instruction: a browser test that
cannot run is a failure, never a skip.

One server and one browser serve the whole session; each person is a browser context of
their own (separate cookies). A name is signed up once, through the real sign-up page; later
tests reuse that account's cookies (signing up hashes a password, which is slow).
"""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Locator,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)

from tests.servers_common import REPO, Server, assert_no_server_errors, daphne

OUTPUT = REPO / "test-output"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
]
PASSWORD = "Browser-test-pw-8417"

expect.set_options(timeout=10_000)


def loopback_only() -> bool:
    """True inside a network namespace whose only interface is lo (if_nameindex asks the
    kernel about the current namespace; /sys/class/net would describe the host's)."""
    return [name for _, name in socket.if_nameindex()] == ["lo"]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not loopback_only():
        pytest.fail(
            "browser tests run inside a loopback-only network namespace (make test-browser): "
            "unshare --net sh -c 'ip link set lo up && exec .venv/bin/pytest tests/browser'"
        )
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is not installed (apt-get install chromium; make test does it)")
    # Peer-to-peer files (tests/browser/test_files.py): a small limit, so that a file over it
    # is small too. Nothing else in the suite sends files.
    with daphne(tmp_path_factory.mktemp("server"), FILE_TRANSFER_MAX_MB="2") as running:
        yield running


@pytest.fixture(scope="session")
def browser(server: Server) -> Iterator[Browser]:
    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


# --- People -------------------------------------------------------------------------------

STATS_JS = """
async () => {
  const out = [];
  for (const [id, peer] of window.confab.peers) {
    const row = {id, name: peer.name, state: peer.pc ? peer.pc.connectionState : "none",
                 framesDecoded: 0, audioPackets: 0, outboundVideo: 0, outboundAudio: 0,
                 videoTransceivers: 0, sendingVideo: 0};
    if (peer.pc) {
      const stats = await peer.pc.getStats();
      stats.forEach((r) => {
        const video = r.kind === "video";
        if (r.type === "inbound-rtp" && video) row.framesDecoded += r.framesDecoded || 0;
        if (r.type === "inbound-rtp" && !video) row.audioPackets += r.packetsReceived || 0;
        if (r.type === "outbound-rtp" && video) row.outboundVideo += 1;
        if (r.type === "outbound-rtp" && !video) row.outboundAudio += r.packetsSent || 0;
      });
      for (const t of peer.pc.getTransceivers()) {
        if (t.receiver.track && t.receiver.track.kind === "video") row.videoTransceivers += 1;
        if (t.sender.track && t.sender.track.kind === "video") row.sendingVideo += 1;
      }
    }
    out.push(row);
  }
  return out;
}
"""

# wait_for_function does not await promises, so the predicate starts a getStats round in the
# background and answers with the last finished one (`key` is unique per wait).
MEDIA_FLOWS_JS = """
([key, count, video, only]) => {
  const check = (window[key] ||= {ok: false, running: false});
  if (!check.running) {
    check.running = true;
    (async () => {
      if (!window.confab) return false;
      const all = window.confab.peers;
      const peers = only ? only.map((id) => all.get(id)) : [...all.values()];
      if (peers.length !== count || peers.some((peer) => !peer)) return false;
      for (const peer of peers) {
        if (!peer.pc || peer.pc.connectionState !== "connected") return false;
        const stats = await peer.pc.getStats();
        let frames = 0, packets = 0;
        stats.forEach((r) => {
          if (r.type === "inbound-rtp" && r.kind === "video") frames += r.framesDecoded || 0;
          if (r.type === "inbound-rtp" && r.kind === "audio") packets += r.packetsReceived || 0;
        });
        if (packets === 0 || (video && frames === 0)) return false;
      }
      return true;
    })().then((ok) => { check.ok = ok; }, () => { check.ok = false; })
       .finally(() => { check.running = false; });
  }
  return check.ok;
}
"""


def wait_for_async(
    page: Page, predicate: str, arg: Any = None, *, timeout: float = 10_000, polling: float = 200
) -> Any:
    """Wait until `predicate`, the source of an async function of `arg`, resolves truthy;
    return what it resolved to.

    Playwright's wait_for_function does not await a promise returned by its predicate: an
    async predicate returns a Promise, which is truthy, so the wait passes at once whatever
    the condition. Here a plain predicate starts one call of the async one at a time in the
    page and answers with the last result (the same shape as MEDIA_FLOWS_JS).
    """
    key = f"__wait_{uuid.uuid4().hex}"
    wrapper = f"""(arg) => {{
      const check = (window["{key}"] ||= {{ value: false, running: false }});
      if (!check.running) {{
        check.running = true;
        Promise.resolve()
          .then(() => ({predicate})(arg))
          .then((value) => {{ check.value = value; }}, () => {{ check.value = false; }})
          .finally(() => {{ check.running = false; }});
      }}
      return check.value;
    }}"""
    return page.wait_for_function(wrapper, arg=arg, polling=polling, timeout=timeout).json_value()


VIDEO_FRAMES_JS = """async () => {
  let frames = 0;
  for (const peer of window.confab.peers.values()) {
    if (!peer.pc) continue;
    (await peer.pc.getStats()).forEach((r) => {
      if (r.type === "inbound-rtp" && r.kind === "video") frames += r.framesDecoded || 0;
    });
  }
  return frames;
}"""


def frames_decoded(someone: Person) -> int:
    """Video frames decoded so far from everyone (every connection's inbound-rtp)."""
    return int(someone.page.evaluate(VIDEO_FRAMES_JS))


def wait_for_more_frames(someone: Person, than: int, timeout: float = 10_000) -> None:
    wait_for_async(
        someone.page, f"async (than) => (await ({VIDEO_FRAMES_JS})()) > than", than, timeout=timeout
    )


REFUSE_FIRST_GETUSERMEDIA = """
(() => {
  const devices = navigator.mediaDevices;
  if (!devices) return;
  const real = devices.getUserMedia.bind(devices);
  let refusals = 1;
  devices.getUserMedia = (constraints) => refusals-- > 0
    ? Promise.reject(new DOMException("Permission denied", "NotAllowedError"))
    : real(constraints);
})();
"""


# A browser's autoplay policy: media with sound may not start before the person interacts
# with the page (headless Chromium with these flags allows it, so we impose it).
BLOCK_AUTOPLAY_UNTIL_CLICK = """
(() => {
  const play = HTMLMediaElement.prototype.play;
  let allowed = false;
  document.addEventListener("click", () => { allowed = true; }, true);
  HTMLMediaElement.prototype.play = function () {
    if (!allowed && !this.muted) {
      return Promise.reject(new DOMException("play() needs a user gesture", "NotAllowedError"));
    }
    return play.call(this);
  };
})();
"""


# The pre-join screen (static/js/prejoin.js) stands between a page and its call. Most tests
# are about the call, so their people chose "Skip this screen next time" (set on room pages
# only, so that it never lands in an account's saved storage); person(..., prejoin=True)
# meets the screen as people do.
SKIP_PREJOIN = """
(() => {
  if (location.pathname.startsWith("/rooms/")) {
    try { localStorage.setItem("confab.skipPreview", "1"); } catch {}
  }
})();
"""


@dataclass
class Person:
    name: str
    username: str
    context: BrowserContext
    page: Page
    base_url: str
    problems: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base_url + path

    def sign_up(self) -> None:
        page = self.page
        page.goto(self.url("/accounts/signup/"))
        page.fill("#id_username", self.username)
        page.fill("#id_display_name", self.name)
        page.fill("#id_password1", PASSWORD)
        page.fill("#id_password2", PASSWORD)
        page.get_by_role("button", name="Sign up").click()
        expect(page).to_have_url(self.url("/"))

    def create_room(self, name: str, *, kind: str = "video", capacity: int = 6) -> str:
        """Create a room with the lobby form; the page lands in it. Returns its URL."""
        page = self.page
        page.goto(self.url("/"))
        page.fill("#id_name", name)
        page.fill("#id_capacity", str(capacity))
        page.select_option("#id_kind", kind)
        page.get_by_role("button", name="Create room").click()
        expect(page).to_have_url(re.compile(r"/rooms/[^/]+/$"))
        self.wait_joined()
        return page.url

    def join(self, room_url: str) -> None:
        self.page.goto(room_url)
        self.wait_joined()

    def wait_joined(self) -> None:
        """The page is in the call (it has a peer id). A pre-join screen on the way (people not
        made by `person`, or made with prejoin=True) is passed with its Join button."""
        seen = self.page.wait_for_function(
            """() => (window.confab && window.confab.selfId ? "joined" : false)
                 || (document.querySelector("#prejoin .prejoin-join") ? "prejoin" : false)"""
        )
        if seen.json_value() == "prejoin":
            self.page.get_by_role("button", name="Join now").click()
            self.page.wait_for_function("() => window.confab && window.confab.selfId")

    def peer_id(self) -> str:
        return str(self.page.evaluate("window.confab.selfId"))

    def stats(self) -> list[dict[str, Any]]:
        return list(self.page.evaluate(STATS_JS))

    def wait_for_media(
        self,
        remote: int,
        *,
        video: bool = True,
        only: list[str] | None = None,
        timeout: float = 15_000,
    ) -> None:
        """`remote` connections (all of them, or those with the peer ids in `only`) are
        connected and decode the other side's media."""
        try:
            self.page.wait_for_function(
                MEDIA_FLOWS_JS,
                arg=[f"__media_{uuid.uuid4().hex}", remote, video, only],
                polling=200,
                timeout=timeout,
            )
        except Exception as error:
            raise AssertionError(f"{self.name}: media did not flow: {self.stats()}") from error

    def message_box(self) -> Locator:
        return self.page.get_by_role("textbox", name="Message")

    def say(self, text: str) -> None:
        """Send a chat message the way people do: type, then Enter."""
        self.message_box().fill(text)
        self.message_box().press("Enter")

    def tile(self, other: Person) -> Locator:
        return self.page.locator(".tile:not(.local)", has_text=other.name)


@pytest.fixture(scope="session")
def accounts() -> dict[str, tuple[str, Path]]:
    """display name -> (username, saved cookies), filled as people first sign up."""
    return {}


@pytest.fixture
def person(
    browser: Browser,
    server: Server,
    accounts: dict[str, tuple[str, Path]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., Person]]:
    """person("Alice") -> a signed-in Person in a fresh browser context of their own."""
    made: list[Person] = []

    def make(
        name: str,
        *,
        viewport: ViewportSize | None = None,
        refuse_devices: bool = False,
        block_autoplay: bool = False,
        prejoin: bool = False,
    ) -> Person:
        known = accounts.get(name)
        context = browser.new_context(
            viewport=viewport or {"width": 1280, "height": 720},
            base_url=server.url,
            storage_state=known[1] if known else None,
        )
        if refuse_devices:
            # What the page sees when someone refuses the permission prompt: the first
            # request fails; later ones succeed (they changed their mind in site settings).
            context.add_init_script(REFUSE_FIRST_GETUSERMEDIA)
        if block_autoplay:
            context.add_init_script(BLOCK_AUTOPLAY_UNTIL_CLICK)
        if not prejoin:
            context.add_init_script(SKIP_PREJOIN)
        page = context.new_page()
        username = known[0] if known else f"{name.lower()}-{uuid.uuid4().hex[:8]}"
        who = Person(name=name, username=username, context=context, page=page, base_url=server.url)

        def on_console(message: ConsoleMessage) -> None:
            if (
                "Content Security Policy" in message.text
                or "Content-Security-Policy" in message.text
            ):
                who.problems.append(f"CSP: {message.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda error: who.problems.append(f"page error: {error}"))
        made.append(who)
        if known is None:
            who.sign_up()
            state = tmp_path_factory.mktemp("accounts") / f"{username}.json"
            context.storage_state(path=state)
            accounts[name] = (username, state)
        return who

    yield make
    problems = [f"{who.name}: {problem}" for who in made for problem in who.problems]
    for who in made:
        who.context.close()
    assert not problems, "\n".join(problems)


@pytest.fixture(autouse=True)
def server_logs_no_errors(server: Server) -> Iterator[None]:
    """The suite's daphne must log no ERROR line and no traceback during a test."""
    start = server.log.stat().st_size
    yield
    assert_no_server_errors(server.log, start)
