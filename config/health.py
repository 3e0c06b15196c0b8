"""/healthz for load balancers and monitors: 200 when this worker can reach the database
and the channel layer, 503 naming the part that failed. Each Janus server (JANUS_URLS) is
reported too, under "sfu", without deciding the status: a worker whose Janus is down
still serves every mesh room, and its SFU rooms move to another Janus."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

from signaling.db import db

TIMEOUT = 2.0


def _database_round_trip() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


async def _channel_layer_round_trip() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    channel = await layer.new_channel("healthz.")
    await layer.send(channel, {"type": "healthz.ping"})
    message = await layer.receive(channel)
    if message.get("type") != "healthz.ping":
        raise RuntimeError("channel layer returned something else")


async def _janus_answers(url: str) -> None:
    from signaling import janus  # only where SFU rooms are configured

    await janus.info(url, settings.JANUS_API_SECRET, request_timeout=TIMEOUT)


async def _check(check: Callable[[], Awaitable[None]]) -> str:
    try:
        await asyncio.wait_for(check(), TIMEOUT)
    except TimeoutError:
        return f"timed out after {TIMEOUT:g} s"
    except Exception as problem:
        return f"failed: {type(problem).__name__}: {problem}"[:200]
    return "ok"


logger = logging.getLogger(__name__)


@never_cache
async def healthz(request: HttpRequest) -> JsonResponse:
    results = {
        # On the websockets' database threads, not the one Django runs sync views and
        # middleware on: with the database down a round trip waits for the pool's timeout,
        # and every request to this worker would queue behind it.
        "database": await _check(db(_database_round_trip)),
        "channel_layer": await _check(_channel_layer_round_trip),
    }
    healthy = all(result == "ok" for result in results.values())
    failing = [name for name, result in results.items() if result != "ok"]
    body: dict[str, object] = {"status": "ok" if healthy else "unhealthy", "checks": results}
    if failing:
        body["failing"] = failing
    if settings.JANUS_URLS:
        body["sfu"] = {
            url: await _check(functools.partial(_janus_answers, url)) for url in settings.JANUS_URLS
        }
    response = JsonResponse(body, status=200 if healthy else 503)
    if failing:
        # A 503 here is the answer the load balancer asked for, not a server error: one
        # WARNING naming the part, instead of Django's ERROR for every probe.
        logger.warning("unhealthy: %s", "; ".join(f"{n} {results[n]}" for n in failing))
        response._has_been_logged = True  # type: ignore[attr-defined]
    return response
