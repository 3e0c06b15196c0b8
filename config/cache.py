"""Django's Redis cache, with one Redis client per process instead of one per context.

Django keeps a cache object per asyncio context (its `caches` are context-local), and each
new object builds a new Redis client with a new connection pool. Under daphne every
websocket connection runs in a context of its own, so every join connected to Redis afresh
for its counter: 14 ms a join during the 200-join burst (docs/performance.md). The clients
here are shared by every cache object of the process with the same servers and options;
redis-py's connection pool is thread-safe.

It also counts in a fixed window in one round trip (rooms/throttle.py): Django's add and
incr take three (SET NX, then EXISTS and INCR), 0.8 ms of every join.
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient

_clients: dict[str, RedisCacheClient] = {}
_lock = threading.Lock()


class SharedRedisCache(RedisCache):
    # Set by RedisCache.__init__; django-stubs leaves them out.
    _servers: list[str]
    _options: dict[str, Any]
    _class: type[RedisCacheClient]

    @cached_property
    def _cache(self) -> RedisCacheClient:
        key = repr((self._servers, sorted(self._options.items())))
        with _lock:
            if key not in _clients:
                _clients[key] = self._class(self._servers, **self._options)
            return _clients[key]

    def count_in_window(self, key: str, window: int) -> int:
        """Count one event under `key` in a window of `window` seconds that starts with the
        first event, and return the count so far. One round trip: SET NX with the expiry
        makes the key only if it is missing, INCR counts. The key and the stored integer
        are the ones Django's own get and add use, so cache.get reads the count."""
        key = self.make_and_validate_key(key)
        client = self._cache.get_client(key, write=True)
        pipe = client.pipeline(transaction=False)
        pipe.set(key, 0, ex=window, nx=True)
        pipe.incr(key)
        _made, count = pipe.execute()
        return int(count)
