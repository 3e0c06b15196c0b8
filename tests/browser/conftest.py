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

import os
import re
import socket
import subprocess
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
    Playwright,
    ViewportSize,
    expect,
    sync_playwright,
)
from playwright.sync_api import (
    TimeoutError as PlaywrightTimeoutError,
)

from tests.servers_common import REPO, Server, assert_no_server_errors, daphne, stop

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


def _tolerate_closes_without_code() -> None:
    """Playwright's Python client reads `code` and `reason` from every close of a routed
    websocket (page.route_web_socket), and its driver leaves them out of the event when the
    socket closed without them (a page's `socket.close()`, or a server's close seen from
    Firefox over BiDi): a KeyError then surfaces in whatever call is waiting. Read them as
    optional, which is what the protocol says they are."""

    def close_page(self: Any, event: dict[str, Any]) -> None:
        if self._on_page_close:
            self._on_page_close(event.get("code"), event.get("reason"))
        else:
            self._channel.send_may_fail("closeServer", None, event)

    def close_server(self: Any, event: dict[str, Any]) -> None:
        if self._on_server_close:
            self._on_server_close(event.get("code"), event.get("reason"))
        else:
            self._channel.send_may_fail("closePage", None, event)

    from playwright._impl import _network

    _network.WebSocketRoute._channel_close_page = close_page  # type: ignore[method-assign]
    _network.WebSocketRoute._channel_close_server = close_server  # type: ignore[method-assign]


_tolerate_closes_without_code()


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


# Firefox (Debian's ESR) is driven by the same Playwright, over WebDriver BiDi: the "moz-"
# channel makes Playwright speak BiDi to the browser it is given instead of needing its own
# patched build. Playwright 1.65 sends emulation.setMediaFeaturesOverride on every new
# context, which Firefox 153 does not know, so requirements-dev.txt pins 1.64.
FIREFOX = "/usr/bin/firefox-esr"
XVFB = "/usr/bin/Xvfb"
FIREFOX_PREFS: dict[str, str | float | bool] = {
    # Fake camera (a colour pattern), fake microphone (a tone), no permission prompt: what
    # Chromium's --use-fake-* flags do.
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    # Host candidates on loopback, with their real addresses rather than mDNS names.
    "media.peerconnection.ice.loopback": True,
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    # Sound may start without a click, as it may in Chromium with the flags above (the
    # autoplay test imposes the block itself).
    "media.autoplay.default": 0,
    "media.autoplay.blocking_policy": 0,
    # A pretend sound card: with no audio device an AudioContext never leaves "suspended"
    # (Chromium's fake devices include an output). The speaking ring measures through one.
    "media.cubeb.force_mock_context": True,
    # Nothing to reach outside the namespace.
    "app.update.enabled": False,
    "browser.shell.checkDefaultBrowser": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "network.captive-portal-service.enabled": False,
}
ENGINES = ("chromium", "firefox")

# Firefox's ICE gathers nothing usable in a namespace that has only lo, even with
# ice.loopback: it wants an interface with a default route. The pair lives (and dies) in the
# test's own namespace; its addresses reach nowhere. Chromium sees it too, so its host
# candidates include 10.77.0.1 beside 127.0.0.1.
FIREFOX_LINK = ("cfx0", "cfx1", "10.77.0.1", "10.77.0.2")


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


# Every Content Security Policy violation, with where it came from. Firefox reports one as an
# uncaught page error without its source, and Playwright's screenshots there add a <style>
# from an eval: the page itself can never eval (its policy has no 'unsafe-eval'), so a
# violation from an eval is the driver's and is not the page's problem.
CSP_REPORT = "Content-Security-Policy violation:"
CSP_WATCH = f"""
document.addEventListener("securitypolicyviolation", (event) => {{
  console.warn("{CSP_REPORT}", event.violatedDirective, event.blockedURI || "inline",
               "from", decodeURIComponent(event.sourceFile || "?"));
}}, true);
"""
FIREFOX_CSP_ERROR = "The page\u2019s settings blocked"  # its uncaught-error wording
FIREFOX_ICE_FAILED = "ICE failed, add a "  # "... STUN server" / "... TURN server", the same


