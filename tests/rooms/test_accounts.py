import pytest
from django.contrib.auth.models import User
from django.test import Client

pytestmark = pytest.mark.django_db


def test_signup_creates_an_account_with_a_display_name_and_signs_in(client: Client):
    response = client.post(
        "/accounts/signup/",
        {
            "username": "erin",
            "display_name": "Erin E.",
            "password1": "a-long-passphrase-42",
            "password2": "a-long-passphrase-42",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/"
    erin = User.objects.get(username="erin")
    assert erin.profile.display_name == "Erin E."
    assert client.get("/").status_code == 200


def test_signup_refuses_mismatched_passwords(client: Client):
    response = client.post(
        "/accounts/signup/",
        {
            "username": "erin",
            "display_name": "Erin",
            "password1": "a-long-passphrase-42",
            "password2": "other",
        },
    )
    assert response.status_code == 200
    assert not User.objects.filter(username="erin").exists()
    assert "password2" in response.context["form"].errors


def test_login_and_logout(client: Client, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": "pw-alice"})
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_login_with_a_wrong_password_is_refused(client: Client, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert not response.context["form"].is_valid()


def test_pages_that_need_a_user_redirect_to_login_and_back(client: Client):
    response = client.get("/rooms/some-room/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/rooms/some-room/"


def test_password_change(client_for, alice):
    client = client_for(alice)
    response = client.post(
        "/accounts/password/",
        {
            "old_password": "pw-alice",
            "new_password1": "brand-new-pass-77",
            "new_password2": "brand-new-pass-77",
        },
    )
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password("brand-new-pass-77")


def test_display_name_is_shown_in_the_header(client_for, alice):
    assert "Signed in as Alice" in client_for(alice).get("/").content.decode()
