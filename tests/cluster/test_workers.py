"""Several daphne workers sharing Redis and PostgreSQL behave as one server."""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings
from websockets.exceptions import ConnectionClosed

from rooms import services
from rooms.models import ChatMessage, Presence
from tests.cluster.conftest import connect, join
from tests.conftest import make_user, session_cookie

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]


@sync_to_async
def cookie_for(user, grant=None):
    return session_cookie(user, grant)


# Confab ships the pub/sub layer; the core layer is a setting (CHANNEL_LAYER=core), so it
# must carry a call across workers as well.
@pytest.mark.parametrize("layer", ["pubsub", "core"])
async def test_people_on_different_workers_share_a_call(alice, bob, room, start_workers, layer):
    one, two = await sync_to_async(start_workers)(2, CHANNEL_LAYER=layer)
    a = await join(one, room.slug, await cookie_for(alice))
    b = await join(two, room.slug, await cookie_for(bob))
    assert (a.welcome["worker"], b.welcome["worker"]) == ("w1", "w2")
    assert [p["name"] for p in b.welcome["peers"]] == ["Alice"]
    assert (await a.receive_type("peer-joined"))["peer"]["peer_id"] == b.peer_id

    await b.send({"type": "offer", "to": a.peer_id, "sdp": "v=0 across workers"})
    assert (await a.receive_type("offer"))["sdp"] == "v=0 across workers"
    await a.send({"type": "answer", "to": b.peer_id, "sdp": "v=0 back"})
    assert (await b.receive_type("answer"))["from"] == a.peer_id

    await a.send({"type": "chat", "body": "hello from w1"})
    assert (await b.receive_type("chat"))["body"] == "hello from w1"

    await b.send({"type": "leave"})
    assert (await a.receive_type("peer-left")) == {
        "type": "peer-left",
        "peer_id": b.peer_id,
        "reason": "left",
    }
    await a.ws.close()


async def test_thirty_concurrent_joins_over_two_workers_admit_exactly_the_capacity(
    room, start_workers
):
    workers = await sync_to_async(start_workers)(2)
    users = await sync_to_async(lambda: [make_user(f"p{n}", f"P{n}") for n in range(30)])()
    cookies = [await cookie_for(user) for user in users]
    sockets = await asyncio.gather(
        *(
            connect(workers[n % 2], f"/ws/rooms/{room.slug}/", cookie)
            for n, cookie in enumerate(cookies)
        )
    )

    async def outcome(ws):
        try:
            first = json.loads(await asyncio.wait_for(ws.recv(), 15))
            # A refusal comes as a `closing` message with its code, then the close.
            return first["code"] if first["type"] == "closing" else first["type"]
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None

    outcomes = await asyncio.gather(*(outcome(ws) for ws in sockets))
    assert sorted(outcomes, key=str).count("welcome") == 4
    assert outcomes.count(4409) == 26
    assert await sync_to_async(Presence.objects.filter(room=room).count)() == 4
    await asyncio.gather(*(ws.close() for ws in sockets))


async def test_a_killed_worker_s_people_are_swept_and_their_seats_freed(
    alice, bob, charlie, start_workers
):
    pair = await sync_to_async(services.create_room)(owner=alice, name="Pair", capacity=2)
    one, two = await sync_to_async(start_workers)(2)
    a = await join(one, pair.slug, await cookie_for(alice))
    b = await join(two, pair.slug, await cookie_for(bob))
    lobby = await connect(one, "/ws/lobby/", await cookie_for(charlie))
    await a.receive_type("peer-joined")

    two.kill()  # SIGKILL: no disconnect handler runs on w2
    # Bound: PRESENCE_TIMEOUT (3 s) plus one sweep round (1 s), with slack for a busy machine.
    left = await a.receive_type("peer-left", timeout=15)
    assert left == {"type": "peer-left", "peer_id": b.peer_id, "reason": "timeout"}
    async with asyncio.timeout(10):
        while True:
            update = json.loads(await lobby.recv())
            if update["room"]["slug"] == pair.slug and update["room"]["occupancy"] == 1:
                break
    assert update["room"]["names"] == ["Alice"]

    c = await join(one, pair.slug, await cookie_for(charlie))
    assert [p["name"] for p in c.welcome["peers"]] == ["Alice"]
    for ws in (a.ws, c.ws, lobby):
        await ws.close()


