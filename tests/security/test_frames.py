"""Frames over the size limit, against a real daphne (config/daphne_limits.py).

daphne refuses a frame or a fragmented message of more than DAPHNE_MAX_FRAME bytes as soon
as the frame's header announces the length: `error bad_message` (`too_large`), a close with
1009, and none of the rest of the frame is read. A frame between the protocol's limit and
daphne's reaches parse(), which answers `bad_message` with the connection left open.

Only a real daphne shows this (the consumer tests drive the application directly, with no
websocket framing), so this module starts one of its own: SQLite, in-memory channel layer,
no Redis, as the browser suite's server (tests/servers_common.py).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import websockets
from autobahn.exception import Disconnected
from daphne.ws_protocol import WebSocketProtocol
from websockets.exceptions import ConnectionClosed

from config.daphne_limits import LimitedWebSocketProtocol
from tests.servers_common import Server, assert_no_server_errors, daphne

KiB = 1024
MAX_FRAME = 72 * KiB  # signaling.protocol.MAX_FRAME
DAPHNE_MAX_FRAME = 80 * KiB  # config.daphne_limits.DAPHNE_MAX_FRAME
TOO_LARGE = {
    "type": "error",
    "code": "bad_message",
    "detail": "too_large",
    "message": f"frame is larger than {MAX_FRAME} bytes",
}
TIMEOUT = 10.0

# Two people with a session each and a room, made in the server's own database. Printed as
# JSON for the test to read.
SETUP = """
import json
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from rooms import services
from rooms.models import Profile

cookie = settings.SESSION_COOKIE_NAME
cookies = {}
for name in ("alice", "bob"):
    user = User.objects.create_user(username=name)
    Profile.objects.create(user=user, display_name=name.title())
    client = Client()
    client.force_login(user)
    cookies[name] = cookie + "=" + client.cookies[cookie].value
    if name == "alice":
        room = services.create_room(owner=user, name="Frames")
print(json.dumps({"cookies": cookies, "slug": room.slug}))
"""


@dataclass
class Running:
    server: Server
    cookies: dict[str, str]
    slug: str

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def log(self) -> Path:
        return self.server.log

    def rss_kib(self) -> int:
        """The server's resident memory now (VmRSS, in KiB)."""
        for line in Path(f"/proc/{self.server.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS in /proc/<pid>/status")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """One daphne for the module, with two people and a room made in its database."""
    with daphne(tmp_path_factory.mktemp("frames")) as running:
        setup = json.loads(running.manage("shell", "-c", SETUP).strip().splitlines()[-1])
        yield Running(running, setup["cookies"], setup["slug"])


class Peer:
    def __init__(self, ws: Any, welcome: dict[str, Any]) -> None:
        self.ws = ws
        self.welcome = welcome

    async def receive(self) -> dict[str, Any]:
        return dict(json.loads(await asyncio.wait_for(self.ws.recv(), TIMEOUT)))

    async def receive_type(self, kind: str) -> dict[str, Any]:
        async with asyncio.timeout(TIMEOUT):
            while True:
                message = await self.receive()
                if message["type"] == kind:
                    return message

    async def ping(self, ident: str) -> None:
        """A round trip: the connection is open and the server still answers it."""
        await self.ws.send(json.dumps({"type": "ping", "id": ident}))
        assert (await self.receive_type("pong"))["id"] == ident


@asynccontextmanager
async def joined(server: Running, who: str = "alice", resume: str = "") -> AsyncIterator[Peer]:
    query = f"?resume={resume}" if resume else ""
    async with websockets.connect(
        f"ws://127.0.0.1:{server.port}/ws/rooms/{server.slug}/{query}",
        additional_headers={"Cookie": server.cookies[who]},
        origin=websockets.Origin("http://127.0.0.1"),
        open_timeout=TIMEOUT,
        close_timeout=TIMEOUT,
    ) as ws:
        welcome = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        assert welcome["type"] == "welcome", welcome
        yield Peer(ws, welcome)


@dataclass
class Refusal:
    seconds: float  # from starting to send to the end of the connection
    sent_whole: bool  # the client got the whole frame out (into the kernel, at least)


async def refused(peer: Peer, frame: str | list[str]) -> Refusal:
    """Send `frame` (a list is sent as one message in fragments); expect the too_large error,
    then the 1009 close.

    The send runs on its own: a frame the server does not read cannot finish sending."""
    started = time.monotonic()
    sending = asyncio.create_task(peer.ws.send(frame))
    sent_whole = False
    try:
        assert await peer.receive() == TOO_LARGE
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(peer.ws.recv(), TIMEOUT)
        seconds = time.monotonic() - started
        assert closed.value.rcvd is not None, "no close frame from the server"
        assert closed.value.rcvd.code == 1009
    finally:
        with suppress(ConnectionClosed):
            await asyncio.wait_for(sending, TIMEOUT)
            sent_whole = True
    return Refusal(seconds, sent_whole)


async def resume_and_leave(server: Running, before: Peer, who: str = "alice") -> None:
    """The refused socket's seat was held: the page gets it back, and the connection works.
    Leaving at the end keeps this person's count of seats in the room at zero."""
    async with joined(server, who, resume=before.welcome["resume_token"]) as again:
        assert again.welcome["resumed"] is True
        assert again.welcome["self"]["peer_id"] == before.welcome["self"]["peer_id"]
        await again.ping("after")
        await again.ws.send(json.dumps({"type": "leave"}))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(again.ws.recv(), TIMEOUT)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1000


