"""The waiting room (rooms/waiting.py, docs/protocol.md "The waiting room"): who waits, what
moderators see, admissions that never overfill a room, declines."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from rooms import services
from rooms.models import Knock, ModerationAction, Presence, Room

pytestmark = pytest.mark.django_db(transaction=True)


async def make_room(owner, *, waiting_room=Room.Waiting.EVERYONE, capacity=4, name="Town hall"):
    return await database_sync_to_async(services.create_room)(
        owner=owner, name=name, capacity=capacity, waiting_room=waiting_room
    )


async def wait(join, user, room, **kw):
    """`user` knocks: their first message is `waiting`, not `welcome`."""
    peer = await join(user, room, expect_welcome=False, **kw)
    assert peer.welcome["type"] == "waiting", peer.welcome
    return peer


async def test_someone_the_room_asks_to_wait_holds_no_seat_and_the_moderator_sees_them(
    alice, bob, join
):
    room = await make_room(alice)
    a = await join(alice, room)  # the owner is a moderator: never waits
    assert a.welcome["waiting"] == []
    assert a.welcome["room"]["waiting_room"] == "everyone"
    b = await wait(join, bob, room)
    assert b.welcome["moderators_present"] is True
    assert await database_sync_to_async(Presence.objects.count)() == 1  # Alice's only
    queue = (await a.receive_type("waiting-room"))["queue"]
    assert [(q["name"], q["is_guest"]) for q in queue] == [("Bob", False)]
    assert queue[0]["waiting_id"] == b.welcome["waiting_id"]
    # Nobody else hears of Bob: he is not in the call.
    assert await a.nothing()


async def test_a_moderator_admits_and_the_waiting_person_is_welcomed_into_the_call(
    alice, bob, charlie, join
):
    room = await make_room(alice)
    a = await join(alice, room)
    b = await wait(join, bob, room)
    await a.receive_type("waiting-room")
    await a.send({"type": "admit", "waiting_id": b.welcome["waiting_id"]})
    welcome = await b.receive_type("welcome")
    assert [p["name"] for p in welcome["peers"]] == ["Alice"]
    assert welcome["resume_token"]
    # The queue changes as the admission commits; Bob announces himself once welcomed.
    assert (await a.receive_type("waiting-room"))["queue"] == []
    joined = await a.receive_type("peer-joined")
    assert joined["peer"]["peer_id"] == welcome["self"]["peer_id"]
    # Bob is in the call for real: he can talk, and a latecomer meets him.
    await b.send({"type": "chat", "body": "thanks for letting me in"})
    assert (await a.receive_type("chat"))["body"] == "thanks for letting me in"
    assert await database_sync_to_async(Knock.objects.count)() == 0
    kinds = await database_sync_to_async(
        lambda: list(ModerationAction.objects.values_list("kind", "target_user__username"))
    )()
    assert kinds == [("admit", "bob")]


async def test_a_declined_person_is_told_so(alice, bob, join):
    room = await make_room(alice)
    a = await join(alice, room)
    b = await wait(join, bob, room)
    await a.send({"type": "decline", "waiting_id": b.welcome["waiting_id"]})
    closing = await b.receive_type("closing")
    assert (closing["code"], closing["refusal"]) == (4403, "declined")
    assert (await b.receive_type("__closed__"))["code"] == 4403
    assert await database_sync_to_async(Knock.objects.count)() == 0


async def test_an_admission_into_a_full_room_is_refused_and_the_person_keeps_waiting(
    alice, bob, charlie, join
):
    room = await make_room(alice, capacity=2)
    a = await join(alice, room)
    b = await wait(join, bob, room)
    c = await wait(join, charlie, room)
    await a.send({"type": "admit-all"})
    error = await a.receive_type("error")
    assert (error["code"], error["detail"], error["ref"]) == ("full", "full", "admit-all")
    await b.receive_type("welcome")  # the oldest first
    await a.send({"type": "admit", "waiting_id": c.welcome["waiting_id"]})
    error = await a.receive_type("error")
    assert (error["code"], error["detail"]) == ("full", "full")
    assert await database_sync_to_async(Presence.objects.count)() == 2
    assert await database_sync_to_async(Knock.objects.count)() == 1  # Charlie still waits
    # A seat comes free: now Charlie fits.
    await b.send({"type": "leave"})
    await a.receive_type("peer-left")
    await a.send({"type": "admit", "waiting_id": c.welcome["waiting_id"]})
    await c.receive_type("welcome")


async def test_closing_the_socket_leaves_the_queue(alice, bob, join):
    room = await make_room(alice)
    a = await join(alice, room)
    b = await wait(join, bob, room)
    await a.receive_type("waiting-room")
    await b.close()
    assert (await a.receive_type("waiting-room"))["queue"] == []
    await a.send({"type": "admit", "waiting_id": b.welcome["waiting_id"]})
    error = await a.receive_type("error")
    assert (error["code"], error["detail"]) == ("not_found", "no_waiting")


async def test_a_waiting_socket_may_only_ping_and_leave(alice, bob, join):
    room = await make_room(alice)
    b = await wait(join, bob, room)
    await b.send({"type": "chat", "body": "let me in"})
    error = await b.receive_type("error")
    assert (error["code"], error["detail"], error["ref"]) == ("forbidden", "waiting", "chat")
    await b.send({"type": "ping", "id": "1"})
    assert await b.receive_type("pong") == {"type": "pong", "id": "1"}
    await b.send({"type": "leave"})
    assert (await b.receive_type("__closed__"))["code"] == 1000
    assert await database_sync_to_async(Knock.objects.count)() == 0


async def test_a_waiting_person_hears_whether_a_moderator_is_in_the_call(
    alice, bob, join, settings
):
    settings.WAITING_POLL_INTERVAL = 0.1
    room = await make_room(alice)
    b = await wait(join, bob, room)
    assert b.welcome["moderators_present"] is False
    a = await join(alice, room)
    assert (await b.receive_type("waiting"))["moderators_present"] is True
    await a.send({"type": "leave"})
    assert (await b.receive_type("waiting"))["moderators_present"] is False


async def test_only_moderators_admit_decline_and_change_the_waiting_room(alice, bob, charlie, join):
    room = await make_room(alice, waiting_room=Room.Waiting.OFF)
    await join(alice, room)
    b = await join(bob, room)
    for message in [
        {"type": "admit", "waiting_id": "x"},
        {"type": "admit-all"},
        {"type": "decline", "waiting_id": "x"},
        {"type": "waiting-room", "mode": "everyone"},
    ]:
        await b.send(message)
        error = await b.receive_type("error")
        assert (error["code"], error["detail"]) == ("forbidden", "not_moderator"), message
    await b.send({"type": "waiting-room", "mode": "sometimes"})
    assert (await b.receive_type("error"))["code"] == "bad_message"
    assert await database_sync_to_async(Knock.objects.count)() == 0
    # Nobody waits in a room without a waiting room.
    c = await join(charlie, room)
    assert c.welcome["type"] == "welcome"


async def test_guests_wait_and_members_do_not_when_only_guests_are_asked(alice, bob, join):
    from tests.rooms.test_guests import become_guest, cookie_of, make_link

    room = await make_room(alice, waiting_room=Room.Waiting.GUESTS)
    a = await join(alice, room)
    b = await join(bob, room)
    assert b.welcome["type"] == "welcome"
    link = await database_sync_to_async(make_link)(room, alice)
    cookie = await database_sync_to_async(cookie_of)(
        await database_sync_to_async(become_guest)(link)
    )
    e = await join(None, room, cookie=cookie, expect_welcome=False)
    assert e.welcome["type"] == "waiting"
    queue = (await a.receive_type("waiting-room"))["queue"]
    assert [(q["name"], q["is_guest"]) for q in queue] == [("Erin", True)]


async def test_turning_the_waiting_room_off_lets_the_waiting_in(alice, bob, join):
    room = await make_room(alice)
    a = await join(alice, room)
    b = await wait(join, bob, room)
    await a.send({"type": "waiting-room", "mode": "off"})
    updated = await a.receive_type("room-updated")
    assert updated == {"type": "room-updated", "locked": False, "waiting_room": "off"}
    await b.receive_type("welcome")
    assert (await database_sync_to_async(Room.objects.get)(pk=room.pk)).waiting_room == "off"


async def test_a_promoted_moderator_sees_the_queue(alice, bob, charlie, join):
    room = await make_room(alice, waiting_room=Room.Waiting.OFF)
    a = await join(alice, room)
    b = await join(bob, room)
    await a.receive_type("peer-joined")
    await a.send({"type": "waiting-room", "mode": "everyone"})
    c = await wait(join, charlie, room)
    await a.send({"type": "promote", "peer_id": b.peer_id})
    await b.receive_type("role")
    queue = (await b.receive_type("waiting-room"))["queue"]
    assert [q["waiting_id"] for q in queue] == [c.welcome["waiting_id"]]
