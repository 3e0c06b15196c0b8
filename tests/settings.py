"""Settings for the test suite: the real settings with a throwaway key.

Anything else comes from the environment as in production, so `make test` can run the
same suite against PostgreSQL (DATABASE_URL) and Redis (REDIS_URL).
"""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-use-0123456789")
os.environ.setdefault("HTTPS", "0")

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast tests only

for cache in CACHES.values():  # noqa: F405
    cache["KEY_FUNCTION"] = "tests.cache_keys.make_key"
