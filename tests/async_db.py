from collections.abc import AsyncIterator

import pytest
from channels.db import database_sync_to_async
from django.db import connections


@pytest.fixture(autouse=True)
async def close_consumer_connections(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Consumers query from a worker thread; close its connections after each test so
    PostgreSQL can drop the test database at the end."""
    yield
    if request.node.get_closest_marker("django_db"):
        await database_sync_to_async(connections.close_all)()
