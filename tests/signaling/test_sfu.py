"""SFU rooms through a real Janus, at the protocol level (no browser, so no media: the
browser suite proves that). The consumer drives Janus for each seated person; admission
stays Confab's, and moderation reaches Janus."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from channels.db import database_sync_to_async
from django.test import override_settings

from rooms import services
from rooms.models import Room
from signaling import janus
from tests.janus.conftest import janus_process  # noqa: F401 - a fixture
from tests.janus_server import JanusProcess

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def sfu(janus_process: JanusProcess) -> AsyncIterator[JanusProcess]:  # noqa: F811
    with override_settings(
        JANUS_URLS=[janus_process.url], JANUS_API_SECRET=janus_process.api_secret
    ):
        yield janus_process
    await janus.Janus.close_all()


@pytest.fixture
async def big_room(alice, sfu) -> Room:
    return await database_sync_to_async(services.create_room)(
        owner=alice, name="All hands", media="sfu", capacity=30
    )


async def participants(process: JanusProcess, room: Room) -> list[str]:
    """Who Janus has in the room (their display is their peer id), or [] if no room."""
    await database_sync_to_async(room.refresh_from_db)()  # its Janus id comes at the first join
    connection = await janus.Janus.for_url(process.url, process.api_secret)
    handle = await connection.control()
    try:
        return sorted(p["display"] for p in await janus.list_participants(handle, room.sfu_room))
    except janus.JanusError as error:
        if error.code == janus.NO_SUCH_ROOM:
            return []
        raise


async def eventually(check, expected, timeout: float = 5.0):
    """Poll Janus until `check()` gives `expected` (Janus has no event for a listing)."""
    async with asyncio.timeout(timeout):
        while True:
            value = await check()
            if value == expected:
                return value
            await asyncio.sleep(0.05)


async def test_people_in_an_sfu_room_join_its_janus_room_and_leave_it(
    alice, bob, big_room, sfu, join
):
    a = await join(alice, big_room)
    assert a.welcome["room"]["media"] == "sfu"
    b = await join(bob, big_room)
    await eventually(lambda: participants(sfu, big_room), sorted([a.peer_id, b.peer_id]))
    await database_sync_to_async(big_room.refresh_from_db)()
    assert big_room.sfu_server == sfu.url
    assert big_room.sfu_secret not in str(a.welcome)  # the secret never reaches a page
    await b.send({"type": "leave"})
    await eventually(lambda: participants(sfu, big_room), [a.peer_id])


async def test_the_mesh_relay_is_refused_in_an_sfu_room_and_sfu_messages_in_a_mesh_room(
    alice, bob, room, big_room, sfu, join
):
    a = await join(alice, big_room)
    b = await join(bob, big_room)
    await b.send({"type": "offer", "to": a.peer_id, "sdp": "v=0"})
    assert (await b.receive_type("error"))["code"] == "bad_message"
    mesh = await join(alice, room)
    await mesh.send({"type": "sfu-publish", "sdp": "v=0"})
    assert (await mesh.receive_type("error"))["code"] == "bad_message"


async def test_an_offer_janus_cannot_use_is_a_server_error_and_the_seat_stays(
    alice, big_room, sfu, join
):
    a = await join(alice, big_room)
    await a.send({"type": "sfu-publish", "sdp": "not an sdp"})
    error = await a.receive_type("error")
    assert (error["code"], error["detail"], error["ref"]) == (
        "server_error",
        "unavailable",
        "sfu-publish",
    )
    await a.send({"type": "ping", "id": "1"})
    assert (await a.receive_type("pong"))["id"] == "1"


async def test_kick_removes_the_person_from_janus_too(alice, bob, big_room, sfu, join):
    a = await join(alice, big_room)
    b = await join(bob, big_room)
    await eventually(lambda: participants(sfu, big_room), sorted([a.peer_id, b.peer_id]))
    await a.send({"type": "kick", "peer_id": b.peer_id})
    assert (await b.receive_type("closing"))["refusal"] == "kicked"
    await eventually(lambda: participants(sfu, big_room), [a.peer_id])


async def test_ending_the_meeting_destroys_the_janus_room(alice, bob, big_room, sfu, join):
    a = await join(alice, big_room)
    await join(bob, big_room)
    await a.send({"type": "end"})
    assert (await a.receive_type("closing"))["refusal"] == "ended"
    await eventually(lambda: participants(sfu, big_room), [])


async def test_a_swept_ghost_leaves_janus(alice, bob, big_room, sfu, join):
    from datetime import timedelta

    from django.utils import timezone

    from rooms.models import Presence

    a = await join(alice, big_room)
    b = await join(bob, big_room)
    await eventually(lambda: participants(sfu, big_room), sorted([a.peer_id, b.peer_id]))
    # Bob's worker "dies": his row goes stale while his Janus session stays (this test's
    # process still holds it), and the sweeper frees the seat.
    stale = timezone.now() - timedelta(seconds=120)
    await database_sync_to_async(Presence.objects.filter(peer_id=b.peer_id).update)(last_seen=stale)
    await database_sync_to_async(services.sweep_stale_presences)()
    assert (await a.receive_type("peer-left"))["reason"] == "timeout"
    await eventually(lambda: participants(sfu, big_room), [a.peer_id])


async def test_healthz_reports_each_janus_without_deciding_the_status(sfu):
    from django.test import AsyncClient

    dead = "ws://127.0.0.1:9/"
    with override_settings(JANUS_URLS=[sfu.url, dead]):
        response = await AsyncClient().get("/healthz")
    body = response.json()
    assert response.status_code == 200
    assert body["sfu"][sfu.url] == "ok"
    assert body["sfu"][dead].startswith("failed")


async def test_when_a_janus_dies_its_rooms_move_to_another_and_the_pages_publish_again(
    alice, bob, tmp_path, join
):
    import secrets

    from tests.janus_server import start_janus

    secret = secrets.token_hex(8)
    first = start_janus(tmp_path / "first", api_secret=secret)
    second = start_janus(tmp_path / "second", api_secret=secret)
    try:
        with override_settings(JANUS_URLS=[first.url, second.url], JANUS_API_SECRET=secret):
            room = await database_sync_to_async(services.create_room)(
                owner=alice, name="Failover", media="sfu", capacity=10
            )
            a = await join(alice, room)
            b = await join(bob, room)
            await eventually(lambda: participants(first, room), sorted([a.peer_id, b.peer_id]))
            first.kill()
            for peer in (a, b):
                restart = await peer.receive_type("sfu-restart", timeout=15)
                assert restart["reason"] == "janus_lost"
            await database_sync_to_async(room.refresh_from_db)()
            assert room.sfu_server == second.url
            await eventually(lambda: participants(second, room), sorted([a.peer_id, b.peer_id]))
            await b.send({"type": "ping", "id": "still"})
            assert (await b.receive_type("pong"))["id"] == "still"
            for peer in (a, b):
                await peer.send({"type": "leave"})
                await peer.receive_type("__closed__")
    finally:
        await janus.Janus.close_all()
        first.stop()
        second.stop()