class Browsers:
    """The session's browsers, one per engine, each launched the first time a test asks."""

    def __init__(self, playwright: Playwright) -> None:
        self.playwright = playwright
        self.launched: dict[str, Browser] = {}
        self.link = False
        self.screen: subprocess.Popen[bytes] | None = None

    def __getitem__(self, engine: str) -> Browser:
        if engine not in self.launched:
            self.launched[engine] = self.launch(engine)
        return self.launched[engine]

    def launch(self, engine: str) -> Browser:
        if engine == "chromium":
            return self.playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        if engine == "firefox":
            if not Path(FIREFOX).exists():
                pytest.fail(f"{FIREFOX} is missing (make test installs firefox-esr)")
            return self.playwright.firefox.launch(
                channel="moz-firefox",
                executable_path=FIREFOX,
                headless=False,
                env={**os.environ, "DISPLAY": self.start_screen()},
                firefox_user_prefs=FIREFOX_PREFS,
            )
        raise ValueError(f"no browser engine {engine!r}; there are {ENGINES}")

    def start_screen(self) -> str:
        """A virtual X screen for Firefox: headless Firefox has no screen to share
        (getDisplayMedia fails with NotFoundError), a headed one under Xvfb shares this one.
        Xvfb picks a free display number and tells it on a pipe; its socket is abstract, so it
        lives in the test's network namespace."""
        read, write = os.pipe()
        self.screen = subprocess.Popen(
            [XVFB, "-displayfd", str(write), "-screen", "0", "1280x720x24", "-nolisten", "tcp"],
            pass_fds=(write,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(write)
        with os.fdopen(read) as answer:
            number = answer.readline().strip()
        if not number:
            pytest.fail(f"{XVFB} did not start (make test installs xvfb)")
        return f":{number}"

    def add_default_route(self) -> None:
        """For the whole session, made before any browser starts: an interface that comes
        or goes while Chromium runs is a network change to it, and it cancels the requests a
        page has in flight (a page whose modules were loading never starts)."""
        near, far, address, gateway = FIREFOX_LINK
        ip("link", "add", near, "type", "veth", "peer", "name", far)
        self.link = True
        # No IPv6 link-local addresses: each would finish its duplicate address detection a
        # second or two after the link comes up, an address change that a Chromium started
        # meanwhile takes for a network change (the first page's requests failed with
        # ERR_NETWORK_CHANGED when a module ran alone).
        for end in (near, far):
            ip("link", "set", "dev", end, "addrgenmode", "none")
        ip("addr", "add", f"{address}/24", "dev", near)
        ip("addr", "add", f"{gateway}/24", "dev", far)
        ip("link", "set", near, "up")
        ip("link", "set", far, "up")
        ip("route", "add", "default", "via", gateway, "dev", near)

    def close(self) -> None:
        for browser in self.launched.values():
            browser.close()
        if self.screen:
            stop(self.screen, timeout=10)
        if self.link:
            ip("link", "del", FIREFOX_LINK[0])

    def new_person(
        self, engine: str, name: str, base_url: str, username: str, **context: Any
    ) -> Person:
        """A person in a fresh context of `engine`'s browser: its console's Content Security
        Policy reports and the page's uncaught errors land in `problems`."""
        options: dict[str, Any] = {"viewport": {"width": 1280, "height": 720}, **context}
        browser_context = self[engine].new_context(base_url=base_url, **options)
        page = browser_context.new_page()
        who = Person(
            name=name,
            username=username,
            context=browser_context,
            page=page,
            base_url=base_url,
            engine=engine,
        )

        def on_console(message: ConsoleMessage) -> None:
            text = message.text
            # Warnings, errors and the transport's account of its repairs ("mesh: ...").
            if message.type in ("error", "warning") or text.startswith("mesh:"):
                who.console.append(f"{message.type}: {text}"[:300])
            if text.startswith(CSP_REPORT) and text.endswith(" > eval"):
                return  # the driver's own (a screenshot hides the caret with a <style>)
            if "Content Security Policy" in text or "Content-Security-Policy" in text:
                who.problems.append(f"CSP: {text}")

        def on_page_error(error: Exception) -> None:
            if engine == "firefox" and str(error).startswith(FIREFOX_CSP_ERROR):
                return  # reported with its source by CSP_WATCH, above
            if engine == "firefox" and str(error).startswith(FIREFOX_ICE_FAILED):
                return  # Firefox's own word when a connection's ICE fails, not the page's
            who.problems.append(f"page error: {error}")

        browser_context.add_init_script(CSP_WATCH)
        page.on("console", on_console)
        page.on("pageerror", on_page_error)
        page.on("websocket", lambda ws: who.sockets.append(f"opened {ws.url}"))
        return who


@pytest.fixture(scope="session")
def browsers(server: Server) -> Iterator[Browsers]:
    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        running = Browsers(playwright)
        running.add_default_route()
        try:
            yield running
        finally:
            running.close()


# Calls between engines: the first plays the person already in the room, the second the
# newcomer, so each engine is the newcomer once. A test that takes `engines` runs each way.
PAIRS = [("chromium", "chromium"), ("chromium", "firefox"), ("firefox", "chromium")]
each_pair = pytest.mark.parametrize("engines", PAIRS, ids=["-".join(pair) for pair in PAIRS])


def for_pair(name: str, engines: tuple[str, str]) -> str:
    """A room name of its own for each pair (the server is the session's): "Standup",
    "Standup chromium-firefox"."""
    return name if set(engines) == {"chromium"} else f"{name} {'-'.join(engines)}"


def screenshot(name: str, engines: tuple[str, str]) -> str:
    """The screenshot file of each pair: "lobby.png", "lobby-chromium-firefox.png"."""
    return str(OUTPUT / f"{for_pair(name, engines).replace(' ', '-')}.png")


# --- People -------------------------------------------------------------------------------

STATS_JS = """
async () => {
  const out = [];
  for (const [id, peer] of window.confab.peers) {
    const row = {id, name: peer.name, state: peer.pc ? peer.pc.connectionState : "none",
                 framesDecoded: 0, audioPackets: 0, outboundVideo: 0, outboundAudio: 0,
                 videoTransceivers: 0, sendingVideo: 0,
                 iceRestarts: peer.iceRestarts, rebuilds: peer.rebuilds};
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

# The bitrate cap of each camera sender's encoder, for every connection (the mesh sets it
# a moment after a connection connects; null before).
VIDEO_CAPS_JS = """
() => window.confab.connections().flatMap((pc) => pc.getSenders()
  .filter((sender) => sender.track && sender.track.kind === "video")
  .map((sender) => (sender.getParameters().encodings[0] || {}).maxBitrate ?? null))
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


# Video frames decoded so far from everyone (every connection's inbound-rtp), counted on:
# Firefox starts its counters again from 0 after an ICE restart, so the page keeps, per
# report, what it had seen before a counter went down (checks sample often enough).
VIDEO_FRAMES_JS = """async () => {
  const seen = (window.__framesSeen ||= new WeakMap());
  let frames = 0;
  for (const peer of window.confab.peers.values()) {
    if (!peer.pc) continue;
    const counters = seen.get(peer.pc) || new Map();
    seen.set(peer.pc, counters);
    (await peer.pc.getStats()).forEach((r) => {
      if (r.type !== "inbound-rtp" || r.kind !== "video") return;
      const now = r.framesDecoded || 0;
      const known = counters.get(r.id) || {last: 0, before: 0};
      if (now < known.last) known.before += known.last;
      known.last = now;
      counters.set(r.id, known);
      frames += known.before + now;
    });
  }
  return frames;
}"""


def frames_decoded(someone: Person) -> int:
    """Video frames decoded so far from everyone."""
    return int(someone.page.evaluate(VIDEO_FRAMES_JS))


def wait_for_more_frames(someone: Person, than: int, timeout: float = 10_000) -> None:
    try:
        wait_for_async(
            someone.page,
            f"async (than) => (await ({VIDEO_FRAMES_JS})()) > than",
            than,
            timeout=timeout,
        )
    except Exception as error:
        raise AssertionError(
            f"{someone.name} ({someone.engine}) decoded no more than {than} frames: "
            f"{someone.stats()}"
        ) from error


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


# What a page that did not join shows (wait_joined's failure message).
JOIN_STATE_JS = """() => ({
  confab: Boolean(window.confab),
  status: document.querySelector("#conn-status")?.textContent ?? null,
  notice: document.querySelector("#conn-notice")?.textContent ?? null,
  closed: document.querySelector("#closed")?.textContent?.trim().slice(0, 200) ?? null,
  title: document.title,
})"""


@dataclass
class Person:
    name: str
    username: str
    context: BrowserContext
    page: Page
    base_url: str
    engine: str = "chromium"
    problems: list[str] = field(default_factory=list)
    # What a failed wait reports: the console's errors and warnings, the sockets opened.
    console: list[str] = field(default_factory=list)
    sockets: list[str] = field(default_factory=list)

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
        # Firefox over BiDi appends to a number field that it fills: empty it first.
        page.locator("#id_capacity").clear()
        page.fill("#id_capacity", str(capacity))
        page.select_option("#id_kind", kind)
        page.get_by_role("button", name="Create room").click()
        expect(page).to_have_url(re.compile(r"/rooms/(?!new/)[^/]+/$"))
        self.wait_joined()
        return page.url

    def join(self, room_url: str) -> None:
        self.page.goto(room_url)
        self.wait_joined()

    def wait_joined(self) -> None:
        """The page is in the call (it has a peer id). A pre-join screen on the way (people not
        made by `person`, or made with prejoin=True) is passed with its Join button."""
        try:
            seen = self.page.wait_for_function(
                """() => (window.confab && window.confab.selfId ? "joined" : false)
                     || (document.querySelector("#prejoin .prejoin-join") ? "prejoin" : false)"""
            )
            if seen.json_value() == "prejoin":
                self.page.get_by_role("button", name="Join now").click()
                self.page.wait_for_function("() => window.confab && window.confab.selfId")
        except PlaywrightTimeoutError as error:
            state = self.page.evaluate(JOIN_STATE_JS)
            raise AssertionError(
                f"{self.name} ({self.engine}) never joined {self.page.url}: {state}; "
                f"sockets: {self.sockets[-5:]}; console: {self.console[-10:]}; "
                f"problems: {self.problems}"
            ) from error

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
            raise AssertionError(
                f"{self.name}: media did not flow: {self.stats()}; console: {self.console[-10:]}"
            ) from error

    def wait_for_bitrate_caps(self, bitrate: int, senders: int) -> None:
        """Each of `senders` camera senders has its encoder capped at `bitrate` bit/s."""
        expected = [bitrate] * senders
        try:
            self.page.wait_for_function(
                f"(expected) => JSON.stringify(({VIDEO_CAPS_JS})()) === JSON.stringify(expected)",
                arg=expected,
                polling=200,
            )
        except PlaywrightTimeoutError as error:
            caps = self.page.evaluate(VIDEO_CAPS_JS)
            raise AssertionError(f"{self.name}: bitrate caps {caps}, not {expected}") from error

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
    browsers: Browsers,
    server: Server,
    accounts: dict[str, tuple[str, Path]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., Person]]:
    """person("Alice") -> a signed-in Person in a fresh browser context of their own;
    person("Bob", engine="firefox") in Firefox."""
    made: list[Person] = []

    def make(
        name: str,
        *,
        engine: str = "chromium",
        viewport: ViewportSize | None = None,
        refuse_devices: bool = False,
        block_autoplay: bool = False,
        prejoin: bool = False,
        guest: bool = False,
    ) -> Person:
        """guest: someone without an account (they come in by an invite link)."""
        known = None if guest else accounts.get(name)
        username = known[0] if known else f"{name.lower()}-{uuid.uuid4().hex[:8]}"
        who = browsers.new_person(
            engine,
            name,
            server.url,
            username,
            viewport=viewport or {"width": 1280, "height": 720},
            storage_state=known[1] if known else None,
        )
        made.append(who)
        context = who.context
        if refuse_devices:
            # What the page sees when someone refuses the permission prompt: the first
            # request fails; later ones succeed (they changed their mind in site settings).
            context.add_init_script(REFUSE_FIRST_GETUSERMEDIA)
        if block_autoplay:
            context.add_init_script(BLOCK_AUTOPLAY_UNTIL_CLICK)
        if not prejoin:
            context.add_init_script(SKIP_PREJOIN)
        if known is None and not guest:
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
