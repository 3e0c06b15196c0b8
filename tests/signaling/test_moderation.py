"""Moderation from the call page and the admin site, enforced by the server."""

from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from rooms import moderation
from rooms.models import ChatMessage, ModerationAction, Presence, Room, RoomBan, RoomModerator

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def call(alice, bob, charlie, room, join):
    """Alice (owner, moderator), Bob and Charlie in one call, introductions consumed."""
    a = await join(alice, room)
    b = await join(bob, room)
    c = await join(charlie, room)
    await a.receive_type("peer-joined")
    await a.receive_type("peer-joined")
    await b.receive_type("peer-joined")
    return a, b, c


def audit():
    return list(
        ModerationAction.objects.values_list(
            "kind", "source", "actor__username", "target_user__username"
        )
    )


async def test_a_moderator_kicks_and_the_server_closes_the_target(call, bob, room, join):
    a, b, c = call
    await a.send({"type": "kick", "peer_id": b.peer_id, "reason": "spam"})
    closed = await b.receive_type("__closed__")
    assert (closed["code"], closed["reason"]) == (4403, "removed by a moderator")
    for other in (a, c):
        assert await other.receive_type("peer-left") == {
            "type": "peer-left",
            "peer_id": b.peer_id,
            "reason": "kicked",
        }
    assert not await database_sync_to_async(Presence.objects.filter(user=bob).exists)()
    assert await database_sync_to_async(audit)() == [("kick", "call", "alice", "bob")]
    # A kick is not a ban: Bob may come back.
    again = await join(bob, room)
    assert again.welcome["type"] == "welcome"


async def test_non_moderators_are_forbidden_and_nothing_changes(call, bob):
    a, b, c = call
    for message in [
        {"type": "kick", "peer_id": a.peer_id},
        {"type": "ban", "peer_id": a.peer_id},
        {"type": "mute", "peer_id": a.peer_id},
        {"type": "stop-video", "peer_id": a.peer_id},
        {"type": "lock"},
        {"type": "unlock"},
        {"type": "end"},
        {"type": "promote", "peer_id": c.peer_id},
    ]:
        await b.send(message)
        error = await b.receive_type("error")
        assert (error["code"], error["ref"]) == ("forbidden", message["type"])
    assert await database_sync_to_async(Presence.objects.count)() == 3
    assert await database_sync_to_async(audit)() == []
    assert await a.nothing()


async def test_a_ban_removes_and_keeps_out_until_it_expires(call, bob, room, join):
    a, b, c = call
    await a.send({"type": "ban", "peer_id": b.peer_id, "reason": "abuse", "minutes": 30})
    closed = await b.receive_type("__closed__")
    assert (closed["code"], closed["reason"]) == (4403, "you are banned from this room")
    assert (await c.receive_type("peer-left"))["reason"] == "banned"
    the_ban = await database_sync_to_async(RoomBan.objects.get)()
    assert the_ban.reason == "abuse"
    assert timedelta(minutes=29) < the_ban.expires_at - timezone.now() <= timedelta(minutes=30)

    refused = await join(bob, room, expect_welcome=False)
    assert (refused.welcome["code"], refused.welcome["reason"]) == (
        4403,
        "you are banned from this room",
    )

    the_ban.expires_at = timezone.now() - timedelta(seconds=1)
    await database_sync_to_async(the_ban.save)()
    assert (await join(bob, room)).welcome["type"] == "welcome"


async def test_a_lifted_ban_lets_the_person_back(alice, bob, room, join):
    the_ban = await database_sync_to_async(RoomBan.objects.create)(
        room=room, user=bob, banned_by=alice
    )
    await database_sync_to_async(moderation.lift_ban)(the_ban, moderation.Actor(alice, "admin"))
    assert (await join(bob, room)).welcome["type"] == "welcome"


