"""What counts as an outage, and keeping one from failing a websocket handshake.

An outage is the database or Redis being unreachable for a while: expected in production
(a failover, a restart), answered with words (`server_error`, close 4503) and logged in one
line. Anything else escaping a handler is a bug, logged with its traceback.
"""

from __future__ import annotations

import asyncio
import logging
from importlib import import_module
from typing import Any

from channels.auth import get_user
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import InterfaceError, OperationalError
from django.http.cookie import parse_cookie
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from signaling.db import db

logger = logging.getLogger(__name__)

OUTAGES = (
    OperationalError,
    InterfaceError,
    RedisConnectionError,
    RedisTimeoutError,
    ConnectionError,  # OSError's refused, reset and aborted connections
    asyncio.TimeoutError,
)


def is_outage(failure: BaseException) -> bool:
    return isinstance(failure, OUTAGES)


# Channels' get_user (the session, then the user): as it is, for code already on a
# database thread, and on signaling's database threads (signaling/db.py) like every other
# query of a websocket.
session_user = get_user.func
read_user = db(session_user)


class SessionAuthMiddleware:
    """Cookies, the session and the user of a websocket: what Channels' AuthMiddlewareStack
    puts in the scope (`cookies`, `session`, `user`), in one middleware.

    Channels' stack is three middlewares, and each keeps a copy of the scope and a coroutine
    frame of its own for as long as the socket is open: about 3 KB of every idle connection
    (docs/performance.md, "The start of the hour, continued"). It also read the session (a
    database query) before the consumer existed, which with the database down failed the
    handshake with HTTP 500 and no words: here the user is then anonymous and the scope
    says why (`confab.unavailable`), so the lobby closes with 4503 `unavailable`. Websockets
    only: HTTP goes to Django's own middleware (config/asgi.py).

    With `read_user=False` the user stays anonymous here and the consumer reads it
    (session_user) in its first database call: the room consumer does, in its join, one
    thread hop fewer on every join (docs/performance.md), and answers an outage there
    with 4503 like any other failure of the join."""

    def __init__(self, inner: Any, *, read_user: bool = True) -> None:
        self.inner = inner
        self.read_user = read_user
        self.session_store = import_module(settings.SESSION_ENGINE).SessionStore

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        cookie = next((value for name, value in scope["headers"] if name == b"cookie"), b"")
        cookies = parse_cookie(cookie.decode("latin1")) if cookie else {}
        session = self.session_store(cookies.get(settings.SESSION_COOKIE_NAME))
        scope = dict(scope, cookies=cookies, session=session, user=AnonymousUser())
        if self.read_user:
            try:
                scope["user"] = await read_user(scope)
            except OUTAGES as failure:
                logger.warning("session unavailable: %s: %s", type(failure).__name__, failure)
                scope["confab.unavailable"] = True
        return await self.inner(scope, receive, send)
