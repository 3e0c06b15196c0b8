"""Web security: headers, CSRF, and user text that never becomes markup."""

import re

import pytest
from django.test import Client

from rooms import services
from rooms.models import Profile

pytestmark = pytest.mark.django_db

PAYLOAD = '</script><script>alert("x")</script><img src=x onerror=alert(1)>'


def test_pages_carry_a_strict_content_security_policy_and_security_headers(client_for, alice, room):
    response = client_for(alice).get(f"/rooms/{room.slug}/")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert "camera=(self)" in response["Permissions-Policy"]


@pytest.mark.parametrize("url", ["/", "/accounts/login/", "/accounts/signup/", "ROOM"])
def test_no_page_has_an_inline_script(client_for, alice, room, url):
    client = (
        client_for(alice) if url != "/accounts/login/" and url != "/accounts/signup/" else Client()
    )
    content = client.get(f"/rooms/{room.slug}/" if url == "ROOM" else url).content.decode()
    for tag in re.findall(r"<script[^>]*>", content):
        assert "src=" in tag or 'type="application/json"' in tag, tag
    assert not re.search(r"\son[a-z]+=", content.replace(PAYLOAD, "")), "inline event handler"


def test_forms_refuse_posts_without_a_csrf_token(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert (
        client.post("/rooms/new/", {"name": "x", "capacity": 4, "kind": "video"}).status_code == 403
    )
    assert (
        Client(enforce_csrf_checks=True).post("/accounts/login/", {"username": "alice"}).status_code
        == 403
    )


def test_markup_in_room_and_display_names_renders_as_text(client_for, alice, bob):
    Profile.objects.filter(user=bob).update(display_name=PAYLOAD[:60])
    room = services.create_room(owner=alice, name=PAYLOAD[:80])
    services.post_chat(room_id=room.pk, user=bob, author_name=PAYLOAD[:60], body=PAYLOAD)
    for url in ["/", f"/rooms/{room.slug}/"]:
        content = client_for(bob).get(url).content.decode()
        assert "<script>alert" not in content
        assert "<img src=x" not in content
    # Data handed to scripts goes through json_script, which escapes < > &.
    content = client_for(bob).get(f"/rooms/{room.slug}/").content.decode()
    assert "\\u003C/script\\u003E" in content


def test_chat_history_json_is_data_not_markup(client_for, alice, room):
    services.post_chat(room_id=room.pk, user=alice, author_name="Alice", body=PAYLOAD)
    response = client_for(alice).get(f"/rooms/{room.slug}/messages")
    assert response["Content-Type"] == "application/json"
    assert response.json()["messages"][0]["body"] == PAYLOAD
