import asyncio
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import RequestAborted
from django.test import override_settings

from config import aborted
from config.cache import SharedRedisCache
from signaling.startup import log_startup_warnings

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
    # Whatever ICE servers the person running the tests has set are not the defaults either.
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DEBUG", "HTTPS", "DJANGO_SETTINGS_MODULE"}
        and not k.startswith(("STUN_", "TURN_", "ICE_"))
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


def test_every_cache_of_a_process_shares_one_redis_client_per_server():
    # Django builds a cache object per asyncio context, that is per websocket connection:
    # each one connecting to Redis afresh cost every join a connection (config/cache.py).
    redis = "redis://127.0.0.1:6379/0"
    one, two = SharedRedisCache(redis, {}), SharedRedisCache(redis, {})
    elsewhere = SharedRedisCache("redis://127.0.0.1:6379/1", {})
    assert one._cache is two._cache
    assert elsewhere._cache is not one._cache


def test_with_redis_sessions_are_read_from_the_cache_first():
    code = "from django.conf import settings; print(settings.SESSION_ENGINE, settings.CACHES)"
    result = manage("shell", "-c", code, DEBUG="1", REDIS_URL="redis://127.0.0.1:6379/0")
    assert result.returncode == 0, result.stderr
    assert "django.contrib.sessions.backends.cached_db" in result.stdout
    assert "config.cache.SharedRedisCache" in result.stdout


def unconfigured_ice_settings() -> dict[str, Any]:
    """STUN_URLS, TURN_URLS and TURN_SECRET of a server started with nothing configured."""
    names = ["STUN_URLS", "TURN_URLS", "TURN_SECRET"]
    code = (
        "import json; from django.conf import settings; "
        f"print(json.dumps({{name: getattr(settings, name) for name in {names!r}}}))"
    )
    result = manage("shell", "-c", code, DEBUG="1")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_with_nothing_configured_there_is_no_stun_or_turn_server():
    # Nothing set means no third party is contacted: no public STUN server by default.
    assert unconfigured_ice_settings() == {"STUN_URLS": [], "TURN_URLS": [], "TURN_SECRET": ""}


@pytest.mark.django_db(transaction=True)
async def test_the_welcome_of_a_server_with_nothing_configured_names_no_ice_server(
    alice, room, join
):
    defaults = await asyncio.to_thread(unconfigured_ice_settings)
    with override_settings(**defaults):
        peer = await join(alice, room)
    # So the browser asks no server anywhere for its address: host candidates only.
    assert peer.welcome["ice_servers"] == []


@override_settings(STUN_URLS=[], TURN_URLS=[])
def test_the_start_up_warning_without_stun_or_turn_says_what_is_lost(caplog):
    with caplog.at_level(logging.WARNING, logger="confab"):
        log_startup_warnings()
    assert "same network" in caplog.text
    assert "behind NAT on different networks cannot connect" in caplog.text


@override_settings(STUN_URLS=["stun:turn.example.org:3478"], TURN_URLS=[])
def test_the_start_up_warning_with_stun_but_no_turn_names_who_cannot_connect(caplog):
    with caplog.at_level(logging.WARNING, logger="confab"):
        log_startup_warnings()
    assert "No TURN server configured" in caplog.text
    assert "cannot connect to each other without a relay" in caplog.text


@override_settings(
    STUN_URLS=[], TURN_URLS=["turn:turn.example.org:3478?transport=udp"], TURN_SECRET="s"
)
def test_no_start_up_warning_once_there_is_a_turn_server(caplog):
    with caplog.at_level(logging.WARNING, logger="confab"):
        log_startup_warnings()
    assert caplog.records == []


def test_a_request_aborted_by_a_stopping_server_is_not_an_error(caplog, expected_errors) -> None:
    # Only the aborted request is let go; any other unretrieved exception is still an ERROR.
    loop = asyncio.new_event_loop()
    try:
        with caplog.at_level("INFO"):
            for failure in (RequestAborted(), ValueError("a real one")):
                context = {"message": "Task exception was never retrieved", "exception": failure}
                aborted.handle(loop, context)
    finally:
        loop.close()
    assert ("INFO", "a request was still in flight when the server stopped") in [
        (r.levelname, r.getMessage()) for r in caplog.records
    ]
    assert expected_errors.messages() == ["ERROR asyncio: Task exception was never retrieved"]


def test_under_daphne_the_handler_is_on_the_loop_the_server_runs() -> None:
    # daphne makes its reactor's loop current only when it starts serving, after importing
    # the application: the handler must be on that loop, not on the one current at import
    # (a clean-clone run logged an aborted beacon as an ERROR when it was).
    probe = (
        "import daphne.server\n"
        "from twisted.internet import reactor\n"
        "import config.asgi\n"
        "from config import aborted\n"
        "print(reactor._asyncioEventloop.get_exception_handler() is aborted.handle)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DEBUG": "1"},
        check=False,
    )
    assert done.stdout.strip().splitlines()[-1:] == ["True"], done.stderr[-2000:]
