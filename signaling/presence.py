"""This process's share of presence: a heartbeat for its own connections and a sweeper
for everyone's ghosts.

Every daphne worker runs one loop while it has people connected. Each round it
1. refreshes `last_seen` of all its own presence rows in one UPDATE (so liveness costs one
   query per worker per round, not one per client ping), and
2. removes rows that nobody refreshed for PRESENCE_TIMEOUT seconds: their worker died
   without running disconnect handlers (SIGKILL, power loss). rooms.services tells their
   rooms `peer-left` (reason `timeout`) and the lobby frees the seats.
Several workers may sweep at once; a row is announced only by the one whose DELETE removed it.
"""

from __future__ import annotations

import asyncio
import logging

from channels.db import database_sync_to_async
from django.conf import settings

from rooms import services

logger = logging.getLogger(__name__)

_local_peers: set[str] = set()
_task: asyncio.Task[None] | None = None


def register(peer_id: str) -> None:
    global _task
    _local_peers.add(peer_id)
    if _task is None or _task.done():
        _task = asyncio.get_running_loop().create_task(_loop(), name="confab-presence")


def unregister(peer_id: str) -> None:
    global _task
    _local_peers.discard(peer_id)
    if not _local_peers and _task is not None:
        # Nobody here: stop until the next person arrives (and let test loops close).
        _task.cancel()
        _task = None


async def run_round() -> int:
    """One heartbeat-and-sweep round; returns how many ghosts were removed."""
    if _local_peers:
        await database_sync_to_async(services.refresh_presences)(list(_local_peers))
    swept = await database_sync_to_async(services.sweep_stale_presences)()
    return len(swept)


async def _loop() -> None:
    while True:
        await asyncio.sleep(settings.PRESENCE_TOUCH_INTERVAL)
        try:
            swept = await run_round()
        except Exception:
            # The database or Redis may be briefly away; the next round tries again.
            logger.exception("presence heartbeat failed")
            continue
        if swept:
            logger.info("swept %d presence row(s) left by a dead worker", swept)
