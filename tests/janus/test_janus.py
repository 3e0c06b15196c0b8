"""signaling/janus.py against a real Janus 1.1.2 (tests/janus_server.py), no browser.

What needs media (publish with a real offer, webrtcup, simulcast, a moderated stream going
quiet) is proven in the browser suite; here: the protocol, the VideoRoom requests and
their error codes, keepalives, and what a worker sees when Janus dies."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from signaling import janus as sfu
from signaling.janus import Janus, JanusError, JanusUnavailableError
from tests.janus.conftest import SESSION_TIMEOUT
from tests.janus_server import JanusProcess, start_janus

ROOM = 4242
SECRET = "room-secret"


class Heard:
    """What a handle's callbacks were told, and a way to wait for one of them."""

    def __init__(self, handle: sfu.Handle) -> None:
        self.events: list[dict[str, Any]] = []
        self.core: list[tuple[str, dict[str, Any]]] = []
        self._changed = asyncio.Event()
        handle.on_event = self._on_event
        handle.on_janus = self._on_janus

    async def _on_event(self, data: dict[str, Any], jsep: dict[str, Any] | None) -> None:
        self.events.append(data)
        self._changed.set()

    def _on_janus(self, kind: str, message: dict[str, Any]) -> None:  # a plain function works too
        self.core.append((kind, message))
        self._changed.set()

    async def event(self, matches: Callable[[dict[str, Any]], bool], within: float = 3) -> Any:
        async with asyncio.timeout(within):
            while True:
                for data in self.events:
                    if matches(data):
                        return data
                self._changed.clear()
                await self._changed.wait()

    async def core_event(self, kind: str, within: float = 3) -> dict[str, Any]:
        async with asyncio.timeout(within):
            while True:
                for heard, message in self.core:
                    if heard == kind:
                        return message
                self._changed.clear()
                await self._changed.wait()


async def participant(janus: Janus, display: str) -> tuple[sfu.Session, sfu.Handle, Heard]:
    session = await janus.create_session()
    handle = await session.attach(sfu.VIDEOROOM)
    return session, handle, Heard(handle)


async def make_room(janus: Janus, **options: Any) -> sfu.Handle:
    control = await janus.control()
    assert await sfu.create_room(control, ROOM, secret=SECRET, publishers=30, **options)
    return control


async def test_info_answers_for_healthz(janus_process: JanusProcess) -> None:
    info = await sfu.info(janus_process.url, janus_process.api_secret)
    assert info["janus"] == "server_info"
    assert info["version_string"] == "1.1.2"
    assert list(info["plugins"]) == ["janus.plugin.videoroom"]
    assert list(info["transports"]) == ["janus.transport.websockets"]
    assert info["session-timeout"] == SESSION_TIMEOUT
    assert info["api_secret"] is True
    # Janus answers `info` whatever the secret: it says Janus is up, not that ours is right.
    assert (await sfu.info(janus_process.url, "wrong"))["janus"] == "server_info"
    await Janus.close_all()


async def test_connection_is_shared_and_replaced_once_closed(
    janus: Janus, janus_process: JanusProcess
) -> None:
    assert await Janus.for_url(janus_process.url, janus_process.api_secret) is janus
    assert await janus.control() is await janus.control()
    await janus.close()
    assert janus.closed
    again = await Janus.for_url(janus_process.url, janus_process.api_secret)
    assert again is not janus
    assert not again.closed
    with pytest.raises(JanusUnavailableError) as failure:
        await janus.create_session()
    assert failure.value.code == sfu.UNAVAILABLE


async def test_wrong_api_secret_is_refused(janus_process: JanusProcess) -> None:
    janus = await Janus.for_url(janus_process.url, "not-the-secret")
    with pytest.raises(JanusError) as failure:
        await janus.create_session()
    assert failure.value.code == sfu.UNAUTHORIZED == 403
    assert not isinstance(failure.value, JanusUnavailableError)
    await Janus.close_all()