async def test_mute_and_stop_video_are_requested_and_marked_by_the_server(call, bob):
    a, b, c = call
    await a.send({"type": "mute", "peer_id": b.peer_id})
    assert await b.receive_type("moderator-request") == {
        "type": "moderator-request",
        "action": "mute",
    }
    seen = await c.receive_type("media")
    assert seen == {
        "type": "media",
        "from": b.peer_id,
        "audio": False,
        "video": True,
        "screen": False,
        "by_moderator": True,
    }
    await a.send({"type": "stop-video", "peer_id": b.peer_id})
    assert (await b.receive_type("moderator-request"))["action"] == "stop-video"
    presence = await database_sync_to_async(Presence.objects.get)(user=bob)
    assert (presence.audio, presence.video) == (False, False)


async def test_a_locked_room_refuses_newcomers_but_keeps_who_is_inside(
    call, alice, room, join, dana
):
    a, b, c = call
    await a.send({"type": "lock"})
    for peer in (a, b, c):
        assert await peer.receive_type("room-updated") == {
            "type": "room-updated",
            "locked": True,
            "waiting_room": "off",
        }
    from tests.conftest import make_user

    erin = await database_sync_to_async(make_user)("erin", "Erin")
    refused = await join(erin, room, expect_welcome=False)
    assert (refused.welcome["code"], refused.welcome["reason"]) == (4403, "room is locked")
    await b.send({"type": "ping"})
    assert (await b.receive_type("pong"))["type"] == "pong"
    await a.send({"type": "unlock"})
    await a.receive_type("room-updated")
    assert (await join(erin, room)).welcome["room"]["locked"] is False


async def test_ending_the_meeting_closes_everyone_and_the_room(call, room, join, bob):
    a, b, c = call
    await a.send({"type": "end"})
    for peer in (a, b, c):
        closed = await peer.receive_type("__closed__")
        assert (closed["code"], closed["reason"]) == (4410, "the meeting was ended by a moderator")
    refreshed = await database_sync_to_async(Room.objects.get)(pk=room.pk)
    assert refreshed.closed_at is not None
    assert await database_sync_to_async(Presence.objects.count)() == 0
    assert (await join(bob, room, expect_welcome=False)).welcome["code"] == 4404


async def test_a_hidden_message_disappears_everywhere_and_from_later_history(
    call, room, join, dana
):
    a, b, c = call
    await b.send({"type": "chat", "body": "something rude"})
    sent = await b.receive_type("chat")
    await a.receive_type("chat")
    await a.send({"type": "hide-chat", "id": sent["id"]})
    for peer in (a, b, c):
        assert await peer.receive_type("chat-hidden") == {"type": "chat-hidden", "id": sent["id"]}
    stored = await database_sync_to_async(ChatMessage.objects.select_related("hidden_by").get)()
    assert stored.hidden_at is not None
    assert stored.hidden_by.username == "alice"
    assert stored.body == "something rude"  # kept for the audit trail
    later = await join(dana, room)
    assert later.welcome["history"] == []


async def test_hiding_a_message_of_another_room_is_not_found(call, alice):
    a, _b, _c = call
    await a.send({"type": "hide-chat", "id": 999999})
    assert (await a.receive_type("error"))["code"] == "not_found"


async def test_a_moderator_the_owner_made_cannot_make_more_moderators(call, charlie, room, join):
    a, b, c = call
    await a.send({"type": "promote", "peer_id": c.peer_id})
    await c.receive_type("role")
    await c.send({"type": "promote", "peer_id": b.peer_id})
    assert (await c.receive_type("error"))["code"] == "forbidden"
    assert await database_sync_to_async(RoomModerator.objects.filter(room=room).count)() == 1


async def test_the_owner_makes_a_moderator_who_can_then_moderate(call, charlie, room, join):
    a, b, c = call
    await a.send({"type": "promote", "peer_id": c.peer_id})
    for peer in (a, b, c):
        assert await peer.receive_type("role") == {
            "type": "role",
            "peer_id": c.peer_id,
            "is_moderator": True,
        }
    await c.send({"type": "mute", "peer_id": b.peer_id})
    assert (await b.receive_type("moderator-request"))["action"] == "mute"
    # The grant outlives the connection.
    await c.send({"type": "leave"})
    again = await join(charlie, room)
    assert again.welcome["self"]["is_moderator"] is True


