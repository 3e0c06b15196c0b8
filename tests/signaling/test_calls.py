"""The call websocket through the real ASGI application (docs/protocol.md)."""

import asyncio
from datetime import datetime

import pytest
from channels.db import database_sync_to_async
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.contrib.auth.models import User
from django.db.backends import utils as db_utils
from django.test import override_settings

from rooms import services
from rooms.models import ChatMessage, Presence, Room, RoomBan
from signaling import protocol
from tests.conftest import make_user, open_socket

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def count_queries(monkeypatch):
    """Counts every SQL statement from any thread (consumers query from a worker thread)."""
    executed: list[str] = []
    original = db_utils.CursorWrapper._execute_with_wrappers  # type: ignore[attr-defined]

    def counting(self, sql, *args, **kwargs):
        executed.append(sql)
        return original(self, sql, *args, **kwargs)

    monkeypatch.setattr(db_utils.CursorWrapper, "_execute_with_wrappers", counting)
    return executed


async def test_someone_without_a_profile_is_named_by_their_username(room, join):
    # An account made by hand (createsuperuser, the admin) has no profile.
    erin = await database_sync_to_async(User.objects.create_user)("erin")
    assert (await join(erin, room)).welcome["self"]["name"] == "erin"


async def test_welcome_describes_me_the_room_the_peers_and_recent_chat(alice, bob, room, join):
    await database_sync_to_async(services.post_chat)(
        room_id=room.pk, user=alice, author_name="Alice", body="before you came"
    )
    a = await join(alice, room)
    b = await join(bob, room)
    welcome = b.welcome
    assert welcome["self"]["name"] == "Bob"
    assert welcome["self"]["is_moderator"] is False
    assert a.welcome["self"]["is_moderator"] is True  # the owner
    assert len(welcome["self"]["peer_id"]) == 16
    assert welcome["peers"] == [
        {
            "peer_id": a.peer_id,
            "name": "Alice",
            "media": {"audio": True, "video": True, "screen": False},
            "hand": None,
            "is_moderator": True,
            "is_guest": False,
        }
    ]
    assert welcome["self"]["hand"] is None
    assert welcome["room"] == {
        "slug": room.slug,
        "name": "Standup",
        "kind": "video",
        "media": "mesh",
        "capacity": 4,
        "locked": False,
        "waiting_room": "off",
    }
    assert welcome["waiting"] == []  # no waiting room, and Bob does not moderate
    assert isinstance(welcome["ice_servers"], list)
    assert [m["body"] for m in welcome["history"]] == ["before you came"]
    assert welcome["history"][0]["name"] == "Alice"


async def test_peer_ids_are_random_per_connection_not_database_ids(alice, room, join):
    first = await join(alice, room)
    await first.send({"type": "leave"})
    second = await join(alice, room)
    assert first.peer_id != second.peer_id
    assert not first.peer_id.isdigit()


async def test_others_hear_of_a_newcomer_and_of_a_leaver(alice, bob, room, join):
    a = await join(alice, room)
    b = await join(bob, room)
    joined = await a.receive_type("peer-joined")
    assert joined["peer"] == {
        "peer_id": b.peer_id,
        "name": "Bob",
        "media": {"audio": True, "video": True, "screen": False},
        "hand": None,
        "is_moderator": False,
        "is_guest": False,
    }
    await b.send({"type": "leave"})
    closed = await b.receive()
    assert closed == {"type": "__closed__", "code": 1000, "reason": None}
    assert await a.receive_type("peer-left") == {
        "type": "peer-left",
        "peer_id": b.peer_id,
        "reason": "left",
    }
    assert await database_sync_to_async(Presence.objects.count)() == 1


@override_settings(RESUME_GRACE=1)
async def test_a_dropped_connection_holds_the_seat_then_frees_it_after_the_grace_period(
    alice, bob, room, join
):
    a = await join(alice, room)
    b = await join(bob, room)
    await a.receive_type("peer-joined")
    await b.close()
    assert await a.nothing(0.5)  # held: the page may come back
    assert await database_sync_to_async(Presence.objects.filter(user=bob).exists)()
    assert (await a.receive_type("peer-left", timeout=5))["reason"] == "disconnected"
    assert not await database_sync_to_async(Presence.objects.filter(user=bob).exists)()