async def test_create_room_is_idempotent_and_listed(janus: Janus) -> None:
    control = await janus.control()
    assert await sfu.create_room(
        control, ROOM, secret=SECRET, publishers=30, description="Team", bitrate=512_000
    )
    # A second worker creating the same room at the same time: 427, taken as success.
    assert not await sfu.create_room(control, ROOM, secret=SECRET, publishers=30)
    assert await sfu.room_exists(control, ROOM)
    assert not await sfu.room_exists(control, ROOM + 1)
    [room] = await sfu.list_rooms(control)
    assert (room["room"], room["description"], room["max_publishers"]) == (ROOM, "Team", 30)
    assert (room["videocodec"], room["audiocodec"], room["bitrate"]) == ("vp8", "opus", 512_000)
    assert room["num_participants"] == 0
    # Only the room secret lets anyone manage it.
    with pytest.raises(JanusError) as failure:
        await sfu.destroy_room(control, ROOM, "wrong")
    assert failure.value.code == sfu.VIDEOROOM_UNAUTHORIZED == 433


async def test_keepalive_outlives_the_session_timeout(janus: Janus) -> None:
    kept = await janus.create_session(keepalive_interval=2)
    forgotten = await janus.create_session(keepalive_interval=3600)
    handle = await forgotten.attach()
    heard = Heard(handle)
    closes: list[tuple[str, str]] = []
    closed = asyncio.Event()

    def on_close(kind: str, reason: str) -> None:
        closes.append((kind, reason))
        closed.set()

    forgotten.on_close = on_close

    await asyncio.sleep(SESSION_TIMEOUT + 4)  # 12 s; Janus's watchdog looks every 2 s

    assert not kept.closed
    await kept.attach()  # Janus still knows it
    async with asyncio.timeout(5):  # the other one it has timed out (by now, or nearly)
        await closed.wait()
    assert forgotten.closed
    # The handle hears its end once: Janus sends either the session's `timeout` first or
    # the handle's `detached` first (both orders seen with 1.1.2).
    await asyncio.sleep(0.1)  # let the handle's dispatcher deliver
    assert [kind for kind, _ in heard.core] in (["timeout"], ["detached"])
    assert handle.detached
    assert [kind for kind, _ in closes] == ["timeout"]
    with pytest.raises(JanusError) as failure:
        await forgotten.attach()
    assert failure.value.code == sfu.SESSION_NOT_FOUND == 458
    await kept.destroy()
    await kept.destroy()  # idempotent


async def test_publishers_see_each_other(janus: Janus) -> None:
    control = await make_room(janus, notify_joining=True)
    _, alice, alice_heard = await participant(janus, "Alice")
    joined_alice = await sfu.join_publisher(alice, ROOM, display="Alice")
    assert (joined_alice.publishers, joined_alice.attendees) == ([], [])
    assert joined_alice.private_id

    _, bob, bob_heard = await participant(janus, "Bob")
    joined_bob = await sfu.join_publisher(bob, ROOM, display="Bob", participant_id=77)
    assert joined_bob.id == 77
    # Only active publishers are in `publishers`; with notify_joining the others are
    # `attendees`, and their joins are announced.
    assert joined_bob.publishers == []
    assert joined_bob.attendees == [{"id": joined_alice.id, "display": "Alice"}]
    joining = await alice_heard.event(lambda d: "joining" in d)
    assert joining["joining"] == {"id": 77, "display": "Bob"}
    assert joining["room"] == ROOM

    participants = await sfu.list_participants(control, ROOM)
    assert sorted((p["display"], p["publisher"]) for p in participants) == [
        ("Alice", False),
        ("Bob", False),
    ]
    _, other, _ = await participant(janus, "Other")
    with pytest.raises(JanusError) as failure:  # the id is taken
        await sfu.join_publisher(other, ROOM, display="Other", participant_id=77)
    assert failure.value.code == sfu.ID_EXISTS == 436

    # Bob leaves: Alice hears it.
    await sfu.leave(bob)
    leaving = await alice_heard.event(lambda d: "leaving" in d)
    assert leaving["leaving"] == 77
    assert bob_heard.events == []


async def test_subscribing_needs_a_publishing_feed(janus: Janus) -> None:
    await make_room(janus)
    session, alice, _ = await participant(janus, "Alice")
    joined = await sfu.join_publisher(alice, ROOM, display="Alice")
    subscriber = await session.attach()
    with pytest.raises(JanusError) as failure:  # joined, but not publishing
        await sfu.join_subscriber(subscriber, ROOM, [{"feed": joined.id}])
    assert failure.value.code == sfu.NO_SUCH_FEED == 428
    with pytest.raises(JanusError) as failure:  # a subscription needs at least one stream
        await sfu.join_subscriber(subscriber, ROOM, [])
    assert failure.value.code == sfu.VIDEOROOM_MISSING_ELEMENT == 429


