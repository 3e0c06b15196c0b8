import functools
import time
from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.test import Client
from django.utils import timezone

from rooms import ice, services, sql, waiting
from rooms.models import ChatMessage, Presence, Room, RoomBan, RoomModerator

pytestmark = pytest.mark.django_db


def create(client: Client, **fields):
    data = {"name": "Weekly sync", "capacity": 6, "kind": "video", **fields}
    return client.post("/rooms/new/", data)


def test_creating_a_room_redirects_to_its_page(client_for, alice):
    response = create(client_for(alice))
    room = Room.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/rooms/{room.slug}/"
    assert room.slug == "weekly-sync"
    assert room.owner == alice
    assert room.capacity == 6


@pytest.mark.parametrize("capacity", [1, 13, 0, -2])
def test_capacity_outside_2_to_12_is_refused_with_an_error(client_for, alice, capacity):
    response = create(client_for(alice), capacity=capacity)
    assert response.status_code == 400
    assert "capacity" in response.context["form"].errors
    assert not Room.objects.exists()


def test_the_database_refuses_a_capacity_out_of_range(alice):
    with pytest.raises(IntegrityError), transaction.atomic():
        Room.objects.create(name="x", slug="x", owner=alice, capacity=40)


def test_a_blank_name_is_refused(client_for, alice):
    response = create(client_for(alice), name="   ")
    assert response.status_code == 400
    assert "name" in response.context["form"].errors


def test_duplicate_names_get_distinct_slugs(client_for, alice, bob):
    create(client_for(alice))
    create(client_for(bob))
    create(client_for(bob))
    assert sorted(Room.objects.values_list("slug", flat=True)) == [
        "weekly-sync",
        "weekly-sync-2",
        "weekly-sync-3",
    ]


def test_a_name_with_no_latin_letters_still_gets_a_slug(client_for, alice):
    create(client_for(alice), name="每周例会")
    assert Room.objects.get().slug == "room"


def test_a_private_room_needs_a_password(client_for, alice):
    response = create(client_for(alice), is_private="on", password="")
    assert response.status_code == 400
    assert "password" in response.context["form"].errors


def test_a_private_room_password_is_stored_hashed(client_for, alice):
    create(client_for(alice), is_private="on", password="open sesame")
    room = Room.objects.get()
    assert room.password != "open sesame"
    assert room.check_password("open sesame")


def test_private_room_asks_for_password(client_for, alice, bob):
    room = services.create_room(owner=alice, name="Secret", is_private=True, password="s3cret")
    response = client_for(bob).get(f"/rooms/{room.slug}/")
    assert response.status_code == 200
    assert "rooms/room_password.html" in [t.name for t in response.templates]


def test_a_wrong_room_password_is_refused(client_for, alice, bob):
    room = services.create_room(owner=alice, name="Secret", is_private=True, password="s3cret")
    client = client_for(bob)
    response = client.post(f"/rooms/{room.slug}/", {"password": "guess"})
    assert response.status_code == 200
    assert "That password is not right." in response.content.decode()
    assert "rooms/room_password.html" in [
        t.name for t in client.get(f"/rooms/{room.slug}/").templates
    ]


def test_the_right_room_password_is_remembered_in_the_session(client_for, alice, bob):
    room = services.create_room(owner=alice, name="Secret", is_private=True, password="s3cret")
    client = client_for(bob)
    response = client.post(f"/rooms/{room.slug}/", {"password": "s3cret"})
    assert response.status_code == 302
    response = client.get(f"/rooms/{room.slug}/")
    assert "rooms/room.html" in [t.name for t in response.templates]


def test_the_owner_enters_a_private_room_without_the_password(client_for, alice):
    room = services.create_room(owner=alice, name="Secret", is_private=True, password="s3cret")
    response = client_for(alice).get(f"/rooms/{room.slug}/")
    assert "rooms/room.html" in [t.name for t in response.templates]


def test_a_closed_room_is_a_friendly_404(client_for, alice, room):
    services.close_room(room)
    response = client_for(alice).get(f"/rooms/{room.slug}/")
    assert response.status_code == 404
    assert "no open room" in response.content.decode()


def test_an_unknown_room_is_a_404(client_for, alice):
    assert client_for(alice).get("/rooms/nowhere/").status_code == 404


def test_the_room_page_hands_its_settings_to_scripts_through_json_script(client_for, alice, room):
    content = client_for(alice).get(f"/rooms/{room.slug}/").content.decode()
    assert '<script id="room-config" type="application/json">' in content
    assert f'"ws_path": "/ws/rooms/{room.slug}/"' in content


TURN_PAGE = {
    "TURN_URLS": ["turn:turn.example.org:3478?transport=udp"],
    "TURN_SECRET": "north-wind-secret",
    "STUN_URLS": [],
    "TURN_CREDENTIAL_TTL": 600,
}


