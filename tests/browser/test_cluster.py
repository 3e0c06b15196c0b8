"""Two browsers behind nginx, on two different daphne workers, in one call.

The cluster is deploy/run-cluster.sh itself, started inside the test's loopback-only
namespace: a private redis-server (the channel layer between the workers), two daphne
workers (WORKER_ID 1 and 2) and nginx rendered from deploy/nginx.conf (least_conn). What
this proves that the single-server tests cannot: the pages, signaling and the call work
when the two people's sockets live in different processes and every message between them
crosses Redis, and nginx spreads the sockets (and proxies the websocket upgrade) as
deployed.

The database is the script's default, one SQLite file shared by both workers, not a
private PostgreSQL. PostgreSQL would have to be initialised (initdb in a temporary
directory, run as the postgres user through runuser) and started for every run, seconds of
work and a second way for the test to fail, to serve a two-person call that writes a
handful of rows (sign-up, room, two presence rows, sessions). The settings open SQLite
transactions with IMMEDIATE and wait up to 20 s for its lock, so the workers' few writes
queue instead of failing with "database is locked". Concurrency under real load is
PostgreSQL's job, and tests/cluster runs the workers on PostgreSQL (make test-postgres).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Browsers
from tests.browser.servers import Cluster, Crowd, cluster, crowd
from tests.servers_common import wait_until

pytestmark = pytest.mark.browser


def finished_websockets(access_log: Path) -> list[tuple[str, str]]:
    """(path, upstream port) of the websocket requests nginx has logged: it logs one when
    the connection ends (101 once upgraded, 499 when the page left before the upgrade)."""
    if not access_log.exists():
        return []
    line = r'"GET (/ws/\S*) HTTP/1\.1" \d{3} \d+ upstream=127\.0\.0\.1:(\d+) '
    return re.findall(line, access_log.read_text())


def test_two_browsers_through_nginx_land_on_different_workers_and_see_each_other(
    browsers: Browsers, tmp_path: Path
) -> None:
    with cluster(tmp_path / "cluster", workers=2) as running:
        access_log = running.logs / "nginx-access.log"
        with crowd(browsers, running.url) as people:
            workers = call_across_workers(people, running, access_log)

        # Once the pages are closed nginx logs their call sockets: one to each worker's port.
        def calls_logged() -> list[tuple[str, str]]:
            return [entry for entry in finished_websockets(access_log) if "/rooms/" in entry[0]]

        wait_until(lambda: len(calls_logged()) == 2, 15, "nginx to log both call sockets")
        ports = {int(port) for _, port in calls_logged()}
        assert ports == set(running.worker_ports), (calls_logged(), running.worker_ports)
        assert workers == {"1", "2"}


def wait_for_lobby_sockets(running: Cluster, access_log: Path) -> None:
    """least_conn sends a new connection to the worker holding the fewest. Once nginx has
    let go of every lobby socket that reached a worker (the workers' access logs say which
    did; nginx logs a socket when it lets go), the call sockets are the only ones open, so
    the next one goes to the worker holding fewer of them."""

    def lobby_sockets_done() -> bool:
        reached = sum(
            log.read_text().count('"WSCONNECTING /ws/lobby/"')
            for log in running.logs.glob("worker-*-access.log")
        )
        finished = [path for path, _ in finished_websockets(access_log) if path == "/ws/lobby/"]
        return reached == len(finished)

    wait_until(lobby_sockets_done, 15, "nginx to let go of the lobby sockets")


def call_across_workers(people: Crowd, running: Cluster, access_log: Path) -> set[str]:
    """Alice and Bob in one call through nginx; returns the workers holding their sockets."""
    alice, bob = people.person("Alice"), people.person("Bob")
    # Bob leaves the lobby (its live socket) before anyone joins.
    bob.page.goto("about:blank")

    room_url = alice.create_room("Across workers")
    assert room_url.startswith(running.url + "/rooms/"), room_url
    alice_worker = alice.page.evaluate("window.confab.diagnostics.worker")

    wait_for_lobby_sockets(running, access_log)
    response = bob.page.goto(room_url)
    assert response is not None
    bob.wait_joined()
    bob_worker = bob.page.evaluate("window.confab.diagnostics.worker")

    assert {alice_worker, bob_worker} == {"1", "2"}, (alice_worker, bob_worker)
    # The page itself came through nginx from a worker (middleware and nginx headers).
    assert response.headers["x-confab-worker"] in {"1", "2"}, response.headers
    assert re.fullmatch(r"127\.0\.0\.1:\d+", response.headers["x-confab-upstream"])
    calls = [url for url in people.websockets if "/ws/rooms/" in url]
    assert len(calls) == 2, people.websockets
    assert all(url.startswith(running.url.replace("http", "ws", 1)) for url in calls), calls

    # Signaling crosses Redis between the workers; media flows both ways.
    alice.wait_for_media(1)
    bob.wait_for_media(1)
    for me, other in ((alice, bob), (bob, alice)):
        [stats] = me.stats()
        assert stats["state"] == "connected", stats
        assert stats["framesDecoded"] > 0, stats
        assert stats["audioPackets"] > 0, stats
        expect(me.tile(other)).to_be_visible()

    # The connection details name the worker that holds this page's socket.
    bob.page.get_by_role("button", name="Connection details").click()
    expect(bob.page.locator("#diag-worker")).to_have_text(bob_worker)
    return {alice_worker, bob_worker}
