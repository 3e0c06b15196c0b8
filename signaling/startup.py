import logging

from django.conf import settings

logger = logging.getLogger("confab")


def log_startup_warnings() -> None:
    """Said once when a server process starts, where operators look."""
    if not settings.TURN_URLS:
        logger.warning(
            "No TURN server configured (TURN_URLS): calls between people behind different "
            "NATs or firewalls may fail. See docs/deployment.md."
        )
    if not settings.REDIS_URL:
        logger.info(
            "In-memory channel layer: run one server process only (set REDIS_URL for more)."
        )
