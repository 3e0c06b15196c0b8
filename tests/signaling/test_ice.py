"""TURN credentials in coturn's REST scheme, and their refresh during a call."""

import json
import time

import pytest
from django.test import override_settings

from rooms.ice import ice_servers, turn_credential, turn_username

SECRET = "north-wind-secret"
TURN_URLS = ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"]
TURN: dict[str, object] = {
    "TURN_URLS": TURN_URLS,
    "TURN_SECRET": SECRET,
    "STUN_URLS": ["stun:stun.example.org:3478"],
}


def test_credentials_match_coturns_scheme_on_a_known_vector():
    # Computed independently with OpenSSL:
    #   echo -n "1600000000:alice" | openssl dgst -sha1 -hmac north -binary | base64
    assert turn_credential("north", "1600000000:alice") == "gq98pTOhhHaAu0we9aV79kOVVv0="


def test_the_username_expires_ttl_seconds_from_now():
    assert turn_username("peer1", 3600, now=1_700_000_000) == "1700003600:peer1"


@override_settings(**TURN, TURN_CREDENTIAL_TTL=600)
def test_ice_servers_carry_fresh_turn_credentials_and_never_the_secret():
    before = int(time.time())
    servers = ice_servers("Zm9vYmFy")
    assert servers[0] == {"urls": ["stun:stun.example.org:3478"]}
    turn = servers[1]
    assert turn["urls"] == TURN_URLS
    expiry, ident = turn["username"].split(":")
    assert ident == "Zm9vYmFy"
    assert before + 600 <= int(expiry) <= time.time() + 601
    assert turn["credential"] == turn_credential(SECRET, turn["username"])
    assert SECRET not in json.dumps(servers)


@override_settings(STUN_URLS=[], TURN_URLS=[])
def test_nothing_configured_gives_no_servers():
    assert ice_servers("x") == []


@pytest.mark.django_db(transaction=True)
@override_settings(**TURN, TURN_CREDENTIAL_TTL=2)
async def test_new_credentials_arrive_before_the_old_ones_expire(alice, room, join):
    a = await join(alice, room)
    first = a.welcome["ice_servers"][1]
    assert SECRET not in json.dumps(a.welcome)
    refreshed = await a.receive_type("ice-servers", timeout=5)
    received_at = time.time()
    old_expiry = int(first["username"].split(":")[0])
    new = refreshed["ice_servers"][1]
    assert received_at < old_expiry  # before the first ones ran out
    assert int(new["username"].split(":")[0]) > old_expiry
    assert new["credential"] == turn_credential(SECRET, new["username"])


@pytest.mark.django_db
@override_settings(**TURN)
def test_the_turn_secret_appears_in_no_page(client_for, alice, room):
    client = client_for(alice)
    for url in ["/", f"/rooms/{room.slug}/", f"/rooms/{room.slug}/messages", "/jsi18n/"]:
        assert SECRET not in client.get(url).content.decode()
