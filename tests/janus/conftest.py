"""A real Janus for each test (it starts in about 0.1 s), on loopback, with a short
session timeout so that the keepalive test can outlive it. No browser and no media: what
needs a PeerConnection is in the browser suite."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from signaling.janus import Janus
from tests.janus_server import JanusProcess, janus_installed, start_janus

SESSION_TIMEOUT = 8  # seconds; Janus's default is 60


@pytest.fixture
def janus_process(tmp_path: Path) -> Iterator[JanusProcess]:
    if not janus_installed():
        # A missing service is a failure, never a skip (make test installs it).
        pytest.fail("Debian's janus is not installed (tests/tools/ensure-system.sh installs it)")
    process = start_janus(
        tmp_path / "janus",
        api_secret=secrets.token_hex(16),
        session_timeout=SESSION_TIMEOUT,
    )
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
async def janus(janus_process: JanusProcess) -> AsyncIterator[Janus]:
    """The shared connection to the test's Janus, as a consumer gets it."""
    connection = await Janus.for_url(janus_process.url, janus_process.api_secret)
    try:
        yield connection
    finally:
        await Janus.close_all()
