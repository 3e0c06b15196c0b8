"""Abuse limits: per connection, per person, and on password guessing."""

import pytest
from channels.db import database_sync_to_async
from django.test import Client, override_settings

from rooms import services, throttle
from rooms.models import ChatMessage, Presence
from tests.servers_common import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_negotiation_burst_of_candidates_passes(alice, bob, room, join):
    a = await join(alice, room)
    b = await join(bob, room)
    await b.send({"type": "offer", "to": a.peer_id, "sdp": "v=0"})
    for n in range(80):
        await b.send({"type": "candidate", "to": a.peer_id, "candidate": {"candidate": f"c{n}"}})
    await a.receive_type("offer")
    for n in range(80):
        assert (await a.receive_type("candidate"))["candidate"] == {"candidate": f"c{n}"}
    assert await b.nothing()


async def test_chat_faster_than_a_human_is_rate_limited_and_dropped(alice, room, join):
    a = await join(alice, room)
    for n in range(8):
        await a.send({"type": "chat", "body": f"spam {n}"})
    replies = [await a.receive() for _ in range(8)]
    limited = [r for r in replies if r["type"] == "error"]
    assert len([r for r in replies if r["type"] == "chat"]) == 5  # the burst
    assert {(r["code"], r["ref"]) for r in limited} == {("rate_limited", "chat")}
    assert await database_sync_to_async(ChatMessage.objects.count)() == 5


@override_settings(
    RATE_LIMITS={"signal": (1, 2), "chat": (1, 5), "other": (1, 2)}, RATE_LIMIT_STRIKES=5
)
async def test_persistent_flooding_closes_the_socket_with_4429(alice, bob, room, join):
    a = await join(alice, room)
    b = await join(bob, room)
    for _ in range(10):
        await b.send({"type": "candidate", "to": a.peer_id, "candidate": None})
    closed = await b.receive_type("__closed__")
    assert closed["code"] == 4429
    assert (await a.receive_type("peer-left"))["peer_id"] == b.peer_id
    assert not await database_sync_to_async(Presence.objects.filter(user=bob).exists)()


@override_settings(MAX_CONNECTIONS_PER_ROOM=2)
async def test_one_person_holds_at_most_two_connections_in_a_room(alice, room, join):
    await join(alice, room)
    await join(alice, room)
    third = await join(alice, room, expect_welcome=False)
    assert (third.welcome["code"], third.welcome["reason"]) == (4429, "too many open connections")


@override_settings(MAX_CONNECTIONS_PER_USER=2)
async def test_one_person_holds_a_bounded_number_of_connections_overall(alice, join):
    rooms = [
        await database_sync_to_async(services.create_room)(owner=alice, name=f"R{n}")
        for n in range(3)
    ]
    await join(alice, rooms[0])
    await join(alice, rooms[1])
    third = await join(alice, rooms[2], expect_welcome=False)
    assert third.welcome["code"] == 4429


@override_settings(JOINS_PER_MINUTE=3)
async def test_rejoining_in_a_loop_is_limited_per_minute(alice, room, join):
    for _ in range(3):
        peer = await join(alice, room)
        await peer.send({"type": "leave"})
        await peer.receive_type("__closed__")
    refused = await join(alice, room, expect_welcome=False)
    assert (refused.welcome["code"], refused.welcome["reason"]) == (
        4429,
        "too many joins; wait a minute",
    )


def test_login_is_throttled_after_five_failures(alice):
    client = Client()
    for _ in range(5):
        assert (
            client.post("/accounts/login/", {"username": "alice", "password": "wrong"}).status_code
            == 200
        )
    response = client.post("/accounts/login/", {"username": "alice", "password": "pw-alice"})
    assert response.status_code == 429
    assert "Too many failed sign-in attempts" in response.content.decode()
    # Other people are not locked out by Alice's attacker.
    assert (
        Client().post("/accounts/login/", {"username": "bob", "password": "x"}).status_code == 200
    )


def test_private_room_password_guesses_are_throttled(client_for, alice, bob):
    room = services.create_room(owner=alice, name="Vault", is_private=True, password="right")
    client = client_for(bob)
    for _ in range(5):
        client.post(f"/rooms/{room.slug}/", {"password": "guess"})
    response = client.post(f"/rooms/{room.slug}/", {"password": "right"})
    assert response.status_code == 429
    assert "Too many wrong passwords" in response.content.decode()


def test_a_throttle_window_counts_from_its_first_event_and_then_starts_again():
    # Redis (the PostgreSQL run) counts in one round trip (config/cache.py); the local
    # memory cache (the SQLite run) with add and incr: both must count alike.
    assert [throttle.hit("probe", "alice", window=1) for _ in range(3)] == [1, 2, 3]
    assert throttle.count("probe", "alice") == 3
    assert throttle.count("probe", "bob") == 0
    wait_until(lambda: throttle.count("probe", "alice") == 0, 5, "the window to expire")
    assert throttle.hit("probe", "alice", window=1) == 1
