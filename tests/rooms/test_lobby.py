import pytest

from rooms import services
from rooms.models import Presence

pytestmark = pytest.mark.django_db


def seat(room, user, name):
    return Presence.objects.create(
        room=room, user=user, peer_id=f"p-{name}", channel_name=f"c-{name}", name=name
    )


def test_lobby_shows_occupancy_and_who_is_in_each_room(client_for, alice, bob, room):
    seat(room, alice, "Alice")
    seat(room, bob, "Bob")
    content = client_for(alice).get("/").content.decode()
    assert "Standup" in content
    assert "2 / 4" in content
    assert "Alice, Bob" in content


def test_lobby_lists_newest_activity_first(client_for, alice, bob):
    services.create_room(owner=alice, name="Older")
    newer = services.create_room(owner=bob, name="Newer")
    rooms = client_for(alice).get("/").context["rooms"]
    assert [r["slug"] for r in rooms] == [newer.slug, "older"]


def test_lobby_leaves_out_closed_rooms(client_for, alice, room):
    services.close_room(room)
    assert client_for(alice).get("/").context["rooms"] == []


def test_room_names_render_as_text_in_the_lobby(client_for, alice):
    services.create_room(owner=alice, name="<script>alert(1)</script>")
    content = client_for(alice).get("/").content.decode()
    assert "<script>alert(1)</script>" not in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content


def test_lobby_needs_a_signed_in_user(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_room_tells_its_members_who_is_in_the_call(client_for, alice, bob, room):
    seat(room, alice, "Alice")
    response = client_for(bob).get(f"/rooms/{room.slug}/people")
    assert response.json() == {
        "names": ["Alice"],
        "occupancy": 1,
        "capacity": 4,
        "is_locked": False,
    }


def test_who_is_in_a_private_room_is_kept_from_outsiders(client_for, alice, bob):
    secret = services.create_room(owner=alice, name="Secret", is_private=True, password="pw")
    assert client_for(bob).get(f"/rooms/{secret.slug}/people").status_code == 403
