"""SFU rooms in real browsers through a real Janus (docs/protocol.md, "SFU rooms").

Janus runs inside the test's network namespace like coturn and daphne. It skips loopback
interfaces when it gathers ICE candidates, so the module adds a veth pair to the namespace
(10.99.0.1; it never leaves the namespace) and tells Janus to offer that address; the
browsers reach it there. The module removes the pair when it is done, so the other browser
tests see the loopback-only namespace they expect.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import OUTPUT, Person, wait_for_async
from tests.browser.servers import crowd
from tests.janus_server import JanusProcess, start_janus
from tests.servers_common import daphne

pytestmark = pytest.mark.browser

JANUS_IP = "10.99.0.1"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture(scope="module")
def veth(browser: Browser) -> Iterator[str]:
    # `browser` first: its session server fails the run outside the loopback namespace.
    ip("link", "add", "veth0", "type", "veth", "peer", "name", "veth1")
    try:
        ip("addr", "add", f"{JANUS_IP}/24", "dev", "veth0")
        ip("link", "set", "veth0", "up")
        ip("link", "set", "veth1", "up")
        yield JANUS_IP
    finally:
        ip("link", "del", "veth0")


@pytest.fixture(scope="module")
def janus(veth: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JanusProcess]:
    process = start_janus(
        tmp_path_factory.mktemp("janus"), api_secret=secrets.token_hex(16), ice_ip=veth
    )
    try:
        yield process
    finally:
        process.stop()


def create_sfu_room(who: Person, name: str, capacity: int = 30) -> str:
    page = who.page
    page.goto(who.url("/"))
    page.fill("#id_name", name)
    page.select_option("#id_media_path", "sfu")
    page.fill("#id_capacity", str(capacity))
    page.get_by_role("button", name="Create room").click()
    who.wait_joined()
    return page.url


RECEIVED_JS = """async () => {
  const out = {kind: window.confab.transportKind, connections: window.confab.connections().length,
               states: window.confab.connections().map((pc) => pc.connectionState), from: {}};
  for (const id of window.confab.peers.keys()) out.from[id] = await window.confab.receivedFrom(id);
  return out;
}"""


def received(who: Person) -> dict[str, Any]:
    return dict(who.page.evaluate(RECEIVED_JS))


def wait_for_everyone(who: Person, others: list[Person], timeout: float = 30_000) -> None:
    """Two connections, both connected, and video frames and audio from each of `others`."""
    ids = [other.peer_id() for other in others]
    try:
        wait_for_async(
            who.page,
            f"""async (ids) => {{
              const r = await ({RECEIVED_JS})();
              return r.connections === 2 && r.states.every((s) => s === "connected")
                && ids.every((id) => r.from[id] && r.from[id].framesDecoded > 0
                                     && r.from[id].audioPackets > 0);
            }}""",
            ids,
            timeout=timeout,
        )
    except Exception as error:
        raise AssertionError(f"{who.name}: not receiving everyone: {received(who)}") from error


def test_five_people_in_an_sfu_room_have_two_connections_each_and_receive_all_four_others(
    browser: Browser, janus: JanusProcess, tmp_path: Path
) -> None:
    settings = {"JANUS_URLS": janus.url, "JANUS_API_SECRET": janus.api_secret}
    with daphne(tmp_path, **settings) as server, crowd(browser, server.url) as people:
        names = ["Alice", "Bob", "Charlie", "Dana", "Erin"]
        everyone = [people.person(name) for name in names]
        room_url = create_sfu_room(everyone[0], "All hands")
        for who in everyone[1:]:
            who.join(room_url)
        for who in everyone:
            wait_for_everyone(who, [other for other in everyone if other is not who])
            state = received(who)
            assert state["kind"] == "sfu"
            assert state["connections"] == 2, state
        for who in everyone:
            expect(who.page.locator(".tile:not(.local)")).to_have_count(4)
        OUTPUT.mkdir(exist_ok=True)
        everyone[0].page.screenshot(path=str(OUTPUT / "sfu-five.png"))