async def test_a_returning_page_resumes_its_seat_and_nobody_sees_a_leave(alice, bob, room, join):
    a = await join(alice, room)
    b = await join(bob, room)
    await a.receive_type("peer-joined")
    token = b.welcome["resume_token"]
    await b.close()
    back = await join(bob, room, query=f"?resume={token}")
    assert back.welcome["resumed"] is True
    assert back.welcome["self"]["peer_id"] == b.peer_id
    assert [p["name"] for p in back.welcome["peers"]] == ["Alice"]
    assert await a.nothing()  # no peer-left, no peer-joined
    await a.send({"type": "offer", "to": b.peer_id, "sdp": "v=0 after resume"})
    assert (await back.receive_type("offer"))["sdp"] == "v=0 after resume"
    assert await database_sync_to_async(Presence.objects.filter(user=bob).count)() == 1


async def test_a_page_back_without_its_token_takes_the_place_of_a_held_seat(alice, bob, room, join):
    # Two sockets of Bob's dropped (say, before their welcome arrived, so the page has no
    # token): both seats are held, and Bob is at his limit of two in this room. His next
    # join takes the place of the older held seat instead of being refused for a minute.
    a = await join(alice, room)
    first, second = await join(bob, room), await join(bob, room)
    await first.close()
    await second.close()
    third = await join(bob, room)
    assert third.welcome["self"]["peer_id"] not in (first.peer_id, second.peer_id)
    left = await a.receive_type("peer-left", timeout=5)
    assert (left["peer_id"], left["reason"]) == (first.peer_id, "disconnected")
    seats = await database_sync_to_async(list)(
        Presence.objects.filter(user=bob).values_list("peer_id", flat=True)
    )
    assert sorted(seats) == sorted([second.peer_id, third.welcome["self"]["peer_id"]])


@override_settings(MAX_CONNECTIONS_PER_USER=2)
async def test_at_the_limit_of_all_rooms_a_seat_held_in_another_room_is_given_up(
    alice, bob, room, join
):
    # Bob closed a call in "Elsewhere" while its socket was away (the page's leave never
    # arrived): that seat is held, with no socket behind it. With it and a live call he is
    # at his limit of two; his join into a third room gives up the held one.
    elsewhere, third = [
        await database_sync_to_async(services.create_room)(owner=alice, name=name)
        for name in ("Elsewhere", "Third")
    ]
    a = await join(alice, elsewhere)
    dropped = await join(bob, elsewhere)
    await a.receive_type("peer-joined")
    await join(bob, room)
    await dropped.close()
    assert await a.nothing(0.3)  # held
    await join(bob, third)
    left = await a.receive_type("peer-left", timeout=5)
    assert (left["peer_id"], left["reason"]) == (dropped.peer_id, "disconnected")
    rooms = await database_sync_to_async(list)(
        Presence.objects.filter(user=bob).values_list("room__name", flat=True)
    )
    assert sorted(rooms) == ["Standup", "Third"]


@override_settings(MAX_CONNECTIONS_PER_USER=2)
async def test_at_the_limit_of_all_rooms_live_connections_are_not_given_up(alice, room, join):
    other = await database_sync_to_async(services.create_room)(owner=alice, name="Elsewhere")
    third = await database_sync_to_async(services.create_room)(owner=alice, name="Third")
    first, second = await join(alice, room), await join(alice, other)
    await expect_close(join, alice, third, protocol.CLOSE_RATE_LIMITED, "too_many_connections")
    assert await first.nothing(0.2)
    assert await second.nothing(0.2)


async def test_a_pages_beacon_gives_its_seat_up_at_once_and_the_others_see_it_leave(
    alice, bob, room, join, client_for
):
    # Firefox shuts the socket before pagehide: the `leave` never goes, the beacon does.
    a = await join(alice, room)
    b = await join(bob, room)
    await a.receive_type("peer-joined")
    await b.close()
    assert await a.nothing(0.3)  # held for a resume
    post = database_sync_to_async((await database_sync_to_async(client_for)(bob)).post)
    answer = await post(f"/rooms/{room.slug}/leave", {"token": b.welcome["resume_token"]})
    assert (answer.status_code, answer.content) == (204, b"")
    left = await a.receive_type("peer-left")
    assert (left["peer_id"], left["reason"]) == (b.peer_id, "left")
    assert not await database_sync_to_async(Presence.objects.filter(user=bob).exists)()
    again = await post(f"/rooms/{room.slug}/leave", {"token": b.welcome["resume_token"]})
    assert again.status_code == 204  # nothing more to give up, and nothing to tell
    assert await a.nothing()


