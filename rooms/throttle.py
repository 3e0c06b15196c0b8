"""Fixed-window counters in Django's cache, shared by every worker when the cache is Redis.

Used where a person, not a connection, must be limited: joins per minute, failed sign-ins
(the rules are below, shared by every form that checks an account's password),
private-room password guesses.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache


def _key(scope: str, ident: str) -> str:
    # Hashed so that any string (a username, an IP address) makes a valid, short cache key.
    return f"throttle:{scope}:{hashlib.sha256(ident.encode()).hexdigest()[:32]}"


def count(scope: str, ident: str) -> int:
    return int(cache.get(_key(scope, ident), 0))


def hit(scope: str, ident: str, window: int) -> int:
    """Count one event in the current window and return the count so far."""
    key = _key(scope, ident)
    if counting := getattr(cache, "count_in_window", None):  # Redis: one round trip
        return int(counting(key, window))
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


# --- Sign-in failures: one set of rules for every form that checks a password ---------------
# (the site's login, the admin's login, and the old password of a password change; see
# rooms/forms.py). The per-address limit is wider, for people sharing an office's NAT, but
# stops one client from trying a few passwords each on many usernames.
LOGIN_USER = "login-user"
LOGIN_ADDRESS = "login-address"
ADDRESS_FACTOR = 4


def login_username(username: str) -> str:
    """The name failures are counted under: the one Django authenticates.

    The login forms' UsernameField strips the name and applies NFKC, the user model's
    normalize_username, so "alice" typed in fullwidth letters signs in as alice and must
    share her counter. Normalising again here is harmless (NFKC is idempotent) and keeps a
    caller that passes a raw name on the same key. Case is kept: the default backend looks
    usernames up case-sensitively, so "ALICE" is another account (or none), and a guess at
    it is no guess at alice's password.
    """
    return str(get_user_model().normalize_username(username))


def _login_idents(username: str | None, address: str | None) -> list[tuple[str, str, int]]:
    limit = settings.LOGIN_FAILURES_LIMIT
    idents = []
    if username:
        idents.append((LOGIN_USER, login_username(username), limit))
    if address:
        idents.append((LOGIN_ADDRESS, address, limit * ADDRESS_FACTOR))
    return idents


def login_locked(username: str | None, address: str | None) -> bool:
    """Whether a sign-in as `username` from `address` must be refused unchecked."""
    return any(
        exceeded(scope, ident, limit) for scope, ident, limit in _login_idents(username, address)
    )


def login_failed(username: str | None, address: str | None) -> None:
    """Count one refused sign-in against the username and the address."""
    for scope, ident, _limit in _login_idents(username, address):
        hit(scope, ident, settings.THROTTLE_WINDOW)