# channels-redis logs its pub/sub reader losing Redis as an ERROR with a traceback; the
# tests that stop Redis provoke exactly that (docs/deployment.md: what an outage logs).
REDIS_LOST = "ERROR channels_redis.pubsub: Unexpected exception in receive task"


async def test_healthz_names_the_channel_layer_when_redis_is_down(start_workers, redis_server):
    (one,) = await sync_to_async(start_workers)(1)
    one.allow_errors(REDIS_LOST)
    assert await sync_to_async(one.healthz)() == (
        200,
        {"status": "ok", "checks": {"database": "ok", "channel_layer": "ok"}},
    )
    await sync_to_async(redis_server.stop)()
    status, body = await sync_to_async(one.healthz)()
    assert status == 503
    assert body["failing"] == ["channel_layer"]
    assert body["checks"]["database"] == "ok"
    await sync_to_async(redis_server.start)()
    await sync_to_async(one.healthz)()


async def test_a_redis_restart_loses_no_acknowledged_chat_and_calls_recover(
    alice, bob, room, start_workers, redis_server
):
    one, two = await sync_to_async(start_workers)(2)
    for worker in (one, two):
        worker.allow_errors(REDIS_LOST)
    a = await join(one, room.slug, await cookie_for(alice))
    b = await join(two, room.slug, await cookie_for(bob))
    await a.receive_type("peer-joined")
    acknowledged = []
    await a.send({"type": "chat", "body": "before the restart"})
    acknowledged.append((await a.receive_type("chat"))["id"])
    await b.receive_type("chat")

    await sync_to_async(redis_server.stop)()
    # While Redis is away a chat is stored, cannot be delivered, is taken back and said
    # to have failed; the socket stays (docs/protocol.md, "error").
    await a.send({"type": "chat", "body": "while Redis is down"})
    failed = await a.receive_type("error", timeout=20)
    assert (failed["code"], failed["detail"], failed["ref"]) == (
        "server_error",
        "unavailable",
        "chat",
    )
    bodies = await sync_to_async(lambda: list(ChatMessage.objects.values_list("body", flat=True)))()
    assert "while Redis is down" not in bodies
    await sync_to_async(redis_server.start)()

    # The websocket side recovers without a worker restart: relay and chat cross workers again.
    async def relay_works() -> bool:
        await b.send({"type": "candidate", "to": a.peer_id, "candidate": None})
        try:
            await a.receive_type("candidate", timeout=1)
        except TimeoutError:
            return False
        return True

    async with asyncio.timeout(30):
        while not await relay_works():
            pass
    await a.send({"type": "chat", "body": "after the restart"})
    acknowledged.append((await a.receive_type("chat"))["id"])
    assert (await b.receive_type("chat"))["body"] == "after the restart"
    stored = await sync_to_async(lambda: list(ChatMessage.objects.values_list("id", flat=True)))()
    assert set(acknowledged) <= set(stored)
    await a.ws.close()
    await b.ws.close()


async def test_a_restarted_worker_s_people_resume_their_seats_on_another(
    alice, bob, room, start_workers
):
    one, two = await sync_to_async(start_workers)(2)
    a = await join(one, room.slug, await cookie_for(alice))
    b = await join(two, room.slug, await cookie_for(bob))
    await a.receive_type("peer-joined")
    two.process.terminate()  # SIGTERM: daphne cancels its connections; seats are held
    await sync_to_async(two.process.wait)(10)
    seat = await sync_to_async(Presence.objects.get)(user=bob)
    assert seat.detached_at is not None

    ws = await connect(
        one, f"/ws/rooms/{room.slug}/?resume={b.welcome['resume_token']}", await cookie_for(bob)
    )
    welcome = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert (welcome["resumed"], welcome["self"]["peer_id"]) == (True, b.peer_id)
    # The resumed page renegotiates (an ICE restart offer); Alice answers on the new route.
    await ws.send(json.dumps({"type": "offer", "to": a.peer_id, "sdp": "v=0 restart"}))
    assert (await a.receive_type("offer"))["from"] == b.peer_id
    await a.send({"type": "answer", "to": b.peer_id, "sdp": "v=0 answer"})
    async with asyncio.timeout(10):
        while (message := json.loads(await ws.recv()))["type"] != "answer":
            pass
    assert message["from"] == a.peer_id
    with pytest.raises(TimeoutError):
        await a.receive_type("peer-left", timeout=1)
    await ws.close()
    await a.ws.close()


