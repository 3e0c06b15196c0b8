"""Fixtures shared by the suite: people (alice, bob, charlie, and staff dana) and
websocket clients that sign in with a real session cookie."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from config.asgi import application
from rooms import services
from rooms.models import Profile, Room
from tests import cache_keys

ORIGIN = (b"origin", b"http://127.0.0.1")


class ErrorRecords(logging.Handler):
    """Every ERROR (or worse) logged in this process during one test."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self) -> list[str]:
        return [f"{r.levelname} {r.name}: {r.getMessage()}" for r in self.records]


@pytest.fixture(autouse=True)
def no_unexpected_errors(request: pytest.FixtureRequest) -> Iterator[ErrorRecords]:
    """An ERROR line from the server that a test did not expect is a bug: fail the test.
    A test that provokes errors on purpose asks for `expected_errors` and checks them."""
    collector = ErrorRecords()
    root = logging.getLogger()
    root.addHandler(collector)
    try:
        yield collector
    finally:
        root.removeHandler(collector)
    if "expected_errors" not in request.fixturenames and collector.records:
        pytest.fail("errors were logged that no test expected:\n" + "\n".join(collector.messages()))


@pytest.fixture
def expected_errors(no_unexpected_errors: ErrorRecords) -> ErrorRecords:
    return no_unexpected_errors


@pytest.fixture(autouse=True)
def fresh_cache_namespace() -> None:
    """Throttling counters start at zero in every test."""
    cache_keys.new_namespace()


def make_user(username: str, display: str, **extra: Any) -> User:
    user = User.objects.create_user(username=username, password="pw-" + username, **extra)
    Profile.objects.create(user=user, display_name=display)
    return user


@pytest.fixture
def alice(db: None) -> User:
    return make_user("alice", "Alice")


@pytest.fixture
def bob(db: None) -> User:
    return make_user("bob", "Bob")


@pytest.fixture
def charlie(db: None) -> User:
    return make_user("charlie", "Charlie")


@pytest.fixture
def dana(db: None) -> User:
    """Staff: moderates every room."""
    return make_user("dana", "Dana", is_staff=True, is_superuser=True)


@pytest.fixture
def client_for() -> Callable[[User], Client]:
    def make(user: User) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def room(alice: User) -> Room:
    return services.create_room(owner=alice, name="Standup", capacity=4)


def session_cookie(user: User, grant: Room | None = None) -> str:
    client = Client()
    client.force_login(user)
    if grant is not None:
        from rooms.access import grant_access

        session = client.session
        grant_access(session, grant)
        session.save()
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


class Peer:
    """One participant's websocket, with helpers to read protocol messages."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.ws = communicator
        self.welcome: dict[str, Any] = {}

    @property
    def peer_id(self) -> str:
        return str(self.welcome["self"]["peer_id"])

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_to(text_data=json.dumps(message))

    async def receive(self, timeout: float = 5) -> dict[str, Any]:
        output = await self.ws.receive_output(timeout)
        if output["type"] == "websocket.close":
            return {
                "type": "__closed__",
                "code": output.get("code"),
                "reason": output.get("reason"),
            }
        assert output["type"] == "websocket.send", output
        return dict(json.loads(output["text"]))

    async def receive_type(self, kind: str, timeout: float = 5) -> dict[str, Any]:
        """The next message of this type, skipping others (presence chatter)."""
        while True:
            message = await self.receive(timeout)
            if message["type"] == kind:
                return message

    async def nothing(self, timeout: float = 0.2) -> bool:
        return await self.ws.receive_nothing(timeout)

    async def close(self) -> None:
        await self.ws.disconnect()


async def open_socket(
    user: User | None,
    path: str,
    *,
    grant: Room | None = None,
    origin: tuple[bytes, bytes] = ORIGIN,
    cookie: str | None = None,
) -> WebsocketCommunicator:
    """A socket signed in as `user`, or with the session `cookie` of a browser (a guest's)."""
    headers = [origin]
    if cookie is not None:
        headers.append((b"cookie", cookie.encode()))
    elif user is not None:
        cookie = await database_sync_to_async(session_cookie)(user, grant)
        headers.append((b"cookie", cookie.encode()))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    return communicator


@pytest.fixture
async def join() -> AsyncIterator[Callable[..., Any]]:
    """join(user, room) -> Peer that has received its welcome (or its close)."""
    opened: list[Peer] = []

    async def _join(
        user: User | None, room: Room, *, expect_welcome: bool = True, query: str = "", **kw: Any
    ) -> Peer:
        communicator = await open_socket(user, f"/ws/rooms/{room.slug}/{query}", **kw)
        connected, _ = await communicator.connect()
        assert connected
        peer = Peer(communicator)
        opened.append(peer)
        first = await peer.receive()
        if first["type"] == "closing":
            # A refusal: its code and data come in a message, then the close frame.
            closed = await peer.receive()
            assert (closed["code"], closed["reason"]) == (first["code"], first["reason"])
            first = {**first, **closed}
        if expect_welcome:
            assert first["type"] == "welcome", first
            peer.welcome = first
        else:
            peer.welcome = first
        return peer

    yield _join
    for peer in opened:
        await peer.ws.disconnect()
