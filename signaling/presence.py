"""This process's share of presence: a heartbeat for its own connections and a sweeper
for everyone's ghosts.

Every daphne worker runs one loop while it has people connected. Each round it
1. refreshes `last_seen` of all its own presence rows in one UPDATE (so liveness costs one
   query per worker per round, not one per client ping), and
2. removes rows that nobody refreshed for PRESENCE_TIMEOUT seconds: their worker died
   without running disconnect handlers (SIGKILL, power loss). rooms.services tells their
   rooms `peer-left` (reason `timeout`) and the lobby frees the seats;
3. frees seats held for a dropped socket whose page did not resume within RESUME_GRACE
   (`peer-left`, reason `disconnected`).
Several workers may sweep at once; a row is announced only by the one whose DELETE removed it.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from django.conf import settings

from rooms import services
from signaling.db import db
from signaling.outages import is_outage

logger = logging.getLogger(__name__)

_local_peers: set[str] = set()
_task: asyncio.Task[None] | None = None
_expiries: set[asyncio.Task[None]] = set()  # strong references, or asyncio may drop them


def register(peer_id: str) -> None:
    global _task
    _local_peers.add(peer_id)
    if _task is None or _task.done():
        _task = asyncio.get_running_loop().create_task(_loop(), name="confab-presence")
        _hold_seats_at_shutdown()


_shutdown_hook_installed = False


def _hold_seats_at_shutdown() -> None:
    """On SIGTERM daphne cancels every connection and stops its event loop at once, so no
    consumer's disconnect() runs. A Twisted "before shutdown" trigger that returns a
    Deferred is waited for: hold this worker's seats there, in one statement, so people
    resume on another worker (or the restarted one) instead of waiting for the sweeper."""
    global _shutdown_hook_installed
    reactor = sys.modules.get("twisted.internet.reactor")  # imported only under daphne
    if _shutdown_hook_installed or reactor is None or not reactor.running:
        return
    from twisted.internet.threads import deferToThread

    def hold() -> object:
        peers = list(_local_peers)
        return deferToThread(services.detach_seats, peers) if peers else None

    reactor.addSystemEventTrigger("before", "shutdown", hold)
    _shutdown_hook_installed = True


def unregister(peer_id: str) -> None:
    global _task
    _local_peers.discard(peer_id)
    if not _local_peers and _task is not None:
        # Nobody here: stop until the next person arrives (and let test loops close).
        _task.cancel()
        _task = None


async def run_round() -> int:
    """One heartbeat-and-sweep round; returns how many seats were freed."""
    if _local_peers:
        await db(services.refresh_presences)(list(_local_peers))
    swept = await db(services.sweep_stale_presences)()
    expired = await db(services.expire_detached)()
    return len(swept) + len(expired)


def expire_detached_later() -> None:
    """Free a dropped connection's held seat once its grace period is over, even if this
    worker has nobody else connected by then (the round loop may have stopped)."""

    async def expire() -> None:
        await asyncio.sleep(settings.RESUME_GRACE + 0.5)
        try:
            await db(services.expire_detached)()
        except Exception as failure:
            # The next heartbeat round expires it instead.
            log_failure("expiring a held seat", failure)

    task = asyncio.get_running_loop().create_task(expire())
    _expiries.add(task)
    task.add_done_callback(_expiries.discard)


async def _loop() -> None:
    while True:
        await asyncio.sleep(settings.PRESENCE_TOUCH_INTERVAL)
        try:
            swept = await run_round()
        except Exception as failure:
            # The database or Redis may be briefly away; the next round tries again.
            log_failure("presence heartbeat", failure)
            continue
        if swept:
            logger.info("swept %d presence row(s) left by a dead worker", swept)


def log_failure(what: str, failure: Exception) -> None:
    """An outage is expected now and then: one line. Anything else is a bug: a traceback."""
    if is_outage(failure):
        logger.warning("%s failed: %s: %s", what, type(failure).__name__, failure)
    else:
        logger.error("%s failed", what, exc_info=failure)
