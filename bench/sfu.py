"""SFU rooms against the mesh, in real browsers (`make bench`; docs/performance.md).

Headless Chromium pages (Debian's, fake camera and microphone) in one daphne worker with a
real Janus beside it, all inside a network namespace of the bench's own. Janus skips
loopback interfaces when it gathers ICE candidates, so the bench adds a veth pair to the
namespace (10.99.0.1, never leaving it), as the browser tests do. It measures:

- upload per person in a room of 5: the `bytesSent` of every outbound RTP stream of each
  page over UPLOAD_SECONDS, mesh room against SFU room;
- join to first frame: the newcomer's "Join now" click to the first decoded frame of the
  other person, a room of two, mesh against SFU (median of CALLS);
- Janus's CPU per forwarded stream: Janus's CPU time (/proc) over the same interval in the
  room of 5, divided by the streams it forwards (each of 5 people's camera and microphone
  to 4 others);
- how many people this machine holds in one SFU room: rooms of growing size until a page
  decodes less than MIN_FPS frames per second from someone (the browsers' CPU is what runs
  out here: every page is a full Chromium renderer encoding three layers).

Run inside a namespace: `unshare --net sh -c 'ip link set lo up && exec .venv/bin/python -m
bench.sfu'`. Figures go into bench/results/latest.json ("sfu") and docs/performance.md.
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, sync_playwright

from bench.run import ROOT, machine, make_accounts, make_rooms, store_result
from tests.browser.conftest import CHROMIUM, CHROMIUM_FLAGS, loopback_only
from tests.janus_server import start_janus
from tests.servers_common import daphne

UPLOAD_SECONDS = 20
CALLS = 5
SIZES = (5, 8, 10, 12)
MIN_FPS = 10.0
TIMEOUT_MS = 45_000
JANUS_IP = "10.99.0.1"

SENT_JS = """async () => {
  let bytes = 0;
  for (const pc of window.confab.connections())
    (await pc.getStats()).forEach((r) => { if (r.type === "outbound-rtp") bytes += r.bytesSent || 0; });
  return bytes;
}"""
# Frames decoded from each other person (per-person stats of either transport).
FRAMES_JS = """async () => {
  const out = {};
  for (const id of window.confab.peers.keys()) out[id] = (await window.confab.receivedFrom(id)).framesDecoded;
  return out;
}"""
WATCH_FIRST_FRAME_JS = """() => {
  const poll = async () => {
    for (const id of window.confab.peers.keys()) {
      if ((await window.confab.receivedFrom(id)).framesDecoded > 0) {
        window.__firstFrameAt = performance.timeOrigin + performance.now();
        return;
      }
    }
    setTimeout(poll, 10);
  };
  poll();
}"""


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_pages(browser: Browser, cookies: list[str]) -> list[Page]:
    pages = []
    for cookie in cookies:
        context = browser.new_context(viewport={"width": 1280, "height": 720})
        for part in cookie.split("; "):
            name, value = part.split("=", 1)
            context.add_cookies(
                [{"name": name, "value": value, "domain": "127.0.0.1", "path": "/"}]
            )
        pages.append(context.new_page())
    return pages


def join(page: Page, url: str) -> float:
    """Open the room, press Join now; returns the click's time (epoch ms)."""
    page.goto(url)
    button = page.get_by_role("button", name="Join now")
    button.wait_for(timeout=TIMEOUT_MS)
    page.wait_for_function(
        "() => !document.querySelector('#prejoin .prejoin-join').disabled", timeout=TIMEOUT_MS
    )
    clicked = time.time() * 1000
    button.click()
    page.wait_for_function("() => window.confab && window.confab.selfId", timeout=TIMEOUT_MS)
    return clicked


def leave(pages: list[Page]) -> None:
    for page in pages:
        button = page.get_by_role("button", name="Leave")
        if button.is_visible():
            button.click()
            page.wait_for_url(lambda url: "/rooms/" not in url, timeout=TIMEOUT_MS)
        else:
            # Never got into the call (a room size the machine could not hold): going away
            # is leaving (the page's beacon gives its seat back, if it had one).
            page.goto("about:blank")


def everyone_decoding(page: Page, others: int) -> bool:
    frames = page.evaluate(FRAMES_JS)
    return len(frames) == others and all(count > 0 for count in frames.values())


def wait_decoding(pages: list[Page]) -> None:
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not all(everyone_decoding(page, len(pages) - 1) for page in pages):
        if time.monotonic() > deadline:
            raise RuntimeError("not everyone decodes everyone")
        time.sleep(0.2)  # polling pages for a condition


def room_of(base: str, cookies: list[str], media: str, size: int) -> str:
    (slug,) = make_rooms(base, cookies[0], 1, max(size, 2), media=media)
    return f"{base}/rooms/{slug}/"