async def test_kick(janus: Janus) -> None:
    control = await make_room(janus)
    _, alice, alice_heard = await participant(janus, "Alice")
    await sfu.join_publisher(alice, ROOM, display="Alice")
    _, bob, bob_heard = await participant(janus, "Bob")
    bob_id = (await sfu.join_publisher(bob, ROOM, display="Bob")).id

    assert await sfu.kick(control, ROOM, SECRET, bob_id)
    told = await bob_heard.event(lambda d: "leaving" in d)
    assert told == {"videoroom": "event", "room": ROOM, "leaving": "ok", "reason": "kicked"}
    assert (await alice_heard.event(lambda d: "kicked" in d))["kicked"] == bob_id
    assert [p["display"] for p in await sfu.list_participants(control, ROOM)] == ["Alice"]
    assert not await sfu.kick(control, ROOM, SECRET, bob_id)  # no longer there: 428
    # The kicked handle is done for: joining again needs a new handle.
    with pytest.raises(JanusError) as failure:
        await sfu.join_publisher(bob, ROOM, display="Bob")
    assert failure.value.code == sfu.VIDEOROOM_ALREADY_JOINED == 425


async def test_moderate_without_a_published_stream(janus: Janus) -> None:
    """moderate names a stream by its mid; someone who has not published has none, so
    Janus says 428 "No such stream" (the browser suite mutes a real stream)."""
    control = await make_room(janus)
    _, bob, _ = await participant(janus, "Bob")
    bob_id = (await sfu.join_publisher(bob, ROOM, display="Bob")).id
    with pytest.raises(JanusError) as failure:
        await sfu.moderate(control, ROOM, SECRET, bob_id, "0", mute=True)
    assert (failure.value.code, failure.value.reason) == (sfu.NO_SUCH_FEED, "No such stream 0")
    with pytest.raises(JanusError) as failure:
        await sfu.moderate(control, ROOM, "wrong", bob_id, "0", mute=True)
    assert failure.value.code == sfu.VIDEOROOM_UNAUTHORIZED


async def test_publish_with_a_garbage_offer(janus: Janus) -> None:
    await make_room(janus)
    _, bob, _ = await participant(janus, "Bob")
    await sfu.join_publisher(bob, ROOM, display="Bob")
    for sdp, reason in (
        ("garbage", "Invalid SDP (doesn't start with v=)"),
        ("v=0\r\n", "Missing mandatory lines (o=, s= or m=)"),
    ):
        with pytest.raises(JanusError) as failure:
            await sfu.publish(bob, {"type": "offer", "sdp": sdp})
        # A core error (the JSEP never reaches the plugin), not a VideoRoom one.
        assert (failure.value.code, failure.value.reason) == (sfu.JSEP_INVALID_SDP, reason)
    assert not await sfu.unpublish(bob)  # 435: was not publishing


async def test_destroy_room(janus: Janus) -> None:
    control = await make_room(janus)
    _, alice, alice_heard = await participant(janus, "Alice")
    await sfu.join_publisher(alice, ROOM, display="Alice")

    assert await sfu.destroy_room(control, ROOM, SECRET)
    assert (await alice_heard.event(lambda d: d.get("videoroom") == "destroyed"))["room"] == ROOM
    with pytest.raises(JanusError) as failure:
        await sfu.list_participants(control, ROOM)
    assert failure.value.code == sfu.NO_SUCH_ROOM == 426
    _, bob, _ = await participant(janus, "Bob")
    with pytest.raises(JanusError) as failure:
        await sfu.join_publisher(bob, ROOM, display="Bob")
    assert failure.value.code == sfu.NO_SUCH_ROOM
    assert not await sfu.destroy_room(control, ROOM, SECRET)  # idempotent


