"""Guests by invitation (rooms/guests.py): links that let people without an account into one
room, and nothing else."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from rooms import guests, moderation, services
from rooms.models import Guest, Invite, ModerationAction, Presence, Room, RoomBan, RoomModerator

pytestmark = pytest.mark.django_db(transaction=True)


def make_link(room: Room, by: User, **kw: Any) -> str:
    _, secret = guests.create_invite(room, by, **kw)
    return f"/invite/{secret}"


def become_guest(link: str, name: str = "Erin", browser: Client | None = None) -> Client:
    """A browser without an account that opens the link and picks a name."""
    browser = browser or Client()
    response = browser.post(link, {"name": name})
    assert response.status_code == 302, response.content.decode()[:500]
    return browser


def cookie_of(browser: Client) -> str:
    return f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"


# --- Links ---------------------------------------------------------------------------------


def test_an_invite_link_makes_a_guest_of_someone_without_an_account(alice, room):
    link = make_link(room, alice)
    erin = Client()
    page = erin.get(link)
    assert page.status_code == 200
    assert "Join as a guest" in page.content.decode()
    response = erin.post(link, {"name": "  Erin   the guest "})
    assert response["Location"] == f"/rooms/{room.slug}/"
    guest = Guest.objects.get()
    assert guest.user.profile.display_name == "Erin the guest"
    assert not guest.user.has_usable_password()  # nobody signs in as a guest
    call = erin.get(f"/rooms/{room.slug}/")
    assert call.status_code == 200
    config = call.context["config"]
    assert (config["is_guest"], config["lobby_url"], config["invites_url"]) == (True, None, None)
    assert Invite.objects.get().uses == 1


def test_only_the_hash_of_a_links_secret_is_stored(alice, room):
    invite, secret = guests.create_invite(room, alice)
    assert secret not in json.dumps(list(Invite.objects.values()), default=str)
    assert invite.secret_hash == guests.secret_hash(secret)
    assert ModerationAction.objects.get().kind == "invite"


def test_a_guest_sees_their_room_and_nothing_else(alice, room):
    other = services.create_room(owner=alice, name="Elsewhere")
    erin = become_guest(make_link(room, alice))
    for path in ["/", f"/rooms/{other.slug}/", "/accounts/password/", "/admin/", "/rooms/new/"]:
        response = erin.get(path)
        assert response.status_code == 403, path
        assert "only the room you were invited to" in response.content.decode()
    assert erin.get(f"/rooms/{room.slug}/people").status_code == 200
    assert erin.get("/jsi18n/").status_code == 200


@pytest.mark.parametrize(
    ("spoil", "status", "words"),
    [
        (lambda invite: setattr(invite, "expires_at", timezone.now()), 410, "has expired"),
        (lambda invite: setattr(invite, "revoked_at", timezone.now()), 410, "was revoked"),
        (lambda invite: setattr(invite, "uses", 1), 410, "used as often as it allows"),
        (lambda invite: invite.room.__setattr__("closed_at", timezone.now()), 410, "has ended"),
    ],
    ids=["expired", "revoked", "used_up", "room_closed"],
)
def test_a_link_that_no_longer_works_says_why(alice, room, spoil, status, words):
    invite, secret = guests.create_invite(room, alice, max_uses=1)
    spoil(invite)
    invite.save()
    invite.room.save()
    for response in (
        Client().get(f"/invite/{secret}"),
        Client().post(f"/invite/{secret}", {"name": "Erin"}),
    ):
        assert response.status_code == status
        assert words in response.content.decode()
    assert not Guest.objects.exists()


def test_an_unknown_link_says_it_is_not_valid(db):
    response = Client().get("/invite/not-a-real-secret")
    assert response.status_code == 404
    assert "This invite link is not valid" in response.content.decode()


def test_a_link_for_two_lets_in_two_and_no_more(alice, room):
    link = make_link(room, alice, max_uses=2)
    become_guest(link, "Erin")
    become_guest(link, "Frank")
    refused = Client().post(link, {"name": "Gina"})
    assert refused.status_code == 410
    assert Guest.objects.count() == 2
    assert Invite.objects.get().uses == 2


def test_a_guest_must_give_a_name(alice, room):
    link = make_link(room, alice)
    response = Client().post(link, {"name": "   "})
    assert response.status_code == 200
    assert "Please enter a name." in response.content.decode() or "This field is required" in (
        response.content.decode()
    )
    assert not Guest.objects.exists()


def test_a_private_rooms_password_is_not_asked_of_a_guest(alice):
    secret_room = services.create_room(owner=alice, name="Board", is_private=True, password="pw")
    erin = become_guest(make_link(secret_room, alice))
    assert "rooms/room.html" in [t.name for t in erin.get(f"/rooms/{secret_room.slug}/").templates]


def test_a_member_who_opens_a_link_goes_straight_in(alice, bob, client_for):
    secret_room = services.create_room(owner=alice, name="Board", is_private=True, password="pw")
    bobs = client_for(bob)
    response = bobs.get(make_link(secret_room, alice))
    assert response["Location"] == f"/rooms/{secret_room.slug}/"
    assert bobs.get(response["Location"]).status_code == 200  # the link stood for the password
    assert not Guest.objects.exists()


def test_one_address_becomes_only_so_many_guests_an_hour(alice, room, settings):
    settings.GUESTS_PER_ADDRESS_PER_HOUR = 2
    link = make_link(room, alice)
    become_guest(link, "Erin")
    become_guest(link, "Frank")
    refused = Client().post(link, {"name": "Gina"})
    assert refused.status_code == 429
    assert Guest.objects.count() == 2


def test_only_moderators_make_and_revoke_links(alice, bob, room, client_for):
    url = f"/rooms/{room.slug}/invites"
    assert client_for(bob).post(url, {"hours": "24"}).status_code == 403
    assert client_for(bob).get(url).status_code == 403
    made = client_for(alice).post(url, {"hours": "1", "max_uses": "3"})
    assert made.status_code == 201
    answer = made.json()
    assert answer["url"].startswith("http://testserver/invite/")
    assert answer["invite"]["max_uses"] == 3
    assert answer["invite"]["state"] == "valid"
    pk = answer["invite"]["id"]
    assert client_for(bob).post(f"{url}/{pk}/revoke").status_code == 403
    revoked = client_for(alice).post(f"{url}/{pk}/revoke")
    assert revoked.json()["invites"][0]["state"] == "revoked"
    bad = client_for(alice).post(url, {"hours": "5", "max_uses": "0"})
    assert bad.status_code == 400
    assert set(bad.json()["fields"]) == {"hours", "max_uses"}


def test_the_admin_makes_a_link_and_shows_it_once(dana, room, client_for):
    admin = client_for(dana)
    response = admin.post(
        "/admin/rooms/invite/add/", {"room": room.pk, "hours": "24", "max_uses": ""}, follow=True
    )
    links = [str(m) for m in response.context["messages"] if "/invite/" in str(m)]
    assert len(links) == 1, links
    secret = links[0].rsplit("/invite/", 1)[1]
    assert Invite.objects.get().secret_hash == guests.secret_hash(secret)
    assert Client().get(f"/invite/{secret}").status_code == 200


def test_leave_ends_a_guests_visit_and_their_session(alice, room):
    link = make_link(room, alice)
    erin = become_guest(link)
    goodbye = erin.post(f"/rooms/{room.slug}/goodbye")
    assert goodbye.status_code == 200
    assert "You left the call." in goodbye.content.decode()
    assert Guest.objects.get().ended_at is not None
    assert erin.get(f"/rooms/{room.slug}/").status_code == 302  # signed out: to the login page
    # The link still works while it is valid: a new visit.
    become_guest(link, browser=erin)
    assert Guest.objects.filter(ended_at__isnull=True).count() == 1


# --- In the call ---------------------------------------------------------------------------


async def test_a_guest_joins_marked_as_guest_and_counts_against_the_capacity(alice, bob, join):
    small = await database_sync_to_async(services.create_room)(owner=alice, name="Pair", capacity=2)
    link = await database_sync_to_async(make_link)(small, alice)
    erin = await database_sync_to_async(become_guest)(link)
    a = await join(alice, small)
    e = await join(None, small, cookie=await database_sync_to_async(cookie_of)(erin))
    assert (e.welcome["self"]["is_guest"], e.welcome["self"]["name"]) == (True, "Erin")
    assert a.welcome["self"]["is_guest"] is False
    assert e.welcome["peers"][0]["is_guest"] is False
    joined = await a.receive_type("peer-joined")
    assert joined["peer"]["is_guest"] is True
    refused = await join(bob, small, expect_welcome=False)
    assert (refused.welcome["code"], refused.welcome["refusal"]) == (4409, "full")


async def test_a_guests_socket_cannot_join_another_room(alice, room, join):
    other = await database_sync_to_async(services.create_room)(owner=alice, name="Elsewhere")
    link = await database_sync_to_async(make_link)(room, alice)
    cookie = await database_sync_to_async(cookie_of)(
        await database_sync_to_async(become_guest)(link)
    )
    refused = await join(None, other, cookie=cookie, expect_welcome=False)
    assert (refused.welcome["code"], refused.welcome["refusal"]) == (4403, "guest_other_room")
    assert not await database_sync_to_async(Presence.objects.exists)()


async def test_a_banned_guest_stays_out_in_the_same_browser_whatever_the_link(alice, room, join):
    link = await database_sync_to_async(make_link)(room, alice)
    erin = await database_sync_to_async(become_guest)(link)
    cookie = await database_sync_to_async(cookie_of)(erin)
    e = await join(None, room, cookie=cookie)

    def ban() -> None:
        moderation.ban(
            room, moderation.Actor(user=alice, source="call"), peer_id=e.peer_id, reason="spam"
        )

    await database_sync_to_async(ban)()
    closed = await e.receive_type("__closed__")
    assert closed["code"] == 4403
    the_ban = await database_sync_to_async(RoomBan.objects.get)()
    assert the_ban.browser_key  # the browser, not only the guest's user
    again = await join(None, room, cookie=cookie, expect_welcome=False)
    assert again.welcome["refusal"] == "banned"

    def reopen() -> list[int]:
        new_link = make_link(room, alice)
        return [erin.get(link).status_code, erin.post(new_link, {"name": "Not Erin"}).status_code]

    assert await database_sync_to_async(reopen)() == [403, 403]
    assert await database_sync_to_async(Guest.objects.count)() == 1
    # Another browser with the same link is someone else (docs/security.md, "Guests").
    await database_sync_to_async(become_guest)(link, "Frank")


async def test_revoking_a_link_with_its_guests_closes_them_and_ends_their_visit(alice, room, join):
    invite, secret = await database_sync_to_async(guests.create_invite)(room, alice)
    link = f"/invite/{secret}"
    cookie = await database_sync_to_async(cookie_of)(
        await database_sync_to_async(become_guest)(link)
    )
    a = await join(alice, room)
    e = await join(None, room, cookie=cookie)
    await a.receive_type("peer-joined")
    removed = await database_sync_to_async(guests.revoke_invite)(invite, alice, remove_guests=True)
    assert removed == 1
    closing = await e.receive_type("closing")
    assert (closing["code"], closing["refusal"]) == (4403, "invite_revoked")
    left = await a.receive_type("peer-left")
    assert (left["peer_id"], left["reason"]) == (e.peer_id, "invite_revoked")
    again = await join(None, room, cookie=cookie, expect_welcome=False)
    assert again.welcome["refusal"] == "guest_ended"
    kinds = await database_sync_to_async(
        lambda: list(ModerationAction.objects.values_list("kind", flat=True))
    )()
    assert sorted(kinds) == ["invite", "revoke_invite"]


async def test_revoking_a_link_alone_keeps_its_guests_in_the_call(alice, room, join):
    invite, secret = await database_sync_to_async(guests.create_invite)(room, alice)
    cookie = await database_sync_to_async(cookie_of)(
        await database_sync_to_async(become_guest)(f"/invite/{secret}")
    )
    e = await join(None, room, cookie=cookie)
    assert (
        await database_sync_to_async(guests.revoke_invite)(invite, alice, remove_guests=False) == 0
    )
    assert await e.nothing()
    assert await database_sync_to_async(Presence.objects.count)() == 1


async def test_a_guest_cannot_open_the_lobby_socket(alice, room, join):
    from tests.conftest import open_socket

    link = await database_sync_to_async(make_link)(room, alice)
    cookie = await database_sync_to_async(cookie_of)(
        await database_sync_to_async(become_guest)(link)
    )
    lobby = await open_socket(None, "/ws/lobby/", cookie=cookie)
    connected, code = await lobby.connect()
    assert (connected, code) == (False, 4403)


def test_a_moderator_cannot_make_a_link_for_ever(alice, bob, room):
    with pytest.raises(guests.InviteError):
        guests.create_invite(room, alice, hours=guests.MAX_EXPIRY_HOURS + 1)
    with pytest.raises(PermissionError):
        guests.create_invite(room, bob)
    assert not Invite.objects.exists()


def test_a_link_expires_after_a_day_by_default(alice, room):
    invite, _ = guests.create_invite(room, alice)
    assert abs(invite.expires_at - timezone.now() - timedelta(hours=24)) < timedelta(minutes=1)


async def test_a_guest_cannot_be_made_a_moderator(alice, room, join):
    link = await database_sync_to_async(make_link)(room, alice)
    cookie = await database_sync_to_async(cookie_of)(
        await database_sync_to_async(become_guest)(link)
    )
    a = await join(alice, room)
    e = await join(None, room, cookie=cookie)
    await a.send({"type": "promote", "peer_id": e.peer_id})
    error = await a.receive_type("error")
    assert (error["code"], error["detail"]) == ("forbidden", "guest")
    assert not await database_sync_to_async(RoomModerator.objects.exists)()
