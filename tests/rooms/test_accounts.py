import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings

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


# --- The sign-in throttle: the same rules for every way in (rooms/throttle.py) ---------------

SITE_LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"
LOCKED = "Too many failed sign-in attempts"
# Spellings that Django's login normalises (NFKC) to the plain name, so they sign in as
# that person: fullwidth letters, and mathematical bold ones.
LOOK_ALIKES = {
    "fullwidth": lambda name: "".join(chr(ord(c) - ord("a") + 0xFF41) for c in name),
    "bold": lambda name: "".join(chr(ord(c) - ord("a") + 0x1D41A) for c in name),
}


def sign_in(url: str, username: str, password: str, client: Client | None = None, **extra):
    return (client or Client()).post(
        url, {"username": username, "password": password, "next": "/admin/"}, **extra
    )


def fail(url: str, username: str, times: int = 5) -> None:
    for _ in range(times):
        assert sign_in(url, username, "wrong").status_code == 200


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_staff_still_sign_in_to_the_admin(dana):
    client = Client()
    response = sign_in(ADMIN_LOGIN, "dana", "pw-dana", client)
    assert (response.status_code, response["Location"]) == (302, "/admin/")
    assert client.get("/admin/").status_code == 200


def test_the_admin_login_still_checks_csrf(dana):
    client = Client(enforce_csrf_checks=True)
    assert client.post(ADMIN_LOGIN, {"username": "dana", "password": "pw-dana"}).status_code == 403
    assert not signed_in(client)


def test_the_admin_refuses_a_right_password_without_staff_status_and_counts_it(alice):
    client = Client()
    response = sign_in(ADMIN_LOGIN, "alice", "pw-alice", client)
    assert response.status_code == 200
    assert "for a staff account" in response.content.decode()
    assert not signed_in(client)
    # Counted like a wrong password, so the count does not tell a guesser it was right.
    fail(ADMIN_LOGIN, "alice", times=4)
    assert sign_in(SITE_LOGIN, "alice", "pw-alice").status_code == 429


def test_the_admin_login_is_locked_after_too_many_failures(dana):
    fail(ADMIN_LOGIN, "dana")
    client = Client()
    response = sign_in(ADMIN_LOGIN, "dana", "pw-dana", client)
    assert response.status_code == 429
    assert LOCKED in response.content.decode()
    assert not signed_in(client)
    assert client.get("/admin/").status_code == 302


@pytest.mark.parametrize("url", [SITE_LOGIN, ADMIN_LOGIN])
def test_a_right_password_is_refused_while_the_username_is_locked(url, dana):
    fail(url, "dana")
    for attempt in range(3):
        client = Client()
        response = sign_in(url, "dana", "pw-dana", client)
        assert response.status_code == 429, attempt
        assert not signed_in(client)


def test_failures_on_the_site_and_the_admin_add_up_to_one_limit(dana):
    fail(SITE_LOGIN, "dana", times=3)
    fail(ADMIN_LOGIN, "dana", times=2)
    assert sign_in(SITE_LOGIN, "dana", "pw-dana").status_code == 429
    assert sign_in(ADMIN_LOGIN, "dana", "pw-dana").status_code == 429


@pytest.mark.parametrize("spelling", LOOK_ALIKES)
def test_a_look_alike_username_signs_in_as_the_same_person(spelling, alice):
    # Why the throttle must normalise: Django does, so this is Alice's account.
    client = Client()
    assert (
        sign_in(SITE_LOGIN, LOOK_ALIKES[spelling]("alice"), "pw-alice", client).status_code == 302
    )
    assert client.session["_auth_user_id"] == str(alice.pk)


@pytest.mark.parametrize("url", [SITE_LOGIN, ADMIN_LOGIN])
@pytest.mark.parametrize("spelling", LOOK_ALIKES)
def test_a_look_alike_of_a_locked_username_is_locked_too(url, spelling, dana):
    fail(url, "dana")
    client = Client()
    response = sign_in(url, LOOK_ALIKES[spelling]("dana"), "pw-dana", client)
    assert response.status_code == 429
    assert not signed_in(client)


@pytest.mark.parametrize("url", [SITE_LOGIN, ADMIN_LOGIN])
def test_failures_under_a_look_alike_count_against_the_real_username(url, dana):
    fail(url, LOOK_ALIKES["fullwidth"]("dana"), times=3)
    fail(url, LOOK_ALIKES["bold"]("dana"), times=2)
    assert sign_in(url, "dana", "pw-dana").status_code == 429


def test_case_is_kept_as_authentication_keeps_it(alice):
    # The default backend matches usernames case-sensitively: "ALICE" is not Alice, so
    # guesses at it guess nobody's password and do not lock her out.
    assert sign_in(SITE_LOGIN, "ALICE", "pw-alice").status_code == 200
    fail(SITE_LOGIN, "ALICE", times=4)
    assert sign_in(SITE_LOGIN, "ALICE", "pw-alice").status_code == 429
    assert sign_in(SITE_LOGIN, "alice", "pw-alice").status_code == 302


@override_settings(LOGIN_FAILURES_LIMIT=2)
@pytest.mark.parametrize("url", [SITE_LOGIN, ADMIN_LOGIN])
def test_one_address_is_locked_after_four_times_the_limit_over_any_usernames(url, dana):
    for n in range(8):
        fail(url, f"someone-{n}", times=1)
    assert sign_in(url, "dana", "pw-dana").status_code == 429
    # Someone else's address is not.
    assert sign_in(url, "dana", "pw-dana", REMOTE_ADDR="192.0.2.7").status_code == 302


PASSWORD_CHANGES = ["/accounts/password/", "/admin/password_change/"]


def change_password(client: Client, url: str, old: str):
    new = "brand-new-pass-77"
    return client.post(url, {"old_password": old, "new_password1": new, "new_password2": new})


@pytest.mark.parametrize("url", PASSWORD_CHANGES)
def test_wrong_old_passwords_count_as_failed_sign_ins(url, client_for, dana):
    client = client_for(dana)
    for _ in range(5):
        response = change_password(client, url, "wrong")
        assert response.status_code == 200
        assert "old_password" in response.context["form"].errors
    response = change_password(client, url, "pw-dana")
    assert response.status_code == 429
    assert LOCKED in response.content.decode()
    dana.refresh_from_db()
    assert dana.check_password("pw-dana")
    assert sign_in(SITE_LOGIN, "dana", "pw-dana").status_code == 429


@pytest.mark.parametrize("url", PASSWORD_CHANGES)
def test_a_locked_username_cannot_change_its_password_either(url, client_for, dana):
    fail(SITE_LOGIN, "dana")
    assert change_password(client_for(dana), url, "pw-dana").status_code == 429
    dana.refresh_from_db()
    assert dana.check_password("pw-dana")


def test_the_admin_password_change_still_works_for_staff(client_for, dana):
    response = change_password(client_for(dana), "/admin/password_change/", "pw-dana")
    assert (response.status_code, response["Location"]) == (302, "/admin/password_change/done/")
    dana.refresh_from_db()
    assert dana.check_password("brand-new-pass-77")


def test_the_admin_password_change_is_for_staff_only(client_for, alice):
    response = client_for(alice).get("/admin/password_change/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
