"""SFU rooms: offered only with a Janus server, up to 50 people, placed on the least
loaded server and kept there (docs/deployment.md, "Janus (SFU)")."""

import pytest
from django.db import IntegrityError, transaction
from django.test import Client, override_settings

from rooms import services
from rooms.models import Presence, Room
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

JANUS = ["ws://127.0.0.1:8188/", "ws://127.0.0.1:8189/"]


def create(client: Client, **fields):
    data = {"name": "All hands", "capacity": 30, "kind": "video", "media_path": "sfu", **fields}
    return client.post("/rooms/new/", data)


def test_without_a_janus_server_the_lobby_says_why_there_are_no_sfu_rooms(client_for, alice):
    page = client_for(alice).get("/")
    field = page.context["form"]["media_path"]
    assert field.field.disabled
    assert "none is configured here (JANUS_URLS)" in field.help_text
    response = create(client_for(alice))
    assert response.status_code == 400
    assert not Room.objects.exists()


@override_settings(JANUS_URLS=JANUS, JANUS_API_SECRET="s")
def test_an_sfu_room_holds_up_to_50_and_a_mesh_room_12(client_for, alice):
    assert create(client_for(alice), capacity=50).status_code == 302
    room = Room.objects.get()
    assert (room.media, room.capacity) == ("sfu", 50)
    assert create(client_for(alice), capacity=51).status_code == 400
    refused = create(client_for(alice), capacity=30, media_path="mesh")
    assert refused.status_code == 400
    assert "capacity" in refused.context["form"].errors


def test_the_database_refuses_a_mesh_room_over_12_and_an_sfu_room_over_50(alice):
    with pytest.raises(IntegrityError), transaction.atomic():
        Room.objects.create(name="x", slug="x", owner=alice, capacity=13)
    with pytest.raises(IntegrityError), transaction.atomic():
        Room.objects.create(name="y", slug="y", owner=alice, capacity=51, media="sfu")
    Room.objects.create(name="z", slug="z", owner=alice, capacity=50, media="sfu")


@override_settings(JANUS_URLS=JANUS, JANUS_API_SECRET="s")
def test_a_new_sfu_room_goes_to_the_least_loaded_janus_and_stays_there(alice, bob, charlie):
    def join(user, room):
        return services.join_room(
            slug=room.slug, user=user, session=Client().session, channel_name=f"c-{user.pk}"
        )

    first = services.create_room(owner=alice, name="First", media="sfu", capacity=20)
    second = services.create_room(owner=alice, name="Second", media="sfu", capacity=20)
    assert first.sfu_server == ""  # placed at its first join, not before
    join(alice, first)
    join(bob, first)
    join(charlie, second)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.sfu_server, second.sfu_server) == (JANUS[0], JANUS[1])
    assert first.sfu_secret
    assert first.sfu_secret != second.sfu_secret
    # Everyone leaves and comes back: the room stays where it is.
    Presence.objects.all().delete()
    dana = make_user("dana2", "Dana")
    join(dana, first)
    first.refresh_from_db()
    assert first.sfu_server == JANUS[0]


@override_settings(JANUS_URLS=JANUS, JANUS_API_SECRET="s")
def test_a_room_on_a_lost_janus_moves_to_another(alice):
    room = services.create_room(owner=alice, name="Moving", media="sfu", capacity=20)
    services.join_room(slug=room.slug, user=alice, session=Client().session, channel_name="c")
    room.refresh_from_db()
    lost = room.sfu_server
    moved = services.move_off_sfu_server(room.pk, lost)
    assert moved is not None
    assert moved.sfu_server not in ("", lost)
    # A second worker noticing the same loss finds it moved already.
    again = services.move_off_sfu_server(room.pk, lost)
    assert again is not None
    assert again.sfu_server == moved.sfu_server
