"""How signaling reaches the database: rooms/ services on a few threads of its own.

Channels' `database_sync_to_async` runs every call of a process on one thread, so a
worker's joins wait for the database one after another: at the start of the hour, 200
joins into 200 different rooms queued behind each other while the worker's core stayed half
idle. On PostgreSQL each join only locks its own room's row, so they can wait side by side:
`DATABASE_THREADS` threads, each with its own connection from the pool (config/settings.py).
The guarantees do not depend on the thread: a join is one transaction with the room row
locked, as between workers.

SQLite keeps one thread (the default there): it has one writer at a time anyway.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections

P = ParamSpec("P")
R = TypeVar("R")

_threads = (
    ThreadPoolExecutor(max_workers=settings.DATABASE_THREADS, thread_name_prefix="confab-db")
    if settings.DATABASE_THREADS > 1
    else None
)


def db(func: Callable[P, R]) -> Callable[P, Coroutine[Any, Any, R]]:
    """`func` as a coroutine function that runs it on a database thread and gives the
    thread's connection back (to the pool) before and after.

    Channels' database_sync_to_async does that clean-up outside the context `func` runs in,
    and asgiref (3.13) keeps the connection `func` opened in that context: the clean-up did
    not see it, and every thread kept a connection checked out of the pool. Here it runs
    inside, beside `func`."""

    @functools.wraps(func)
    def cleaned(*args: P.args, **kwargs: P.kwargs) -> R:
        close_old_connections()
        try:
            return func(*args, **kwargs)
        finally:
            close_old_connections()

    if _threads is None:
        return sync_to_async(cleaned)
    return sync_to_async(cleaned, thread_sensitive=False, executor=_threads)