async def test_a_beacon_without_the_seats_own_token_changes_nothing(
    alice, bob, room, join, client_for, client
):
    a = await join(alice, room)
    b = await join(bob, room)
    await a.receive_type("peer-joined")
    token = b.welcome["resume_token"]
    as_alice, as_bob = [await database_sync_to_async(client_for)(u) for u in (alice, bob)]
    for poster, body in (
        (as_alice, {"token": token}),  # someone else's page
        (client, {"token": token}),  # nobody signed in
        (as_bob, {"token": "not-the-token"}),
        (as_bob, {}),
    ):
        answer = await database_sync_to_async(poster.post)(f"/rooms/{room.slug}/leave", body)
        assert answer.status_code == 204
    assert await database_sync_to_async(Presence.objects.filter(user=bob).count)() == 1
    assert await a.nothing()
    assert await b.nothing()


async def test_someone_elses_resume_token_gives_an_ordinary_join(alice, bob, charlie, room, join):
    await join(alice, room)
    b = await join(bob, room)
    c = await join(charlie, room, query=f"?resume={b.welcome['resume_token']}")
    assert c.welcome["resumed"] is False
    assert c.peer_id != b.peer_id


async def test_a_lingering_socket_is_closed_when_its_page_resumes_elsewhere(alice, bob, room, join):
    a = await join(alice, room)
    b = await join(bob, room)
    await a.receive_type("peer-joined")
    back = await join(bob, room, query=f"?resume={b.welcome['resume_token']}")
    closed = await b.receive_type("__closed__")
    assert (closed["code"], closed["reason"]) == (4408, "resumed on a new connection")
    await b.close()
    assert await a.nothing()
    await a.send({"type": "candidate", "to": back.peer_id, "candidate": None})
    assert (await back.receive_type("candidate"))["from"] == a.peer_id
    assert await database_sync_to_async(Presence.objects.filter(user=bob).count)() == 1


async def test_relay_reaches_only_the_target(alice, bob, charlie, room, join):
    a = await join(alice, room)
    b = await join(bob, room)
    c = await join(charlie, room)
    for kind, field, value in [
        ("offer", "sdp", "v=0 offer"),
        ("answer", "sdp", "v=0 answer"),
        (
            "candidate",
            "candidate",
            {"candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host", "sdpMid": "0"},
        ),
        ("candidate", "candidate", None),
    ]:
        await c.send({"type": kind, "to": a.peer_id, field: value})
        assert await a.receive_type(kind) == {"type": kind, "from": c.peer_id, field: value}
    await a.send({"type": "offer", "to": b.peer_id, "sdp": "v=0 for bob"})
    assert (await b.receive_type("offer"))["sdp"] == "v=0 for bob"
    # Charlie saw nothing but the others' arrival.
    while not await c.nothing():
        assert (await c.receive())["type"] in {"peer-joined"}


async def test_from_is_set_by_the_server_not_the_client(alice, bob, room, join):
    a = await join(alice, room)
    b = await join(bob, room)
    await b.send({"type": "offer", "to": a.peer_id, "sdp": "v=0", "from": "someone-else"})
    assert (await a.receive_type("offer"))["from"] == b.peer_id


async def test_relay_to_an_unknown_peer_is_refused_and_sends_nothing(alice, bob, room, join):
    a = await join(alice, room)
    b = await join(bob, room)
    await a.receive_type("peer-joined")
    await b.send({"type": "offer", "to": "not-a-peer", "sdp": "v=0"})
    error = await b.receive_type("error")
    assert error["code"] == "unknown_peer"
    assert error["ref"] == "offer"
    assert await a.nothing()


async def test_relay_to_a_peer_in_another_room_is_refused(alice, bob, room, join):
    other = await database_sync_to_async(services.create_room)(owner=bob, name="Elsewhere")
    a = await join(alice, room)
    b = await join(bob, other)
    await b.send({"type": "offer", "to": a.peer_id, "sdp": "v=0"})
    assert (await b.receive_type("error"))["code"] == "unknown_peer"
    assert await a.nothing()


