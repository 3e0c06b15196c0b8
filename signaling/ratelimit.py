"""Per-connection token buckets (docs/security.md).

Negotiation is bursty (an offer, then dozens of candidates within a second), chat is human
paced, so each kind of message has its own bucket. A message over its limit is dropped with
`error rate_limited`; a connection that keeps pushing is closed with 4429.
"""

from __future__ import annotations

import time

from django.conf import settings


class TokenBucket:
    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


BUCKET_OF = {
    "offer": "signal",
    "answer": "signal",
    "candidate": "signal",
    "chat": "chat",
    "reaction": "reaction",
}


class ConnectionLimits:
    """All the buckets of one connection, plus the strikes that lead to 4429. Each bucket is
    made when its kind of message first comes: most connections only ever send a few kinds,
    and an idle one (its pings are answered below Channels) none."""

    __slots__ = ("bad", "buckets", "strikes")

    def __init__(self) -> None:
        self.buckets: dict[str, TokenBucket] = {}
        self.strikes: list[float] = []
        self.bad: list[float] = []

    def allow(self, message_type: str) -> bool:
        name = BUCKET_OF.get(message_type, "other")
        bucket = self.buckets.get(name)
        if bucket is None:
            rate, burst = settings.RATE_LIMITS[name]
            bucket = self.buckets[name] = TokenBucket(rate, burst)
        return bucket.take()

    def strike(self) -> bool:
        """Record a dropped message; True when the connection should be closed (4429)."""
        self.strikes = _recent(self.strikes, settings.RATE_LIMIT_STRIKE_WINDOW)
        return len(self.strikes) >= settings.RATE_LIMIT_STRIKES

    def bad_message(self) -> bool:
        """Record an invalid message; True when the connection should be closed (4400)."""
        self.bad = _recent(self.bad, 60)
        return len(self.bad) >= settings.BAD_MESSAGE_LIMIT


def _recent(stamps: list[float], window: float) -> list[float]:
    """The stamps of the last `window` seconds, with now added."""
    now = time.monotonic()
    return [t for t in stamps if now - t < window] + [now]
