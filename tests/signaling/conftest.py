from tests.async_db import close_consumer_connections

__all__ = ["close_consumer_connections"]