async def test_relaying_to_yourself_is_refused(alice, room, join):
    a = await join(alice, room)
    await a.send({"type": "candidate", "to": a.peer_id, "candidate": None})
    assert (await a.receive_type("error"))["code"] == "unknown_peer"


async def test_the_relay_path_makes_no_database_query(alice, bob, room, join, count_queries):
    a = await join(alice, room)
    b = await join(bob, room)
    await a.receive_type("peer-joined")
    count_queries.clear()
    await b.send({"type": "offer", "to": a.peer_id, "sdp": "v=0"})
    await a.receive_type("offer")
    await a.send({"type": "answer", "to": b.peer_id, "sdp": "v=0"})
    await b.receive_type("answer")
    for _ in range(10):
        await a.send({"type": "candidate", "to": b.peer_id, "candidate": {"candidate": "x"}})
        await b.receive_type("candidate")
    assert count_queries == []


async def test_a_join_makes_a_bounded_number_of_queries(
    alice, bob, charlie, room, join, count_queries
):
    await join(alice, room)
    await join(bob, room)
    communicator = await open_socket(charlie, f"/ws/rooms/{room.slug}/")
    count_queries.clear()
    await communicator.connect()
    assert '"welcome"' in (await communicator.receive_output(2))["text"]
    joined = list(count_queries)
    await communicator.disconnect()
    # Session and user (auth); the join transaction: the room locked by the UPDATE that
    # marks its activity, the door's facts in one statement (occupancy, the user's seats
    # here and anywhere, moderator grant, ban, display name), the insert; then the peers
    # and the history for welcome (the lobby summary is made from those): 6 on PostgreSQL
    # with the session in Redis, 8 on SQLite (the session from the database, and BEGIN),
    # whatever the size of the room or its history (each is a round trip every join into
    # the room waits behind; docs/performance.md).
    assert len(joined) <= 8, joined


async def test_chat_is_saved_before_it_is_broadcast_and_acknowledged_to_the_sender(
    alice, bob, room, join
):
    a = await join(alice, room)
    b = await join(bob, room)
    await a.send({"type": "chat", "body": "  hello, world  "})
    echo = await a.receive_type("chat")
    seen = await b.receive_type("chat")
    assert echo == seen
    stored = await database_sync_to_async(ChatMessage.objects.get)()
    assert echo["id"] == stored.pk
    assert echo["from"] == a.peer_id
    assert echo["name"] == "Alice"
    assert echo["body"] == "hello, world" == stored.body
    assert echo["sent_at"] == stored.sent_at.isoformat()


async def test_chat_reaches_the_next_joiners_history(alice, bob, room, join):
    a = await join(alice, room)
    await a.send({"type": "chat", "body": "first"})
    await a.receive_type("chat")
    b = await join(bob, room)
    assert [(m["name"], m["body"]) for m in b.welcome["history"]] == [("Alice", "first")]


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"type": "chat", "body": ""}, "body must not be empty"),
        ({"type": "chat", "body": "   "}, "body must not be empty"),
        ({"type": "chat", "body": "x" * 2001}, "body is longer than 2000 characters"),
        ({"type": "chat"}, "body must be a string"),
        ({"type": "chat", "body": 5}, "body must be a string"),
        # Found by the fuzz run on PostgreSQL, which cannot store NUL: a server error before.
        ({"type": "chat", "body": "a\x00b"}, "body must not contain NUL characters"),
    ],
)
async def test_bad_chat_gets_a_clear_error_and_stores_nothing(alice, room, join, message, reason):
    a = await join(alice, room)
    await a.send(message)
    error = await a.receive_type("error")
    assert (error["code"], error["message"]) == ("bad_message", reason)
    assert await database_sync_to_async(ChatMessage.objects.count)() == 0


async def test_media_state_is_stored_and_sent_to_the_others(alice, bob, room, join):
    a = await join(alice, room)
    b = await join(bob, room)
    await a.receive_type("peer-joined")
    await b.send({"type": "media", "audio": False, "video": True, "screen": False})
    assert await a.receive_type("media") == {
        "type": "media",
        "from": b.peer_id,
        "audio": False,
        "video": True,
        "screen": False,
    }
    assert await b.nothing()
    presence = await database_sync_to_async(Presence.objects.get)(user=bob)
    assert presence.audio is False


