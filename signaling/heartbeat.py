"""Answer heartbeats below Channels.

Every page pings every 20 s, so a server with 5,000 people in calls answers 250 pings a
second. Through the consumer each one costs as much as a relayed message (daphne's queue,
Channels' dispatch machinery, the consumer); here the bare `{"type":"ping"}` frame is
answered by a thin ASGI wrapper around the consumer and never reaches it. Pings with an
`id`, and pings beyond a small per-connection budget, go through the consumer as usual
(where the protocol module and the rate limits see them).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from signaling.ratelimit import TokenBucket

Message = dict[str, Any]
ASGIApp = Callable[
    [Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]

PING = '{"type":"ping"}'
PONG = {"type": "websocket.send", "text": '{"type":"pong"}'}


def answer_pings(app: ASGIApp) -> ASGIApp:
    async def wrapped(
        scope: Message,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        state = {"open": False}
        budget = TokenBucket(rate=1.0, burst=5)

        async def watched_send(message: Message) -> None:
            if message["type"] == "websocket.accept":
                state["open"] = True
            elif message["type"] == "websocket.close":
                state["open"] = False
            await send(message)

        async def filtered_receive() -> Message:
            while True:
                message = await receive()
                if (
                    state["open"]
                    and message["type"] == "websocket.receive"
                    and message.get("text", "").replace(" ", "") == PING
                    and budget.take()
                ):
                    await send(PONG)
                    continue
                return message

        await app(scope, filtered_receive, watched_send)

    return wrapped
