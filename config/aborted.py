"""Requests still in flight when daphne stops are not errors.

When a worker stops (SIGTERM), daphne cancels its pending application instances. Django's
ASGI handler does not cancel the task that listens for the client's disconnect, which then
ends in `RequestAborted` with nobody to retrieve it, and asyncio logs that as an ERROR with
a traceback ("Task exception was never retrieved"). The browser suite met it for the leave
beacon a page sends as it closes, arriving just as its test's server stopped. This handler
lets that one case go with a line at INFO and leaves every other unretrieved exception to
asyncio's default handler.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

from django.core.exceptions import RequestAborted

logger = logging.getLogger(__name__)


def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    if isinstance(context.get("exception"), RequestAborted):
        logger.info("a request was still in flight when the server stopped")
        return
    loop.default_exception_handler(context)


def install() -> None:
    """On daphne's event loop: the one its Twisted reactor runs on. daphne makes it current
    (asyncio.set_event_loop) only when the server starts, after it imported the
    application, so the current loop at import time is another one."""
    if "daphne.server" not in sys.modules:
        return  # not under daphne (tests in process, manage.py): nothing stops like that
    from twisted.internet import reactor

    loop = getattr(reactor, "_asyncioEventloop", None)
    if isinstance(loop, asyncio.AbstractEventLoop):
        loop.set_exception_handler(handle)
