"""Browser call setup: how long until a newcomer sees the other person (`make bench`).

Two people in headless Chromium (Debian's, fake camera and microphone) on one daphne worker
with the in-memory layer, the way they use Confab: signed up and signed in through the
forms, a fresh room made with the lobby form for each call. The first person joins and
waits; the second opens the room page and presses "Join now" on the pre-join screen as
soon as it is enabled. For each of CALLS calls it records, from the second person's page:

- click to frame: the "Join now" click to the first decoded remote video frame
  (`inbound-rtp` `framesDecoded > 0`, polled every 10 ms in the page);
- open to frame: the page's navigation start to that frame (page load, the pre-join
  camera preview and the click included);
- the first person's side: the same click to the first frame decoded there;
- both decoding: the later of those two first frames, after the click;
- connection to connected: on the newcomer's page, from the moment its RTCPeerConnection
  exists to its `connectionState` "connected".

The same calls are then made with the smallest call page there can be (bench/minimal.html,
on the floor relay of bench/floor.py: a camera preview held from the start, one plain
offer and answer, no repair, no UI), in the same run, so that each Confab figure has its
floor beside it.

WebRTC only sees loopback here: run inside a network namespace of its own, as make bench
does (`unshare --net sh -c 'ip link set lo up && exec .venv/bin/python -m bench.call_setup'`).
The medians go into bench/results/latest.json and docs/performance.md.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from collections.abc import Callable
from typing import Any

from playwright.sync_api import BrowserContext, Page, sync_playwright

from bench.run import ROOT, cluster, make_accounts, make_rooms, store_result
from tests.browser.conftest import CHROMIUM, CHROMIUM_FLAGS, loopback_only

CALLS = 10
TIMEOUT_MS = 20_000

# In the page: start watching for the first decoded remote video frame, and note
# performance.now() then as window.__firstFrameAt (returns at once); on the way, when the
# first peer connection appeared (__pcAt) and when it was connected (__connectedAt).
WATCH_FIRST_FRAME_JS = """
() => {
  const poll = async () => {
    for (const peer of (window.confab && window.confab.peers || new Map()).values()) {
      if (!peer.pc) continue;
      window.__pcAt ??= performance.now();
      if (peer.pc.connectionState === "connected") window.__connectedAt ??= performance.now();
      for (const report of (await peer.pc.getStats()).values()) {
        if (report.type === "inbound-rtp" && report.kind === "video" && report.framesDecoded > 0) {
          window.__firstFrameAt = performance.now();
          return;
        }
      }
    }
    setTimeout(poll, 10);
  };
  poll();
}
"""
FIRST_FRAME_AT = "() => window.__firstFrameAt"

# In the page: note when "Join now" is clicked, as an absolute time (both pages' clocks).
NOTE_CLICK_JS = """
(selector) => document.querySelector(selector).addEventListener(
  "click", () => { window.__joinClickedAt = performance.timeOrigin + performance.now(); },
  { capture: true })
