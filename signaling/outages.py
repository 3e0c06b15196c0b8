"""What counts as an outage, and keeping one from failing a websocket handshake.

An outage is the database or Redis being unreachable for a while: expected in production
(a failover, a restart), answered with words (`server_error`, close 4503) and logged in one
line. Anything else escaping a handler is a bug, logged with its traceback.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels.auth import AuthMiddleware, CookieMiddleware, SessionMiddleware, get_user
from django.contrib.auth.models import AnonymousUser
from django.db import InterfaceError, OperationalError
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


# Channels' get_user (the session, then the user), on signaling's database threads
# (signaling/db.py) like every other query of a websocket.
read_user = db(get_user.func)


class OutageTolerantAuthMiddleware(AuthMiddleware):
    """Channels' AuthMiddleware reads the session (a database query) before the consumer
    exists; with the database down that raised, and the browser saw the handshake fail
    with HTTP 500 and no words. Here the user is anonymous and the scope says why, so the
    consumer can accept and close with 4503 `unavailable`."""

    async def resolve_scope(self, scope: dict[str, Any]) -> None:
        try:
            scope["user"]._wrapped = await read_user(scope)
        except OUTAGES as failure:
            logger.warning("session unavailable: %s: %s", type(failure).__name__, failure)
            scope["user"]._wrapped = AnonymousUser()
            scope["confab.unavailable"] = True


def AuthMiddlewareStack(inner: Any) -> Any:  # noqa: N802 - the name Channels gives it
    return CookieMiddleware(SessionMiddleware(OutageTolerantAuthMiddleware(inner)))