def upload(
    base: str, cookies: list[str], pages: list[Page], media: str, janus_pid: int
) -> dict[str, Any]:
    url = room_of(base, cookies, media, 5)
    for page in pages[:5]:
        join(page, url)
    wait_decoding(pages[:5])
    time.sleep(3)  # let bandwidth estimation settle before counting (measured interval below)
    sent = [page.evaluate(SENT_JS) for page in pages[:5]]
    cpu = cpu_seconds(janus_pid)
    started = time.monotonic()
    time.sleep(UPLOAD_SECONDS)
    elapsed = time.monotonic() - started
    cpu = cpu_seconds(janus_pid) - cpu
    sent = [page.evaluate(SENT_JS) - before for page, before in zip(pages[:5], sent, strict=True)]
    leave(pages[:5])
    kbps = [round(b * 8 / elapsed / 1000) for b in sent]
    forwarded = 5 * 4 * 2  # camera and microphone of each of 5 to 4 others
    return {
        "upload_kbit_s_per_person": round(statistics.mean(kbps)),
        "upload_kbit_s": kbps,
        "janus_cpu_percent": round(100 * cpu / elapsed, 1),
        "janus_cpu_percent_per_stream": round(100 * cpu / elapsed / forwarded, 2),
    }


def first_frame(base: str, cookies: list[str], pages: list[Page], media: str) -> list[float]:
    times = []
    for n in range(CALLS + 1):
        url = room_of(base, cookies, media, 2)
        join(pages[0], url)
        pages[1].evaluate("() => { delete window.__firstFrameAt; }")
        clicked = join(pages[1], url)
        pages[1].evaluate(WATCH_FIRST_FRAME_JS)
        at = float(
            pages[1]
            .wait_for_function("() => window.__firstFrameAt", timeout=TIMEOUT_MS)
            .json_value()
        )
        if n:  # the first call warms the browser and the server up
            times.append(round(at - clicked, 1))
        leave(pages[:2])
    return times


def capacity(base: str, cookies: list[str], pages: list[Page]) -> list[dict[str, Any]]:
    rows = []
    for size in SIZES:
        url = room_of(base, cookies, "sfu", size)
        try:
            for page in pages[:size]:
                join(page, url)
            wait_decoding(pages[:size])
            before = [page.evaluate(FRAMES_JS) for page in pages[:size]]
            time.sleep(10)
            after = [page.evaluate(FRAMES_JS) for page in pages[:size]]
            fps = [
                (a[id_] - b.get(id_, 0)) / 10
                for b, a in zip(before, after, strict=True)
                for id_ in a
            ]
            rows.append(
                {
                    "people": size,
                    "min_fps": round(min(fps), 1),
                    "median_fps": round(statistics.median(fps), 1),
                }
            )
        except Exception as error:  # a size the machine could not hold
            rows.append({"people": size, "failed": str(error)[:200]})
        leave(pages[:size])
        print(f"  room of {size}: {rows[-1]}", flush=True)
        if "failed" in rows[-1] or rows[-1]["min_fps"] < MIN_FPS:
            break
    return rows


def measure() -> dict[str, Any]:
    ip("link", "add", "veth0", "type", "veth", "peer", "name", "veth1")
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"confab-bench-sfu-{secrets.token_hex(4)}"
    janus = start_janus(work / "janus", api_secret=secrets.token_hex(16), ice_ip=JANUS_IP)
    try:
        ip("addr", "add", f"{JANUS_IP}/24", "dev", "veth0")
        ip("link", "set", "veth0", "up")
        ip("link", "set", "veth1", "up")
        settings = {
            "JANUS_URLS": janus.url,
            "JANUS_API_SECRET": janus.api_secret,
            "JOINS_PER_MINUTE": "1000",
        }
        with daphne(work / "server", **settings) as server, sync_playwright() as playwright:
            cookies = make_accounts(server.url, max(SIZES))
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            pages = open_pages(browser, cookies)
            result: dict[str, Any] = {}
            for media in ("mesh", "sfu"):
                result[f"{media}_room_of_5"] = upload(server.url, cookies, pages, media, janus.pid)
                print(f"  {media}, room of 5: {result[f'{media}_room_of_5']}", flush=True)
            for media in ("mesh", "sfu"):
                runs = first_frame(server.url, cookies, pages, media)
                result[f"{media}_join_to_frame_ms"] = {
                    "median": statistics.median(runs),
                    "runs": runs,
                }
                print(f"  {media}, join to first frame: {runs}", flush=True)
            result["capacity"] = capacity(server.url, cookies, pages)
            browser.close()
        return result
    finally:
        janus.stop()
        ip("link", "del", "veth0")


def main() -> None:
    if not loopback_only():
        sys.exit(
            "run inside a loopback-only network namespace: "
            "unshare --net sh -c 'ip link set lo up && exec .venv/bin/python -m bench.sfu'"
        )
    os.chdir(ROOT)
    result = {"date": machine()["date"], **measure()}
    store_result("sfu", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