async def test_a_closed_connection_leaves_no_ghost(janus_process: JanusProcess) -> None:
    """Janus ends the sessions of a websocket that closes: a worker that dies takes its
    participants out of the rooms, and the others hear them leave."""
    watcher = await Janus.for_url(janus_process.url, janus_process.api_secret)
    await make_room(watcher, notify_joining=True)
    _, alice, alice_heard = await participant(watcher, "Alice")
    await sfu.join_publisher(alice, ROOM, display="Alice")

    worker = await Janus.connect(janus_process.url, janus_process.api_secret)
    _, bob, _ = await participant(worker, "Bob")
    bob_id = (await sfu.join_publisher(bob, ROOM, display="Bob")).id
    await worker.close()

    assert (await alice_heard.event(lambda d: "leaving" in d))["leaving"] == bob_id
    control = await watcher.control()
    assert [p["display"] for p in await sfu.list_participants(control, ROOM)] == ["Alice"]
    await Janus.close_all()


async def test_a_dead_janus_fails_requests_fast(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="signaling.janus")
    process = start_janus(tmp_path / "doomed", api_secret="s", session_timeout=SESSION_TIMEOUT)
    try:
        janus = await Janus.for_url(process.url, "s")
        session = await janus.create_session()
        handle = await session.attach()
        heard = Heard(handle)
        closes: list[str] = []
        session.on_close = lambda kind, reason: closes.append(kind)

        # A Janus that stops answering: our timeout, not a hang.
        assert await sfu.create_room(handle, ROOM, secret=SECRET, publishers=3)
        process.pause()
        with pytest.raises(JanusUnavailableError) as failure:
            await session.request({"janus": "keepalive"}, ack_is_final=True, request_timeout=0.5)
        assert failure.value.code == sfu.TIMEOUT
        join = {"request": "join", "ptype": "publisher", "room": ROOM, "display": "Late"}
        with pytest.raises(JanusUnavailableError) as failure:
            await handle.message(join, request_timeout=0.5)
        assert failure.value.code == sfu.TIMEOUT
        # Janus wakes up and answers both: the late `joined` is not news for on_event.
        process.resume()
        for _ in range(60):  # join is asynchronous: Janus's plugin thread takes it
            if await sfu.list_participants(handle, ROOM):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        assert heard.events == []
        dropped = [r.getMessage() for r in caplog.records if "late answer dropped" in r.message]
        assert any("'joined'" in message for message in dropped), dropped
        process.pause()

        # Killed while a request waits: it fails at once, and so does everything after.
        pending = asyncio.create_task(sfu.room_exists(handle, ROOM))
        await asyncio.sleep(0.2)
        assert not pending.done()
        killed = time.monotonic()
        process.kill()
        with pytest.raises(JanusUnavailableError) as failure:
            await pending
        assert failure.value.code == sfu.UNAVAILABLE
        assert time.monotonic() - killed < 2
        assert janus.closed
        assert (await heard.core_event("disconnected"))["janus"] == "disconnected"
        assert closes == ["disconnected"]

        started = time.monotonic()
        with pytest.raises(JanusUnavailableError):
            await handle.request({"request": "list"})
        with pytest.raises(JanusUnavailableError):
            await session.attach()
        with pytest.raises(JanusUnavailableError) as failure:  # reconnecting: refused
            await Janus.for_url(process.url, "s")
        assert failure.value.code == sfu.UNAVAILABLE
        with pytest.raises(JanusUnavailableError):
            await sfu.info(process.url, "s")
        assert time.monotonic() - started < 2
        await session.destroy()  # cleaning up after a dead Janus does not raise
        await handle.detach()
    finally:
        if process.running():
            process.kill()
        await Janus.close_all()


async def test_over_a_unix_socket(tmp_path: Path) -> None:
    """JANUS_URLS=ws+unix:///run/janus/janus.sock: the compose setup, where Janus shares
    the host's network and the workers reach its API only through a shared volume."""
    process = start_janus(tmp_path / "j", api_secret="s", unix_socket=True)
    try:
        assert process.url.startswith("ws+unix:///")
        assert (await sfu.info(process.url, "s"))["version_string"] == "1.1.2"
        janus = await Janus.for_url(process.url, "s")
        assert await sfu.create_room(await janus.control(), ROOM, secret=SECRET, publishers=3)
    finally:
        await Janus.close_all()
        process.stop()
