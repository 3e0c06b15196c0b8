"""Fixed-window counters in Django's cache, shared by every worker when the cache is Redis.

Used where a person, not a connection, must be limited: joins per minute, failed logins,
private-room password guesses.
"""

from __future__ import annotations

import hashlib

from django.core.cache import cache


def _key(scope: str, ident: str) -> str:
    # Hashed so that any string (a username, an IP address) makes a valid, short cache key.
    return f"throttle:{scope}:{hashlib.sha256(ident.encode()).hexdigest()[:32]}"


def count(scope: str, ident: str) -> int:
    return int(cache.get(_key(scope, ident), 0))


def hit(scope: str, ident: str, window: int) -> int:
    """Count one event in the current window and return the count so far."""
    key = _key(scope, ident)
    if cache.add(key, 1, timeout=window):
        return 1
    try:
        return int(cache.incr(key))
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=window)
        return 1


def exceeded(scope: str, ident: str, limit: int) -> bool:
    return count(scope, ident) >= limit


def reset(scope: str, ident: str) -> None:
    cache.delete(_key(scope, ident))
