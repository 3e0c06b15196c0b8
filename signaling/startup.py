import logging

from django.conf import settings

logger = logging.getLogger("confab")

# What a call can and cannot reach without a STUN or TURN server of the deployment's own
# (docs/deployment.md, "TURN with coturn"). Browsers then offer only their own interface
# addresses (host candidates): enough between people on one network, never across NATs.
NO_ICE_SERVERS = (
    "No STUN or TURN server configured (STUN_URLS, TURN_URLS): browsers can connect only over "
    "their own local addresses, so calls work between people on the same network (a LAN, "
    "or this machine), and people behind NAT on different networks cannot connect to each "
    "other at all. Run coturn and set STUN_URLS, TURN_URLS and TURN_SECRET; see "
    "docs/deployment.md."
)
NO_TURN = (
    "No TURN server configured (TURN_URLS): STUN lets many home NATs connect directly, but "
    "people behind symmetric NATs, corporate firewalls or many mobile networks cannot connect "
    "to each other without a relay. Run coturn and set TURN_URLS and TURN_SECRET; see "
    "docs/deployment.md."
)


def log_startup_warnings() -> None:
    """Said once when a server process starts, where operators look."""
    if not settings.TURN_URLS:
        # TURN alone still connects everyone (through the relay; STUN beside it lets more
        # calls go direct), so only a missing TURN server is worth a warning.
        logger.warning(NO_TURN if settings.STUN_URLS else NO_ICE_SERVERS)
    if not settings.REDIS_URL:
        logger.info(
            "In-memory channel layer: run one server process only (set REDIS_URL for more)."
        )