"""
CONFAB_JOIN = "#prejoin .prejoin-join"
MINIMAL_JOIN = "#join"


def signed_in(context: BrowserContext, cookie: str) -> None:
    for part in cookie.split("; "):
        name, value = part.split("=", 1)
        context.add_cookies([{"name": name, "value": value, "domain": "127.0.0.1", "path": "/"}])


def join(page: Page, url: str, button: str) -> None:
    page.goto(url)
    page.locator(button).click(timeout=TIMEOUT_MS)
    page.wait_for_function("() => window.confab && window.confab.selfId", timeout=TIMEOUT_MS)


def one_call(first: Page, second: Page, url: str, button: str) -> dict[str, float]:
    """One call in a fresh room; each person's page is reused from call to call (closing
    a page that held a call could hang Chromium's teardown)."""
    join(first, url, button)
    first.evaluate(WATCH_FIRST_FRAME_JS)
    second.goto(url)
    join_button = second.locator(button)
    join_button.wait_for(timeout=TIMEOUT_MS)
    second.wait_for_function(
        "(selector) => !document.querySelector(selector).disabled", arg=button, timeout=TIMEOUT_MS
    )
    second.evaluate(NOTE_CLICK_JS, button)
    second.evaluate(WATCH_FIRST_FRAME_JS)
    join_button.click()
    bob_at = float(second.wait_for_function(FIRST_FRAME_AT, timeout=TIMEOUT_MS).json_value())
    alice_at = float(first.wait_for_function(FIRST_FRAME_AT, timeout=TIMEOUT_MS).json_value())
    clicked = float(second.evaluate("window.__joinClickedAt"))
    origin = float(second.evaluate("performance.timeOrigin"))
    alice_at += float(first.evaluate("performance.timeOrigin"))
    pc_at, connected_at = second.evaluate("[window.__pcAt, window.__connectedAt]")
    result = {
        "click_to_frame_ms": round(origin + bob_at - clicked, 1),
        "open_to_frame_ms": round(bob_at, 1),
        "first_person_click_to_frame_ms": round(alice_at - clicked, 1),
        "both_decoding_ms": round(max(origin + bob_at, alice_at) - clicked, 1),
        "connection_to_connected_ms": round(float(connected_at) - float(pc_at), 1),
    }
    if button == CONFAB_JOIN:
        for page in (second, first):
            page.get_by_role("button", name="Leave").click()
            page.wait_for_url(lambda url: "/rooms/" not in url, timeout=TIMEOUT_MS)  # the lobby
    else:
        for page in (second, first):
            page.goto("about:blank")  # the minimal page has no Leave: going away is leaving
    return result


def calls_on(
    pages: list[Page], url_of: Callable[[int], str], button: str
) -> list[dict[str, float]]:
    calls = []
    for n in range(CALLS + 1):
        call = one_call(pages[0], pages[1], url_of(n), button)
        print(f"  call {n}{' (warm-up, not counted)' if n == 0 else ''}: {call}", flush=True)
        if n:  # the first call warms up the browser (first getUserMedia) and server
            calls.append(call)
    return calls


def summary(calls: list[dict[str, float]]) -> dict[str, Any]:
    return {
        "calls": len(calls),
        **{
            f"median_{key}": round(statistics.median(call[key] for call in calls), 1)
            for key in calls[0]
        },
        "max_click_to_frame_ms": max(call["click_to_frame_ms"] for call in calls),
        "max_both_decoding_ms": max(call["both_decoding_ms"] for call in calls),
        "runs": calls,
    }


def measure() -> dict[str, Any]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)

        def two_pages(cookies: list[str]) -> list[Page]:
            contexts = [
                browser.new_context(viewport={"width": 1280, "height": 800}) for _ in cookies
            ]
            for context, cookie in zip(contexts, cookies, strict=True):
                if cookie:
                    signed_in(context, cookie)
            return [context.new_page() for context in contexts]

        with cluster(1, "memory") as c:
            base = f"http://127.0.0.1:{c.ports[0]}"
            cookies = make_accounts(base, 2)
            confab_pages = two_pages(cookies)

            def room_url(_n: int) -> str:
                (slug,) = make_rooms(base, cookies[0], 1, 2)
                return f"{base}/rooms/{slug}/"

            confab = calls_on(confab_pages, room_url, CONFAB_JOIN)
        with cluster(1, "memory", app="bench.floor_asgi:application") as floor:
            base = f"http://127.0.0.1:{floor.ports[0]}"
            minimal_pages = two_pages(["", ""])
            minimal = calls_on(
                minimal_pages, lambda n: f"{base}/minimal?room=call-{n}", MINIMAL_JOIN
            )
        browser.close()
    return {"layer": "in-memory", "workers": 1, **summary(confab), "minimal": summary(minimal)}


def main() -> None:
    if not loopback_only():
        sys.exit(
            "run inside a loopback-only network namespace: "
            "unshare --net sh -c 'ip link set lo up && exec .venv/bin/python -m bench.call_setup'"
        )
    os.chdir(ROOT)
    result = measure()
    store_result("call_setup", result)
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