async def test_a_frame_of_100_kb_is_refused_with_1009_and_the_seat_is_held(
    server: Running,
) -> None:
    async with joined(server) as alice:
        await refused(alice, "x" * 100_000)
    await resume_and_leave(server, alice)


async def test_a_frame_of_10_mb_is_refused_at_its_header_without_being_read(
    server: Running,
) -> None:
    async with joined(server) as alice:
        await alice.ping("warm")
        before = server.rss_kib()
        refusal = await refused(alice, "x" * 10_000_000)
        grown = server.rss_kib() - before
    # The server stops reading at the header: the client cannot get the 10 MB out (the
    # kernel buffers of a socket nobody reads hold a few MB at most), and the connection ends
    # when the server drops it, DROP_AFTER (1 s) after the refusal.
    assert not refusal.sent_whole, "the whole frame was sent: the server read it"
    assert refusal.seconds < 5, f"the refusal took {refusal.seconds:.2f} s"
    # Reading the frame would cost at least 10 MB (twice: its bytes and its text).
    assert grown < 2 * KiB, f"the server grew by {grown} KiB"
    print(f"\n10 MB frame: closed after {refusal.seconds:.2f} s, server RSS {grown:+d} KiB")
    await resume_and_leave(server, alice)


async def test_a_message_in_fragments_is_bounded_as_a_whole(server: Running) -> None:
    # Three fragments of 40 KiB: each is under the frame limit, the third takes the message
    # over it and is refused at its header.
    async with joined(server) as alice:
        await refused(alice, ["x" * (40 * KiB)] * 3)
    await resume_and_leave(server, alice)


async def test_daphne_counts_bytes_of_utf8_not_characters(server: Running) -> None:
    # 30,000 characters, 90,000 bytes: under MAX_FRAME in characters, over daphne's limit.
    async with joined(server) as alice:
        await refused(alice, "€" * 30_000)
    await resume_and_leave(server, alice)


async def test_frames_up_to_daphnes_limit_reach_the_protocol_and_the_socket_stays(
    server: Running,
) -> None:
    async with joined(server) as alice:
        for frame in (
            "x" * (MAX_FRAME + 1),
            "x" * DAPHNE_MAX_FRAME,  # exactly daphne's limit: read, and refused by parse()
            ["x" * (40 * KiB)] * 2,  # a message of two fragments, 80 KiB in all
        ):
            await alice.ws.send(frame)
            problem = await alice.receive()
            assert (problem["code"], problem["detail"]) == ("bad_message", "too_large")
            await alice.ping("still open")
        await alice.ws.send(json.dumps({"type": "chat", "body": "a normal message"}))
        assert (await alice.receive_type("chat"))["body"] == "a normal message"
        # One byte more than daphne's limit is refused by daphne.
        await refused(alice, "x" * (DAPHNE_MAX_FRAME + 1))
    await resume_and_leave(server, alice)


async def test_what_the_room_sends_while_a_refused_socket_closes_is_dropped_quietly(
    server: Running,
) -> None:
    # Between the refusal and the drop (DROP_AFTER, 1 s) the consumer still believes the
    # socket open. A chat from someone else in that time must not fail
    # it: the seat is held for resume, not given up as after a server error.
    async with joined(server, "bob") as bob, joined(server) as alice:
        sending = asyncio.create_task(alice.ws.send("x" * 1_000_000))
        assert await alice.receive() == TOO_LARGE
        await bob.ws.send(json.dumps({"type": "chat", "body": "while alice is refused"}))
        assert (await bob.receive_type("chat"))["body"] == "while alice is refused"
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(alice.ws.recv(), TIMEOUT)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1009
        with suppress(ConnectionClosed):
            await asyncio.wait_for(sending, TIMEOUT)
        await resume_and_leave(server, alice)
        # Bob saw alice leave only when she said so: her seat was held, then resumed.
        await bob.ws.send(json.dumps({"type": "leave"}))
        seen = []
        async with asyncio.timeout(TIMEOUT):
            with suppress(ConnectionClosed):
                while True:
                    seen.append(json.loads(await bob.ws.recv()))
        left = [(m["peer_id"], m["reason"]) for m in seen if m["type"] == "peer-left"]
        assert left == [(alice.welcome["self"]["peer_id"], "left")]
    # Nothing failed in the consumer (the whole module's refusals included).
    assert_no_server_errors(server.log)


@pytest.mark.parametrize("state", ["STATE_CLOSING", "STATE_CLOSED"])
def test_what_the_room_sends_while_the_client_closes_is_dropped_quietly(state: str) -> None:
    # The client's close frame makes the connection CLOSING at once; the consumer hears of
    # it only when daphne's disconnect arrives, and a peer joining in between is sent to a
    # connection autobahn no longer sends on. That window is one reactor turn wide (a
    # killed worker's sweep hit it in CI: "peer.joined failed ... Disconnected"), too narrow
    # to aim a real client at, so the protocol object is put in that state directly.
    closing = LimitedWebSocketProtocol()
    closing.failedByMe = False
    closing.client_addr = ("127.0.0.1", 50000)  # set by daphne when a client connects
    closing.state = getattr(closing, state)
    with pytest.raises(Disconnected):
        WebSocketProtocol.serverSend(closing, '{"type":"peer-joined"}')
    closing.serverSend(
        '{"type":"peer-joined"}'
    )  # no exception: the frame is lost, as to a dropped socket