async def test_ping_gets_pong(alice, room, join):
    a = await join(alice, room)
    await a.send({"type": "ping"})
    assert await a.receive() == {"type": "pong"}


async def test_a_voice_room_starts_everyone_without_video(alice, join):
    voice = await database_sync_to_async(services.create_room)(
        owner=alice, name="Call", kind=Room.Kind.VOICE
    )
    a = await join(alice, voice)
    assert a.welcome["room"]["kind"] == "voice"
    presence = await database_sync_to_async(Presence.objects.get)()
    assert presence.video is False


# --- Refusals and their close codes --------------------------------------------------


async def expect_close(join, user, room, code, refusal, **kw):
    peer = await join(user, room, expect_welcome=False, **kw)
    assert peer.welcome["type"] == "__closed__", peer.welcome
    assert (peer.welcome["code"], peer.welcome["refusal"]) == (code, refusal)
    return peer


async def test_anonymous_users_are_closed_with_4401(room, join):
    await expect_close(join, None, room, 4401, "not_signed_in")


async def test_an_unknown_room_is_closed_with_4404(alice, join):
    ghost = Room(slug="nowhere", name="x")
    await expect_close(join, alice, ghost, 4404, "not_found")


async def test_a_closed_room_is_closed_with_4404(alice, room, join):
    await database_sync_to_async(services.close_room)(room)
    await expect_close(join, alice, room, 4404, "not_found")


async def test_a_full_room_is_closed_with_4409_and_says_how_full(alice, bob, charlie, join):
    small = await database_sync_to_async(services.create_room)(owner=alice, name="Pair", capacity=2)
    await join(alice, small)
    await join(bob, small)
    refused = await expect_close(join, charlie, small, 4409, "full")
    assert (refused.welcome["occupancy"], refused.welcome["capacity"]) == (2, 2)


async def test_a_banned_user_is_closed_with_4403(alice, bob, room, join):
    await database_sync_to_async(RoomBan.objects.create)(room=room, user=bob, banned_by=alice)
    refused = await expect_close(join, bob, room, 4403, "banned")
    assert refused.welcome["until"] is None  # until lifted


async def test_a_private_room_without_its_password_is_closed_with_4403(alice, bob, join):
    secret = await database_sync_to_async(services.create_room)(
        owner=alice, name="Secret", is_private=True, password="pw"
    )
    await expect_close(join, bob, secret, 4403, "password_required")
    peer = await join(bob, secret, grant=secret)
    assert peer.welcome["room"]["name"] == "Secret"


async def test_a_locked_room_is_closed_with_4403_except_for_moderators(alice, bob, room, join):
    room.is_locked = True
    await database_sync_to_async(room.save)()
    await expect_close(join, bob, room, 4403, "locked")
    owner = await join(alice, room)
    assert owner.welcome["room"]["locked"] is True


async def test_cross_origin_sockets_are_refused(alice, room):
    communicator = await open_socket(
        alice, f"/ws/rooms/{room.slug}/", origin=(b"origin", b"http://evil.example")
    )
    connected, _ = await communicator.connect()
    assert not connected
    assert await database_sync_to_async(Presence.objects.count)() == 0


async def test_capacity_holds_under_20_concurrent_joins_to_a_room_of_4(room):
    users = await database_sync_to_async(
        lambda: [make_user(f"user{n}", f"User {n}") for n in range(20)]
    )()
    communicators = [await open_socket(user, f"/ws/rooms/{room.slug}/") for user in users]
    await asyncio.gather(*(c.connect() for c in communicators))
    firsts = await asyncio.gather(*(c.receive_output(5) for c in communicators))
    welcomed = [f for f in firsts if f["type"] == "websocket.send" and '"welcome"' in f["text"]]
    full = [f for f in firsts if f["type"] == "websocket.send" and '"code":4409' in f["text"]]
    assert (len(welcomed), len(full)) == (4, 16)
    assert await database_sync_to_async(Presence.objects.filter(room=room).count)() == 4
    for c in communicators:
        await c.disconnect()


