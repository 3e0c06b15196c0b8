"""Hands and reactions on the call websocket (docs/protocol.md, `hand` and `reaction`)."""

from datetime import datetime

import pytest
from channels.db import database_sync_to_async
from django.test import override_settings

from rooms import meeting
from rooms.models import ModerationAction, Presence

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_raised_hand_reaches_everyone_with_the_servers_time(alice, bob, room, join):
    a = await join(alice, room)
    b = await join(bob, room)
    await b.send({"type": "hand", "raised": True})
    for someone in (a, b):  # the sender's copy is its acknowledgement
        hand = await someone.receive_type("hand")
        assert hand["peer_id"] == b.peer_id
        assert hand["by_moderator"] is False
        assert datetime.fromisoformat(hand["raised_at"])
    await b.send({"type": "hand", "raised": False})
    lowered = await a.receive_type("hand")
    assert (lowered["peer_id"], lowered["raised_at"]) == (b.peer_id, None)


async def test_raising_a_raised_hand_keeps_its_place_in_the_queue(alice, bob, charlie, room, join):
    a = await join(alice, room)
    b = await join(bob, room)
    c = await join(charlie, room)
    await b.send({"type": "hand", "raised": True})
    first = await a.receive_type("hand")
    await c.send({"type": "hand", "raised": True})
    await a.receive_type("hand")
    await b.send({"type": "hand", "raised": True})  # again: a second click, another tab
    again = await a.receive_type("hand")
    assert again["raised_at"] == first["raised_at"]
    queue = await database_sync_to_async(meeting.hand_queue)(room.pk)
    assert [seat.name for seat in queue] == ["Bob", "Charlie"]


async def test_a_newcomer_sees_whose_hand_is_up_and_a_resumed_seat_keeps_its_hand(
    alice, bob, charlie, room, join
):
    a = await join(alice, room)
    b = await join(bob, room)
    await b.send({"type": "hand", "raised": True})
    raised = (await a.receive_type("hand"))["raised_at"]
    c = await join(charlie, room)
    assert {p["name"]: p["hand"] for p in c.welcome["peers"]} == {"Alice": None, "Bob": raised}

    await b.close()
    back = await join(bob, room, query=f"?resume={b.welcome['resume_token']}")
    assert back.welcome["resumed"] is True
    assert back.welcome["self"]["hand"] == raised


async def test_a_moderator_lowers_someones_hand_and_it_is_recorded(alice, bob, room, join):
    a = await join(alice, room)  # the owner
    b = await join(bob, room)
    await b.send({"type": "hand", "raised": True})
    for someone in (a, b):
        await someone.receive_type("hand")
    await a.send({"type": "lower-hand", "peer_id": b.peer_id})
    for someone in (a, b):
        hand = await someone.receive_type("hand")
        assert (hand["peer_id"], hand["raised_at"], hand["by_moderator"]) == (
            b.peer_id,
            None,
            True,
        )
    seat = await database_sync_to_async(Presence.objects.get)(peer_id=b.peer_id)
    assert seat.hand_raised_at is None
    kinds = await database_sync_to_async(list)(
        ModerationAction.objects.values_list("kind", "target_user__username")
    )
    assert kinds == [("lower_hand", "bob")]


async def test_only_a_moderator_lowers_another_persons_hand(alice, bob, room, join):
    a = await join(alice, room)
    b = await join(bob, room)
    await a.send({"type": "hand", "raised": True})
    await b.receive_type("hand")
    await b.send({"type": "lower-hand", "peer_id": a.peer_id})
    refused = await b.receive_type("error")
    assert (refused["code"], refused["detail"], refused["ref"]) == (
        "forbidden",
        "not_moderator",
        "lower-hand",
    )
    seat = await database_sync_to_async(Presence.objects.get)(peer_id=a.peer_id)
    assert seat.hand_raised_at is not None