async def test_a_join_while_the_database_is_down_is_refused_with_words_not_a_failed_handshake(
    alice, room, start_workers
):
    cookie = await cookie_for(alice)
    # A worker whose database does not answer (nothing listens on port 9).
    (down,) = await sync_to_async(start_workers)(
        1, healthy=False, DATABASE_URL="postgres://postgres:postgres@127.0.0.1:9/confab"
    )
    ws = await connect(down, f"/ws/rooms/{room.slug}/", cookie)
    closing = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert (closing["type"], closing["code"], closing["refusal"]) == (
        "closing",
        4503,
        "unavailable",
    )
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4503


async def test_people_of_an_sfu_room_on_two_workers_meet_in_one_janus_room(
    alice, bob, start_workers, tmp_path
):
    import secrets as _secrets

    from signaling import janus
    from tests.janus_server import start_janus

    process = start_janus(tmp_path / "janus", api_secret=_secrets.token_hex(8))
    try:
        settings = {"JANUS_URLS": process.url, "JANUS_API_SECRET": process.api_secret}
        one, two = await sync_to_async(start_workers)(2, **settings)
        with override_settings(**{k: [v] if k == "JANUS_URLS" else v for k, v in settings.items()}):
            room = await sync_to_async(services.create_room)(
                owner=alice, name="Across", media="sfu", capacity=20
            )
        a = await join(one, room.slug, await cookie_for(alice))
        b = await join(two, room.slug, await cookie_for(bob))
        assert (a.welcome["worker"], b.welcome["worker"]) == ("w1", "w2")
        connection = await janus.Janus.for_url(process.url, process.api_secret)
        handle = await connection.control()

        await sync_to_async(room.refresh_from_db)()  # placed on Janus at the first join

        async def displays() -> list[str]:
            return sorted(
                p["display"] for p in await janus.list_participants(handle, room.sfu_room)
            )

        async def janus_has(expected: list[str]) -> None:
            """Poll Janus (it has no event for a listing) until the room holds `expected`."""
            async with asyncio.timeout(10):
                while True:
                    if await displays() == expected:
                        return
                    await asyncio.sleep(0.05)

        await janus_has(sorted([a.peer_id, b.peer_id]))
        # A moderator on worker 1 kicks Bob on worker 2: he leaves Janus too.
        await a.send({"type": "kick", "peer_id": b.peer_id})
        await janus_has([a.peer_id])
        await a.ws.close()
        await b.ws.close()
    finally:
        await janus.Janus.close_all()
        process.stop()


async def test_a_moderator_on_one_worker_admits_and_declines_people_waiting_on_the_other(
    alice, start_workers
):
    """The waiting room across workers: the queue reaches the moderator on w1, admissions
    reach the waiting sockets on w2, and admitting more than fit never overfills."""
    room = await sync_to_async(services.create_room)(
        owner=alice, name="Doors", capacity=3, waiting_room="everyone"
    )
    one, two = await sync_to_async(start_workers)(2)
    a = await join(one, room.slug, await cookie_for(alice))
    users = await sync_to_async(lambda: [make_user(f"w{n}", f"W{n}") for n in range(4)])()
    waiting = []
    for user in users:
        ws = await connect(two, f"/ws/rooms/{room.slug}/", await cookie_for(user))
        first = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert first["type"] == "waiting", first
        waiting.append((ws, first["waiting_id"]))
    queue: list[dict[str, object]] = []
    while len(queue) < 4:
        queue = (await a.receive_type("waiting-room"))["queue"]
    assert [q["name"] for q in queue] == ["W0", "W1", "W2", "W3"]

    await a.send({"type": "decline", "waiting_id": waiting[0][1]})
    closing = json.loads(await asyncio.wait_for(waiting[0][0].recv(), 10))
    assert (closing["type"], closing["refusal"]) == ("closing", "declined")
    # Three wait, two seats are free: both admissions at once, then the third is refused.
    await a.send({"type": "admit-all"})
    error = await a.receive_type("error")
    assert (error["code"], error["ref"]) == ("full", "admit-all")
    welcomed = 0
    for ws, _ in waiting[1:3]:
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        while message["type"] != "welcome":
            message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert message["worker"] == "w2"
        welcomed += 1
    assert welcomed == 2
    assert await sync_to_async(Presence.objects.filter(room=room).count)() == 3
    await asyncio.gather(a.ws.close(), *(ws.close() for ws, _ in waiting))