# --- Protocol errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("not json", "frame is not valid JSON"),
        ("[1, 2]", "a message must be a JSON object"),
        ('{"no": "type"}', "type is missing or not a string"),
        ('{"type": "dance"}', "unknown message type 'dance'"),
        ('{"type": "offer", "sdp": "v=0"}', "to must be a string"),
        ('{"type": "offer", "to": "x", "sdp": ""}', "sdp must not be empty"),
        ('{"type": "candidate", "to": "x"}', "candidate is missing"),
        (
            '{"type": "candidate", "to": "x", "candidate": "str"}',
            "candidate must be an object or null",
        ),
        (
            '{"type": "media", "audio": 1, "video": true, "screen": false}',
            "audio must be true or false",
        ),
    ],
)
async def test_malformed_messages_get_bad_message_and_the_socket_stays_open(
    alice, room, join, frame, reason
):
    a = await join(alice, room)
    await a.ws.send_to(text_data=frame)
    error = await a.receive()
    assert (error["type"], error["code"], error["message"]) == ("error", "bad_message", reason)
    await a.send({"type": "ping"})
    assert await a.receive() == {"type": "pong"}


async def test_oversize_sdp_and_candidates_are_refused(alice, bob, room, join):
    a = await join(alice, room)
    b = await join(bob, room)
    await b.send({"type": "offer", "to": a.peer_id, "sdp": "x" * 65537})
    assert (await b.receive_type("error"))["message"] == "sdp is longer than 65536 characters"
    await b.send({"type": "candidate", "to": a.peer_id, "candidate": {"candidate": "x" * 2100}})
    assert (await b.receive_type("error"))["message"] == "candidate is longer than 2048 characters"
    await b.ws.send_to(text_data="x" * (73 * 1024))
    assert (await b.receive_type("error"))["message"] == "frame is larger than 73728 bytes"
    await a.receive_type("peer-joined")
    assert await a.nothing()


async def test_binary_frames_are_refused(alice, room, join):
    a = await join(alice, room)
    await a.ws.send_to(bytes_data=b"\x00\x01")
    assert (await a.receive())["message"] == "binary frames are not accepted; send JSON text"


async def test_twenty_bad_messages_in_a_minute_close_the_socket_with_4400(alice, bob, room, join):
    a = await join(alice, room)
    b = await join(bob, room)
    for _ in range(19):
        await b.ws.send_to(text_data="garbage")
        assert (await b.receive_type("error"))["code"] == "bad_message"
    await b.ws.send_to(text_data="garbage")
    await b.receive_type("error")
    assert await b.receive() == {
        "type": "closing",
        "code": 4400,
        "refusal": "abuse",
        "reason": "too many invalid messages",
    }
    closed = await b.receive()
    assert (closed["type"], closed["code"]) == ("__closed__", 4400)
    assert (await a.receive_type("peer-left"))["peer_id"] == b.peer_id


async def test_a_flood_of_bare_pings_falls_through_to_the_rate_limit(alice, room, join):
    a = await join(alice, room)
    for _ in range(60):
        await a.ws.send_to(text_data='{"type":"ping"}')
    replies = [await a.receive() for _ in range(60)]
    assert {r["type"] for r in replies} <= {"pong", "error"}
    assert any(r["type"] == "error" and r["code"] == "rate_limited" for r in replies)


async def test_a_relay_the_layer_cannot_take_is_an_error_and_the_sender_stays(
    alice, bob, room, join, monkeypatch
):
    """The core Redis layer raises ChannelFull when the target's worker is far behind."""
    a = await join(alice, room)
    b = await join(bob, room)
    await a.receive_type("peer-joined")
    layer = get_channel_layer()
    send = layer.send

    async def full_for_relays(channel, message):
        if message["type"] == "signal.relay":
            raise ChannelFull()
        await send(channel, message)

    monkeypatch.setattr(layer, "send", full_for_relays)
    await b.send({"type": "offer", "to": a.peer_id, "sdp": "v=0"})
    error = await b.receive_type("error")
    assert (error["code"], error["ref"]) == ("server_error", "offer")
    monkeypatch.setattr(layer, "send", send)
    await b.send({"type": "offer", "to": a.peer_id, "sdp": "v=0 again"})
    assert (await a.receive_type("offer"))["sdp"] == "v=0 again"


