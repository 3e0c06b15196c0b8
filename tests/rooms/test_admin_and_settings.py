import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ADMIN_PAGES = [
    "/admin/",
    "/admin/rooms/room/",
    "/admin/rooms/chatmessage/",
    "/admin/rooms/presence/",
    "/admin/rooms/roomban/",
    "/admin/rooms/moderationaction/",
    "/admin/rooms/profile/",
]


@pytest.mark.django_db
@pytest.mark.parametrize("page", ADMIN_PAGES)
def test_admin_pages_load_for_staff(client_for, dana, room, page):
    assert client_for(dana).get(page).status_code == 200


@pytest.mark.django_db
def test_admin_room_page_loads_for_staff(client_for, dana, room):
    assert client_for(dana).get(f"/admin/rooms/room/{room.pk}/change/").status_code == 200


@pytest.mark.django_db
def test_admin_is_refused_to_other_users(client_for, bob):
    response = client_for(bob).get("/admin/rooms/room/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DEBUG", "HTTPS", "DJANGO_SETTINGS_MODULE"}
    }
    clean["DJANGO_SETTINGS_MODULE"] = "config.settings"
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_settings_fail_loudly_on_a_missing_production_secret_key():
    result = manage("check", DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_check_deploy_is_clean_under_production_settings():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        SECRET_KEY="k" * 20 + "-production-grade-random-value-0123456789",
        ALLOWED_HOSTS="meet.example.org",
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_debug_runs_need_no_configuration():
    result = manage("check", DEBUG="1")
    assert result.returncode == 0, result.stderr


def test_an_unknown_channel_layer_is_a_start_up_error():
    result = manage("check", DEBUG="1", REDIS_URL="redis://127.0.0.1:6379/0", CHANNEL_LAYER="kafka")
    assert result.returncode != 0
    assert "CHANNEL_LAYER must be 'pubsub' or 'core'" in result.stderr