async def test_nobody_can_remove_the_owner(call, dana, room, join):
    a, _b, _c = call
    staff = await join(dana, room)
    await staff.send({"type": "kick", "peer_id": a.peer_id})
    assert (await staff.receive_type("error"))["code"] == "forbidden"


async def test_staff_moderate_any_room(call, dana, room, join):
    _a, b, _c = call
    staff = await join(dana, room)
    assert staff.welcome["self"]["is_moderator"] is True
    await staff.send({"type": "kick", "peer_id": b.peer_id})
    assert (await b.receive_type("__closed__"))["code"] == 4403


async def test_moderation_messages_are_validated(call):
    a, b, _c = call
    await a.send({"type": "ban", "peer_id": b.peer_id, "minutes": 0})
    assert (await a.receive_type("error"))[
        "message"
    ] == "minutes must be a whole number from 1 to 525600, or null"
    await a.send({"type": "kick", "peer_id": b.peer_id, "reason": "nul\x00"})
    assert (await a.receive_type("error"))["message"] == "reason must not contain NUL characters"
    await a.send({"type": "hide-chat", "id": "7"})
    assert (await a.receive_type("error"))["message"] == "id must be a chat message id"
    await a.send({"type": "kick", "peer_id": "nobody"})
    assert (await a.receive_type("error"))["code"] == "not_found"


# --- From the admin site -----------------------------------------------------------------


async def admin_post(client, url, action, ids):
    return await database_sync_to_async(client.post)(
        url, {"action": action, "_selected_action": [str(i) for i in ids]}, follow=True
    )


async def test_staff_end_a_meeting_from_the_admin_and_live_calls_close(
    call, dana, room, client_for
):
    a, b, c = call
    client = await database_sync_to_async(client_for)(dana)
    response = await admin_post(client, "/admin/rooms/room/", "end_meetings", [room.pk])
    assert "Ended 1 meeting(s)." in response.content.decode()
    for peer in (a, b, c):
        assert (await peer.receive_type("__closed__"))["code"] == 4410
    assert await database_sync_to_async(audit)() == [("end", "admin", "dana", None)]


async def test_staff_kick_and_ban_from_the_admin_presence_list(
    call, dana, bob, charlie, client_for
):
    a, b, c = call
    client = await database_sync_to_async(client_for)(dana)
    bob_seat = await database_sync_to_async(Presence.objects.get)(user=bob)
    await admin_post(client, "/admin/rooms/presence/", "kick", [bob_seat.pk])
    assert (await b.receive_type("__closed__"))["reason"] == "removed by a moderator"
    charlie_seat = await database_sync_to_async(Presence.objects.get)(user=charlie)
    await admin_post(client, "/admin/rooms/presence/", "ban_hour", [charlie_seat.pk])
    assert (await c.receive_type("__closed__"))["reason"] == "you are banned from this room"
    assert (await a.receive_type("peer-left"))["reason"] == "kicked"
    assert (await a.receive_type("peer-left"))["reason"] == "banned"
    kinds = await database_sync_to_async(audit)()
    assert sorted(kinds) == [("ban", "admin", "dana", "charlie"), ("kick", "admin", "dana", "bob")]


async def test_staff_hide_a_message_from_the_admin(call, dana, client_for):
    _a, b, c = call
    await b.send({"type": "chat", "body": "hide me"})
    sent = await b.receive_type("chat")
    client = await database_sync_to_async(client_for)(dana)
    await admin_post(client, "/admin/rooms/chatmessage/", "hide_messages", [sent["id"]])
    assert (await c.receive_type("chat-hidden"))["id"] == sent["id"]


async def test_the_admin_room_list_shows_who_is_in_the_call(call, dana, client_for):
    client = await database_sync_to_async(client_for)(dana)
    response = await database_sync_to_async(client.get)("/admin/rooms/room/")
    assert "3 / 4: Alice, Bob, Charlie" in response.content.decode()