@pytest.mark.parametrize(
    ("frame", "detail"),
    [
        ('{"type": "chat", "body": "hi \\ud800"}', "not_json"),
        ('{"type": "kick", "peer_id": "x", "reason": "\\udfff"}', "not_json"),
        ('{"type": "offer", "to": "x", "sdp": "v=0 \\udc00"}', "not_json"),
        ('{"type": "candidate", "to": "x", "candidate": {"candidate": "\\ud800"}}', "not_json"),
        ('{"type": "media", "audio": NaN, "video": true, "screen": false}', "not_json"),
        ('{"type": "ban", "peer_id": "x", "minutes": Infinity}', "not_json"),
        ('{"type": "ban", "peer_id": "x", "minutes": 1e400}', "not_json"),
        ('{"type": "hide-chat", "id": 18446744073709551617}', "not_json"),
        ('{"type": "chat", "body": ' + "[" * 40 + "]" * 40 + "}", "not_json"),
        ('{"type": "chat", "body": ' + "[" * 30000 + "]" * 30000 + "}", "not_json"),
        (
            '{"type": "candidate", "to": "x", '
            '"candidate": {"candidate": "c", "sdpMLineIndex": 1.5}}',
            "invalid_field",
        ),
        ('{"type": "hide-chat", "id": 9007199254740993}', "not_json"),
        ('{"type": "dance"}', "unknown_type"),
        ("x" * (73 * 1024), "too_large"),
    ],
)
async def test_text_the_database_or_the_channel_layer_cannot_carry_is_a_bad_message(
    alice, bob, room, join, frame, detail
):
    a = await join(alice, room)
    b = await join(bob, room)
    await a.receive_type("peer-joined")
    await b.ws.send_to(text_data=frame.replace('"x"', f'"{a.peer_id}"'))
    error = await b.receive_type("error")
    assert (error["code"], error["detail"]) == ("bad_message", detail)
    assert await a.nothing()
    assert await database_sync_to_async(ChatMessage.objects.count)() == 0
    await b.send({"type": "ping"})
    assert await b.receive() == {"type": "pong"}


async def test_a_relayed_candidate_carries_only_its_four_fields(alice, bob, room, join):
    a = await join(alice, room)
    b = await join(bob, room)
    await a.receive_type("peer-joined")
    candidate = {
        "candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
        "usernameFragment": "abcd",
        "extra": {"deep": [1, 2, {"x": "y"}]},
    }
    await b.send({"type": "candidate", "to": a.peer_id, "candidate": candidate})
    relayed = await a.receive_type("candidate")
    del candidate["extra"]
    assert relayed["candidate"] == candidate


async def test_the_frame_limit_counts_utf8_bytes_not_characters(alice, room, join):
    a = await join(alice, room)
    # 25,000 characters, 75,000 bytes: over 72 KiB as daphne counts it.
    await a.send({"type": "chat", "body": "€" * 25_000})
    error = await a.receive_type("error")
    assert (error["code"], error["detail"]) == ("bad_message", "too_large")


async def test_a_welcome_with_fifty_long_emoji_messages_still_fits_in_a_frame(
    alice, bob, room, join
):
    # Escaped as ASCII, 50 x 2,000 emoji made a welcome of 1.2 MB, over daphne's 1 MiB
    # limit on what it sends: nobody could join the room any more.
    def fill() -> None:
        for _ in range(50):
            services.post_chat(room_id=room.pk, user=alice, author_name="Alice", body="😀" * 2000)

    await database_sync_to_async(fill)()
    b = await join(bob, room)
    assert len(b.welcome["history"]) == 50
    assert len(protocol.encode(b.welcome).encode()) < 1024 * 1024


async def test_a_join_moves_the_room_up_the_lobby_and_a_refused_one_does_not(
    alice, bob, room, join
):
    async def activity() -> datetime:
        await database_sync_to_async(room.refresh_from_db)()
        return room.last_activity_at

    created = await activity()
    await join(alice, room)
    joined = await activity()
    assert joined > created
    await database_sync_to_async(RoomBan.objects.create)(room=room, user=bob, banned_by=alice)
    refused = await join(bob, room, expect_welcome=False)
    assert refused.welcome["reason"] == "you are banned from this room"
    assert await activity() == joined