def test_a_mesh_room_page_carries_fresh_turn_credentials_of_its_own(
    client_for, alice, room, settings
):
    # For the connection the page makes on the pre-join screen, before the welcome brings
    # the seat's (static/js/transport/mesh.js, "prime").
    for name, value in TURN_PAGE.items():
        setattr(settings, name, value)
    client = client_for(alice)
    config = client.get(f"/rooms/{room.slug}/").context["config"]
    (turn,) = config["ice_servers"]
    expiry, ident = turn["username"].split(":")
    assert ident.startswith("page-")
    assert int(expiry) >= time.time() + 599
    assert turn["credential"] == ice.turn_credential("north-wind-secret", turn["username"])
    assert config["ice_transport_policy"] == "all"
    # Good for a first connection as long as a refresh would not have replaced them yet.
    assert config["ice_fresh_seconds"] == 150
    content = client.get(f"/rooms/{room.slug}/").content.decode()
    assert "north-wind-secret" not in content
    again = client.get(f"/rooms/{room.slug}/").context["config"]["ice_servers"][0]
    assert again["username"].split(":")[1] != ident  # each page its own name in coturn's logs


def test_an_sfu_room_page_carries_no_turn_credentials(client_for, alice, room, settings):
    # Its connections go to Janus, with what the welcome brings.
    for name, value in TURN_PAGE.items():
        setattr(settings, name, value)
    room.media = Room.Media.SFU
    room.save()
    config = client_for(alice).get(f"/rooms/{room.slug}/").context["config"]
    assert "ice_servers" not in config
    assert "ice_fresh_seconds" not in config


def test_chat_bodies_are_limited_by_the_database(alice, room):
    with pytest.raises(IntegrityError), transaction.atomic():
        ChatMessage.objects.create(room=room, author=alice, author_name="Alice", body="")
    with pytest.raises(IntegrityError), transaction.atomic():
        ChatMessage.objects.create(room=room, author=alice, author_name="Alice", body="x" * 2001)


def test_older_chat_pages_are_served_to_members(client_for, alice, room):
    for n in range(60):
        services.post_chat(room_id=room.pk, user=alice, author_name="Alice", body=f"m{n}")
    client = client_for(alice)
    first = client.get(f"/rooms/{room.slug}/messages").json()
    assert [m["body"] for m in first["messages"]][-1] == "m59"
    assert len(first["messages"]) == 50
    older = client.get(f"/rooms/{room.slug}/messages?before={first['messages'][0]['id']}").json()
    assert [m["body"] for m in older["messages"]] == [f"m{n}" for n in range(10)]
    assert older["has_more"] is False


def test_chat_pages_of_a_private_room_are_refused_to_outsiders(client_for, alice, bob):
    room = services.create_room(owner=alice, name="Secret", is_private=True, password="s3cret")
    assert client_for(bob).get(f"/rooms/{room.slug}/messages").status_code == 403


def test_a_bad_before_parameter_is_a_clear_error(client_for, alice, room):
    response = client_for(alice).get(f"/rooms/{room.slug}/messages?before=abc")
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"


def test_only_the_owner_and_staff_are_offered_to_make_moderators(
    client_for, alice, bob, dana, room
):
    RoomModerator.objects.create(room=room, user=bob, granted_by=alice)

    def can_promote(user):
        response = client_for(user).get(f"/rooms/{room.slug}/")
        return response.context["config"]["can_promote"]

    assert (can_promote(alice), can_promote(bob), can_promote(dana)) == (True, False, True)


def seat(room: Room, user: User) -> Presence:
    return Presence.objects.create(
        room=room, user=user, peer_id=services.new_peer_id(), channel_name="c", name=user.username
    )


def door(
    room: Room, user: User
) -> tuple[tuple[int, int, int, bool, bool, str | None], datetime | None]:
    """What the join's door reads of `user` (plain SQL), and the end of their longest ban."""
    with transaction.atomic():
        locked = services._lock_for_admission(room.slug, user.pk)
    assert locked is not None
    facts = locked[1]
    until = services.banned_until(room, user.pk) if facts.user_is_banned else None
    as_tuple = (
        facts.occupancy,
        facts.user_connections,
        facts.user_connections_here,
        facts.user_is_listed_moderator,
        facts.user_is_banned,
        facts.profile_name,
    )
    return as_tuple, until


