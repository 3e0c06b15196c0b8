"""Cache keys for the test suite: each test gets its own namespace, so throttling counters
never leak from one test into the next, without flushing a Redis that others may share."""

import uuid

namespace = uuid.uuid4().hex


def make_key(key: str, key_prefix: str, version: int) -> str:
    return f"test-{namespace}:{key_prefix}:{version}:{key}"


def new_namespace() -> None:
    global namespace
    namespace = uuid.uuid4().hex
