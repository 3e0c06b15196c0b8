"""The file-transfer setting (FILE_TRANSFER_MAX_MB) and how the room page hands it to
static/js/files.js. The files themselves go peer to peer: tests/browser/test_files.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from rooms.models import Room

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def room_config(client: Client, room: Room) -> dict[str, object]:
    return dict(client.get(f"/rooms/{room.slug}/").context["config"])


def test_the_room_page_hands_the_file_size_limit_to_the_call_page(client_for, alice, room):
    client = client_for(alice)
    assert room_config(client, room)["file_transfer_max_mb"] == 100  # the default
    content = client.get(f"/rooms/{room.slug}/").content.decode()
    assert '"file_transfer_max_mb": 100' in content  # in the room-config json_script
    assert "css/files.css" in content


def test_a_limit_of_zero_turns_file_transfer_off(client_for, alice, room, settings):
    settings.FILE_TRANSFER_MAX_MB = 0
    assert room_config(client_for(alice), room)["file_transfer_max_mb"] == 0


def read_setting(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    code = "from django.conf import settings; print(settings.FILE_TRANSFER_MAX_MB)"
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", code],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "tests.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_limit_comes_from_the_environment_and_refuses_nonsense():
    assert read_setting(FILE_TRANSFER_MAX_MB="0").stdout.strip() == "0"
    assert read_setting(FILE_TRANSFER_MAX_MB="250").stdout.strip() == "250"
    refused = read_setting(FILE_TRANSFER_MAX_MB="-1")
    assert refused.returncode != 0
    assert "FILE_TRANSFER_MAX_MB" in refused.stderr