async def test_a_reaction_reaches_everyone_and_nothing_is_stored(alice, bob, room, join):
    a = await join(alice, room)
    b = await join(bob, room)
    await a.send({"type": "reaction", "reaction": "clap"})
    for someone in (a, b):
        assert await someone.receive_type("reaction") == {
            "type": "reaction",
            "from": a.peer_id,
            "reaction": "clap",
        }
    assert a.welcome["reactions"] == list(meeting.REACTIONS)


async def test_a_reaction_the_server_does_not_know_is_refused_and_goes_nowhere(
    alice, bob, room, join
):
    a = await join(alice, room)
    b = await join(bob, room)
    for odd in ("<script>", "🦄", None, 7):
        await a.send({"type": "reaction", "reaction": odd})
        refused = await a.receive_type("error")
        assert (refused["code"], refused["detail"], refused["ref"]) == (
            "bad_message",
            "invalid_field",
            "reaction",
        )
    assert await b.nothing()


@override_settings(
    RATE_LIMITS={"signal": (50, 200), "chat": (1, 5), "other": (5, 30), "reaction": (0.1, 3)}
)
async def test_reactions_beyond_their_limit_are_dropped_and_said_to_be(alice, bob, room, join):
    a = await join(alice, room)
    b = await join(bob, room)
    for _ in range(4):
        await a.send({"type": "reaction", "reaction": "heart"})
    refused = await a.receive_type("error")
    assert (refused["code"], refused["ref"]) == ("rate_limited", "reaction")
    got = [await b.receive_type("reaction") for _ in range(3)]
    assert [r["reaction"] for r in got] == ["heart"] * 3
    assert await b.nothing()
    # Chat has its own bucket: the reactions did not use it up.
    await a.send({"type": "chat", "body": "still here"})
    assert (await b.receive_type("chat"))["body"] == "still here"


async def test_a_moderators_recording_is_announced_to_everyone_and_to_latecomers(
    alice, bob, charlie, room, join
):
    a = await join(alice, room)  # the owner
    b = await join(bob, room)
    await a.send({"type": "recording", "on": True})
    for someone in (a, b):  # the recorder's page starts on its copy
        started = await someone.receive_type("recording")
        assert (started["peer_id"], started["name"]) == (a.peer_id, "Alice")
        assert datetime.fromisoformat(started["since"])
    await a.send({"type": "recording", "on": True})  # again: nothing new to say
    c = await join(charlie, room)
    assert c.welcome["recordings"] == [{k: v for k, v in started.items() if k != "type"}]
    assert b.welcome["recordings"] == []
    assert (await b.receive())["type"] == "peer-joined"  # Charlie; no second `recording`
    assert await b.nothing(0.3)
    await a.send({"type": "recording", "on": False})
    for someone in (a, b, c):
        stopped = await someone.receive_type("recording")
        assert (stopped["peer_id"], stopped["since"]) == (a.peer_id, None)


async def test_only_a_moderator_may_record(alice, bob, room, join):
    a = await join(alice, room)
    b = await join(bob, room)
    await a.receive_type("peer-joined")
    await b.send({"type": "recording", "on": True})
    refused = await b.receive_type("error")
    assert (refused["code"], refused["detail"], refused["ref"]) == (
        "forbidden",
        "not_moderator",
        "recording",
    )
    assert await a.nothing()
    seat = await database_sync_to_async(Presence.objects.get)(peer_id=b.peer_id)
    assert seat.recording_since is None


async def test_a_recording_ends_for_everyone_when_its_socket_drops(alice, bob, room, join):
    a = await join(alice, room)
    b = await join(bob, room)
    await a.send({"type": "recording", "on": True})
    await b.receive_type("recording")
    await a.close()  # the seat is held for a resume; the recording is not
    stopped = await b.receive_type("recording")
    assert (stopped["peer_id"], stopped["since"]) == (a.peer_id, None)
    back = await join(alice, room, query=f"?resume={a.welcome['resume_token']}")
    assert back.welcome["resumed"] is True
    seat = await database_sync_to_async(Presence.objects.get)(peer_id=a.peer_id)
    assert seat.recording_since is None
