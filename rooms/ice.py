"""ICE servers for a connection, with TURN credentials in coturn's REST scheme.

coturn (`use-auth-secret`) accepts a username "<unix expiry>:<id>" whose password is
base64(HMAC-SHA1(static-auth-secret, username)). The secret stays on the server; what a
page receives expires after TURN_CREDENTIAL_TTL seconds and is refreshed before that.

The room page gets a set too (rooms/views.py), so that its first peer connection can be
made on the pre-join screen, before the welcome brings the seat's own (docs/protocol.md,
"Negotiation"); the signaling consumer sends the seat's and refreshes them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import time
from typing import Any

from django.conf import settings

# Fresh TURN credentials are pushed when this fraction of their lifetime has passed.
REFRESH_AT = 0.75


def turn_credential(secret: str, username: str) -> str:
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def turn_username(ident: str, ttl: int, now: float | None = None) -> str:
    # Rounded up, so a credential lives at least `ttl` seconds: the refresh schedule counts on it.
    expiry = math.ceil(now if now is not None else time.time()) + ttl
    return f"{expiry}:{ident}"


def ice_servers(ident: str, now: float | None = None) -> list[dict[str, Any]]:
    """The RTCConfiguration.iceServers list for one connection (`ident` names it in
    coturn's logs: we use the peer id, which means nothing outside this server)."""
    servers: list[dict[str, Any]] = []
    if settings.STUN_URLS:
        servers.append({"urls": list(settings.STUN_URLS)})
    if settings.TURN_URLS:
        entry: dict[str, Any] = {"urls": list(settings.TURN_URLS)}
        if settings.TURN_SECRET:
            username = turn_username(ident, settings.TURN_CREDENTIAL_TTL, now)
            entry["username"] = username
            entry["credential"] = turn_credential(settings.TURN_SECRET, username)
        servers.append(entry)
    return servers


def fresh_seconds() -> int:
    """How long a set of credentials is as good as a fresh one: until the refresh would
    have replaced it. A page uses its pre-join set for a first connection until then."""
    return int(settings.TURN_CREDENTIAL_TTL * (1 - REFRESH_AT))
