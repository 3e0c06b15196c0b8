"""No exception leaves a seat: failures injected at each step of each handler.

Whatever fails (the database, Redis, a bug, a socket that is already closed), the
connection either answers `error server_error` and stays, or gives its seat up, tells the
room and closes with a documented code (docs/protocol.md, "Close codes and refusals").
After every case the seats in the database are exactly the open sockets, and this
worker's heartbeat refreshes only those.
"""

from __future__ import annotations

from datetime import timedelta
from importlib import import_module

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import OperationalError
from django.utils import timezone
from redis.exceptions import ConnectionError as RedisDown

from rooms import events, moderation, services
from rooms.models import ChatMessage, Presence
from signaling import presence
from signaling.consumers import RoomConsumer
from tests.conftest import open_socket, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

DATABASE_DOWN = OperationalError("connection to server at 127.0.0.1, port 5432 failed")
REDIS_DOWN = RedisDown("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
A_BUG = RuntimeError("a bug in a handler")


def failing(error: Exception):
    def fail(*args, **kwargs):
        raise error

    return fail


def async_failing(error: Exception):
    async def fail(*args, **kwargs):
        raise error

    return fail


async def seats() -> set[str]:
    rows = await database_sync_to_async(
        lambda: set(Presence.objects.values_list("peer_id", flat=True))
    )()
    return rows


async def assert_seats_are(*peers) -> None:
    """The database's seats and this worker's heartbeat list hold exactly these peers."""
    expected = {peer.peer_id for peer in peers}
    assert await seats() == expected
    assert presence._local_peers == expected


async def assert_still_works(peer) -> None:
    await peer.send({"type": "ping", "id": "still-there"})
    assert await peer.receive_type("pong") == {"type": "pong", "id": "still-there"}


@pytest.fixture
async def pair(alice, bob, room, join):
    a = await join(alice, room)
    b = await join(bob, room)
    await a.receive_type("peer-joined")
    return a, b


# --- A client message that fails is an error; the socket and the seat stay ------------------


@pytest.mark.parametrize(
    ("target", "error"),
    [
        ((services, "post_chat"), DATABASE_DOWN),
        ((events, "apublish"), REDIS_DOWN),
    ],
    ids=["database-down", "redis-down"],
)
async def test_a_chat_the_server_cannot_deliver_is_a_server_error_and_is_not_kept(
    pair, monkeypatch, target, error
):
    a, b = pair
    monkeypatch.setattr(
        *target, async_failing(error) if target[1] == "apublish" else failing(error)
    )
    await a.send({"type": "chat", "body": "lost?"})
    answer = await a.receive_type("error")
    assert (answer["code"], answer["detail"], answer["ref"]) == (
        "server_error",
        "unavailable",
        "chat",
    )
    assert await database_sync_to_async(ChatMessage.objects.count)() == 0
    assert await b.nothing()
    monkeypatch.undo()
    await assert_still_works(a)
    await a.send({"type": "chat", "body": "again"})
    assert (await b.receive_type("chat"))["body"] == "again"
    await assert_seats_are(a, b)


async def test_a_relay_while_redis_is_down_is_a_server_error_and_the_sender_stays(
    pair, monkeypatch
):
    a, b = pair
    monkeypatch.setattr(get_channel_layer(), "send", async_failing(REDIS_DOWN))
    await a.send({"type": "offer", "to": b.peer_id, "sdp": "v=0"})
    answer = await a.receive_type("error")
    assert (answer["code"], answer["detail"], answer["ref"]) == (
        "server_error",
        "unavailable",
        "offer",
    )
    monkeypatch.undo()
    await assert_still_works(a)
    await assert_seats_are(a, b)


@pytest.mark.parametrize(
    ("target", "error"),
    [
        ((services, "set_media"), DATABASE_DOWN),
        ((events, "apublish"), REDIS_DOWN),
        ((services, "set_media"), A_BUG),
    ],
    ids=["database-down", "redis-down", "a-bug"],
)
async def test_a_media_update_that_fails_is_a_server_error_and_the_socket_stays(
    pair, monkeypatch, expected_errors, target, error
):
    a, b = pair
    monkeypatch.setattr(
        *target, async_failing(error) if target[1] == "apublish" else failing(error)
    )
    await a.send({"type": "media", "audio": False, "video": True, "screen": False})
    answer = await a.receive_type("error")
    assert (answer["code"], answer["detail"]) == ("server_error", "unavailable")
    monkeypatch.undo()
    await assert_still_works(a)
    await assert_seats_are(a, b)
    # An outage is one WARNING line; only the bug is an ERROR, with its traceback.
    assert [r.exc_info is not None for r in expected_errors.records] == (
        [True] if error is A_BUG else []
    )


@pytest.mark.parametrize("error", [DATABASE_DOWN, A_BUG], ids=["database-down", "a-bug"])
async def test_moderation_that_fails_is_a_server_error_and_changes_nothing(
    pair, monkeypatch, expected_errors, error
):
    a, b = pair
    monkeypatch.setattr(moderation, "get_room", failing(error))
    await a.send({"type": "kick", "peer_id": b.peer_id})
    answer = await a.receive_type("error")
    assert answer["code"] == "server_error"
    monkeypatch.undo()
    await assert_still_works(a)
    await assert_still_works(b)
    await assert_seats_are(a, b)


# --- Joining: a failure takes no seat, or gives back the one it took --------------------------


async def test_a_join_while_the_database_is_down_closes_with_4503_and_takes_nothing(
    alice, bob, room, join, monkeypatch
):
    a = await join(alice, room)
    monkeypatch.setattr(services, "join_room", failing(DATABASE_DOWN))
    refused = await join(bob, room, expect_welcome=False)
    assert (refused.welcome["code"], refused.welcome["refusal"]) == (4503, "unavailable")
    assert await a.nothing()
    await assert_seats_are(a)


async def test_a_join_whose_session_cannot_be_read_closes_with_4503(
    alice, room, join, monkeypatch, settings
):
    # The room's socket reads its session and user in the join's own database call
    # (signaling/routing.py): the database failing there is an outage like any other.
    cookie = await database_sync_to_async(session_cookie)(alice)
    store = import_module(settings.SESSION_ENGINE).SessionStore
    monkeypatch.setattr(store, "load", failing(DATABASE_DOWN))
    refused = await join(None, room, expect_welcome=False, cookie=cookie)
    assert (refused.welcome["code"], refused.welcome["refusal"]) == (4503, "unavailable")
    await assert_seats_are()


async def test_a_lobby_socket_whose_session_cannot_be_read_closes_with_4503(
    alice, monkeypatch, settings
):
    cookie = await database_sync_to_async(session_cookie)(alice)
    store = import_module(settings.SESSION_ENGINE).SessionStore
    monkeypatch.setattr(store, "load", failing(DATABASE_DOWN))
    lobby = await open_socket(None, "/ws/lobby/", cookie=cookie)
    assert await lobby.connect() == (False, 4503)


@pytest.mark.parametrize(
    ("step", "error", "refusal", "code"),
    [
        ("group_add", REDIS_DOWN, "unavailable", 4503),
        ("welcome_facts", DATABASE_DOWN, "unavailable", 4503),
        ("welcome_facts", A_BUG, "server_error", 4500),
        ("group_send", REDIS_DOWN, "unavailable", 4503),
    ],
)
async def test_a_join_that_fails_after_taking_the_seat_gives_it_back(
    alice, bob, room, join, monkeypatch, expected_errors, step, error, refusal, code
):
    a = await join(alice, room)
    layer = get_channel_layer()
    if step == "welcome_facts":
        monkeypatch.setattr(services, "welcome_facts", failing(error))
    else:
        original = getattr(layer, step)

        async def fail_for_newcomers(group, *args):
            # Only Bob's join fails; Alice's socket keeps using the layer.
            if step == "group_send" or (await seats()) != {a.peer_id}:
                raise error
            return await original(group, *args)

        monkeypatch.setattr(layer, step, fail_for_newcomers)
    refused = await join(bob, room, expect_welcome=False)
    if step == "group_send":  # the last step: the welcome was out already
        assert refused.welcome["type"] == "welcome"
        closing = await refused.receive_type("closing")
        refused.welcome = {**closing, **await refused.receive()}
    assert (refused.welcome["code"], refused.welcome["refusal"]) == (code, refusal)
    monkeypatch.undo()
    await assert_seats_are(a)
    assert [r.exc_info is not None for r in expected_errors.records] == (
        [True] if error is A_BUG else []
    )


# --- Events for a socket that cannot take them -------------------------------------------------


async def test_a_socket_that_fails_to_take_an_event_gives_up_its_seat_and_the_room_hears(
    alice, bob, charlie, room, join, monkeypatch, expected_errors
):
    a = await join(alice, room)
    b = await join(bob, room)
    await a.receive_type("peer-joined")
    original = RoomConsumer.send_message

    async def broken_for_bob(self, message):
        if self.name == "Bob" and message["type"] == "peer-joined":
            raise A_BUG
        await original(self, message)

    monkeypatch.setattr(RoomConsumer, "send_message", broken_for_bob)
    c = await join(charlie, room)
    assert (await a.receive_type("peer-joined"))["peer"]["name"] == "Charlie"
    left = await a.receive_type("peer-left")
    assert (left["peer_id"], left["reason"]) == (b.peer_id, "disconnected")
    assert (await c.receive_type("peer-left"))["peer_id"] == b.peer_id
    closing = await b.receive_type("closing")
    assert (closing["code"], closing["refusal"]) == (4500, "server_error")
    await assert_seats_are(a, c)
    assert [r.getMessage() for r in expected_errors.records] == ["peer.joined failed"]


# --- Leaving and dropping while things are down ------------------------------------------------


async def test_a_drop_while_the_database_is_down_still_frees_the_seat_through_the_sweeper(
    pair, monkeypatch
):
    a, b = pair
    monkeypatch.setattr(services, "detach_seat", failing(DATABASE_DOWN))
    await b.close()
    monkeypatch.undo()
    # This worker no longer refreshes Bob's row, so it goes stale and is swept.
    assert presence._local_peers == {a.peer_id}
    # Time passes: Alice's row is refreshed by her worker's heartbeat, Bob's is not.
    stale = timezone.now() - timedelta(seconds=60)
    await database_sync_to_async(Presence.objects.filter(peer_id=b.peer_id).update)(last_seen=stale)
    swept = await database_sync_to_async(services.sweep_stale_presences)()
    assert [p.peer_id for p in swept] == [b.peer_id]
    left = await a.receive_type("peer-left")
    assert (left["peer_id"], left["reason"]) == (b.peer_id, "timeout")


async def test_a_leave_while_the_database_is_down_closes_and_stops_refreshing_the_seat(
    pair, monkeypatch
):
    a, b = pair
    monkeypatch.setattr(services, "leave_room", failing(DATABASE_DOWN))
    await b.send({"type": "leave"})
    assert (await b.receive_type("__closed__"))["code"] == 1000
    assert presence._local_peers == {a.peer_id}


async def test_a_refused_join_never_listens_to_the_room_and_logs_one_info_line(
    alice, bob, charlie, join, monkeypatch, caplog
):
    small = await database_sync_to_async(services.create_room)(owner=alice, name="Pair", capacity=2)
    await join(alice, small)
    await join(bob, small)
    layer = get_channel_layer()
    groups: list[str] = []
    original = layer.group_add

    async def spy(group, channel):
        groups.append(group)
        await original(group, channel)

    monkeypatch.setattr(layer, "group_add", spy)
    caplog.set_level("INFO", logger="signaling")
    refused = await join(charlie, small, expect_welcome=False)
    assert refused.welcome["refusal"] == "full"
    assert groups == []
    assert [
        (r.levelname, r.getMessage()) for r in caplog.records if r.name.startswith("signaling")
    ] == [("INFO", "join refused: full")]
