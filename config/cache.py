"""Django's Redis cache, with one Redis client per process instead of one per context.

Django keeps a cache object per asyncio context (its `caches` are context-local), and each
new object builds a new Redis client with a new connection pool. Under daphne every
websocket connection runs in a context of its own, so every join connected to Redis afresh
for its counter: 14 ms a join during the 200-join burst (docs/performance.md). The clients
here are shared by every cache object of the process with the same servers and options;
redis-py's connection pool is thread-safe.
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