def test_the_doors_facts_agree_with_the_orm(alice, bob, charlie, room):
    # The join reads these in plain SQL (rooms/services.py, _admission_sql); the ORM's
    # answer, and RoomBan.objects.active(), are what they must agree with.
    other = services.create_room(owner=alice, name="Other", capacity=6)
    seat(room, alice)
    seat(room, bob)
    seat(room, bob)
    seat(other, bob)
    seat(other, charlie)
    RoomModerator.objects.create(room=room, user=charlie, granted_by=alice)
    now = timezone.now()
    ban = functools.partial(RoomBan.objects.create, room=room, banned_by=alice)
    ban(user=alice, lifted_at=now)
    ban(user=alice, expires_at=now - timedelta(seconds=1))
    ban(user=bob, expires_at=now + timedelta(minutes=5))
    longest = ban(user=bob, expires_at=now + timedelta(minutes=30))
    ban(user=bob, room=other)  # until lifted, but in another room
    ban(user=charlie, expires_at=now + timedelta(minutes=5))
    ban(user=charlie)  # until lifted: the longest of all

    erin = User.objects.create_user("erin")  # made by hand: no profile
    for user in (alice, bob, charlie, erin):
        active = RoomBan.objects.active().filter(room=room, user=user)
        assert door(room, user)[0] == (
            Presence.objects.filter(room=room).count(),
            Presence.objects.filter(user=user).count(),
            Presence.objects.filter(room=room, user=user).count(),
            RoomModerator.objects.filter(room=room, user=user).exists(),
            active.exists(),
            getattr(getattr(user, "profile", None), "display_name", None),
        )
    assert door(room, alice) == ((3, 1, 1, False, False, "Alice"), None)
    assert door(room, bob) == ((3, 3, 2, False, True, "Bob"), longest.expires_at)
    assert door(room, charlie) == ((3, 1, 0, True, True, "Charlie"), None)
    assert door(room, erin) == ((3, 0, 0, False, False, None), None)


def test_the_welcome_lists_what_the_orm_does(alice, bob, charlie, dana, room, settings):
    # welcome_facts reads the peers and the history in plain SQL (rooms/services.py,
    # _welcome_sql): the ORM's room_peers and chat_history are what it must agree with.
    settings.CHAT_HISTORY_SIZE = 3
    other = services.create_room(owner=alice, name="Other", capacity=6)
    mine, bobs = seat(room, alice), seat(room, bob)
    first = seat(room, charlie)  # the last row, but the first to join (a resumed seat)
    Presence.objects.filter(pk=first.pk).update(joined_at=timezone.now() - timedelta(minutes=1))
    seat(other, bob)
    say = functools.partial(ChatMessage.objects.create, author=bob, author_name="Bob")
    for n in range(5):
        say(room=room, body=f"hello {n}")
    say(room=room, body="hidden", hidden_at=timezone.now())
    say(room=other, body="elsewhere")
    waiting.knock(room, dana, channel_name="w", is_guest=False)

    facts = services.welcome_facts(room, exclude=mine.peer_id, moderator=True)

    peers = Presence.objects.filter(room=room).exclude(peer_id=mine.peer_id)
    assert [p.pk for p in facts.peers] == [p.pk for p in peers] == [first.pk, bobs.pk]
    assert [p.as_peer() for p in facts.peers] == [p.as_peer() for p in peers]
    assert facts.history == [m.as_event() for m in services.chat_history(room)]
    assert [m["body"] for m in facts.history] == ["hello 2", "hello 3", "hello 4"]
    assert facts.waiting == waiting.queue(room.pk) != []
    assert services.welcome_facts(room, exclude=mine.peer_id).waiting == []


def test_a_leave_reads_the_room_as_the_orm_does(alice, bob, charlie, room):
    # leave_room finds, removes and summarizes in plain SQL (rooms/services.py, _leave_sql).
    first, going = seat(room, charlie), seat(room, alice)
    last = seat(room, bob)
    Presence.objects.filter(pk=first.pk).update(joined_at=timezone.now() + timedelta(minutes=1))

    left = services.leave_room(going.peer_id, going.channel_name)

    assert left is not None
    assert (left.presence.pk, left.presence.peer_id) == (going.pk, going.peer_id)
    assert not Presence.objects.filter(pk=going.pk).exists()
    room.refresh_from_db()
    assert left.lobby["room"] == services.room_summary(room)
    assert left.lobby["room"]["names"] == [last.name, first.name]
    assert services.leave_room(going.peer_id, going.channel_name) is None
    assert services.leave_room(last.peer_id, "another socket") is None
    assert Presence.objects.filter(pk=last.pk).exists()


def test_a_seat_written_in_plain_sql_reads_back_as_the_orm_would_write_it(alice, room):
    made = sql.insert(Presence(room=room, user=alice, peer_id="p1", channel_name="c", name="Alice"))
    kept = Presence.objects.create(
        room=room,
        user=alice,
        peer_id="p2",
        channel_name="c",
        name="Alice",
        joined_at=made.joined_at,
        last_seen=made.last_seen,
    )
    fields = [
        f.attname for f in Presence._meta.concrete_fields if f.attname not in ("id", "peer_id")
    ]
    read = Presence.objects.get(pk=made.pk)
    assert made.pk is not None
    assert not made._state.adding
    assert [getattr(read, f) for f in fields] == [getattr(made, f) for f in fields]
    assert [getattr(read, f) for f in fields] == [
        getattr(Presence.objects.get(pk=kept.pk), f) for f in fields
    ]
