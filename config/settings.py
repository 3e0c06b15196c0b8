"""Confab settings.

Everything a deployment changes comes from the environment (or an optional ``.env``
file beside ``manage.py``); ``.env.example`` documents each variable. With nothing
set, Confab runs on one machine: a SQLite file and the in-memory channel layer,
which only works inside one process (``make run``). Production sets ``DEBUG=0``, a
real ``SECRET_KEY``, ``REDIS_URL`` and usually ``DATABASE_URL``.
"""

from pathlib import Path

import django_stubs_ext
import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Off unless asked for: `make run` sets DEBUG=1, a forgotten variable in production
# must not expose tracebacks.
DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment or in .env "
            "(for example: python -c 'import secrets; print(secrets.token_urlsafe(50))'). "
            "Only DEBUG=1 runs fall back to a development key."
        )
    SECRET_KEY = "django-insecure-development-only-key-do-not-use-in-production"  # noqa: S105

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # daphne first: its runserver replaces Django's, so the ASGI app is what runs.
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rooms",
    "signaling",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.middleware.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "rooms.middleware.GuestOnlyMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = None
ASGI_APPLICATION = "config.asgi.application"

# SQLite by default. "IMMEDIATE" makes every transaction take SQLite's write lock when it
# starts, so the join transaction (count seats, then insert) cannot interleave with
# another join; PostgreSQL locks the room row instead (rooms/services.py).
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20}
    )
# PostgreSQL: a pool of connections per worker process (psycopg_pool, Django's "pool"
# option). Without one, every database call under daphne (signaling/db.py) opens a new
# connection and closes it (CONN_MAX_AGE=0, the only setting that is safe under ASGI), and a
# join makes three such calls (docs/performance.md).
# DATABASE_POOL_SIZE is the most connections a worker holds: the signaling threads below,
# plus the thread Django runs views and the presence sweeper on.
POSTGRESQL = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
DATABASE_POOL = env.bool("DATABASE_POOL", default=True)
# Threads a worker's signaling runs database work on (signaling/db.py). On PostgreSQL joins
# into different rooms then wait for the database side by side instead of in one queue;
# SQLite has one writer at a time anyway, and its busy-waiting makes a queue the faster one.
DATABASE_THREADS = env.int("DATABASE_THREADS", default=4 if POSTGRESQL else 1)
DATABASE_POOL_SIZE = env.int("DATABASE_POOL_SIZE", default=DATABASE_THREADS + 4)
if DATABASE_POOL and POSTGRESQL:
    # Pooled connections go back to the pool when Django closes them: CONN_MAX_AGE must be 0.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 2,
        "max_size": DATABASE_POOL_SIZE,
        # A query waits this long for a connection, then fails as an outage (a join closes
        # with 4503): with the database down the pool has none to give.
        "timeout": 3,
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Channel layer: in-memory (one process only) unless REDIS_URL is set. With Redis, the
# pub/sub layer unless CHANNEL_LAYER=core: both were measured on our relay, join and chat
# workloads (make bench); figures and the reason for pub/sub are in docs/deployment.md.
REDIS_URL = env.str("REDIS_URL", default="")
CHANNEL_LAYER = env.str("CHANNEL_LAYER", default="pubsub")
if CHANNEL_LAYER not in ("pubsub", "core"):
    raise ImproperlyConfigured("CHANNEL_LAYER must be 'pubsub' or 'core'.")
if REDIS_URL and CHANNEL_LAYER == "core":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                # The core layer drops messages silently past `capacity`, and all of a
                # process's consumers share one receive channel: the default (100) lost
                # "peer joined" messages in a join burst. 5,000 holds a worker's worth of
                # signaling bursts; memory in Redis is bounded by it times the message size.
                "capacity": env.int("CHANNEL_LAYER_CAPACITY", default=5000),
                # Signaling older than this is useless to a browser (it has re-offered or
                # given up); the default of 60 s would only deliver stale offers late.
                "expiry": env.int("CHANNEL_LAYER_EXPIRY", default=10),
            },
        }
    }
elif REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "lobby"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
# Without collectstatic (make run, tests) WhiteNoise serves straight from the finders.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=True)

# HTTPS settings: on by default when DEBUG is off, so `check --deploy` is clean; a
# deployment behind a TLS proxy keeps them, plain-http demos turn them off explicitly.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
USE_X_FORWARDED_HOST = env.bool("USE_X_FORWARDED_HOST", default=False)
HTTPS = env.bool("HTTPS", default=not DEBUG)
SECURE_SSL_REDIRECT = HTTPS
# Load balancers probe workers over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# Rooms.
ROOM_DEFAULT_CAPACITY = env.int("ROOM_DEFAULT_CAPACITY", default=6)
CHAT_HISTORY_SIZE = 50

# ICE: STUN and TURN (docs/deployment.md). None by default: an installation nobody has
# configured must contact no third party, and browsers still connect over their own
# addresses (host candidates), which serves one LAN and `make run`. Across NATs calls need
# the deployment's own STUN and TURN (coturn serves both); signaling/startup.py says so.
STUN_URLS = env.list("STUN_URLS", default=[])
TURN_URLS = env.list("TURN_URLS", default=[])
TURN_SECRET = env.str("TURN_SECRET", default="")
TURN_CREDENTIAL_TTL = env.int("TURN_CREDENTIAL_TTL", default=3600)
ICE_TRANSPORT_POLICY = env.str("ICE_TRANSPORT_POLICY", default="all")
if ICE_TRANSPORT_POLICY not in ("all", "relay"):
    raise ImproperlyConfigured("ICE_TRANSPORT_POLICY must be 'all' or 'relay'.")
if TURN_URLS and not TURN_SECRET:
    raise ImproperlyConfigured(
        "TURN_URLS needs TURN_SECRET (coturn's static-auth-secret): browsers reject TURN "
        "servers without credentials."
    )

# Large rooms through Janus's VideoRoom (docs/deployment.md, "Janus (SFU)"): the websocket
# API URLs of the Janus servers (ws://127.0.0.1:8188/, ...; reachable by the workers only,
# never by browsers) and their api_secret. None set: no SFU rooms, and the lobby says why.
# A new SFU room goes to the least loaded server and stays there.
JANUS_URLS = env.list("JANUS_URLS", default=[])
JANUS_API_SECRET = env.str("JANUS_API_SECRET", default="")
if JANUS_URLS and not JANUS_API_SECRET:
    raise ImproperlyConfigured(
        "JANUS_URLS needs JANUS_API_SECRET (janus.jcfg general.api_secret): an SFU that "
        "anyone on its network can drive is an open relay."
    )

# Presence: each worker refreshes its own connections' rows every PRESENCE_TOUCH_INTERVAL
# seconds; a row not refreshed for PRESENCE_TIMEOUT seconds belongs to a dead worker and is
# swept by the others (signaling/presence.py, docs/deployment.md).
HEARTBEAT_INTERVAL = 20
# Names this server process in the X-Confab-Worker header and in `welcome`, so a user or a
# test can tell which worker behind the proxy they reached.
WORKER_ID = env.str("WORKER_ID", default="")
PRESENCE_TOUCH_INTERVAL = env.int("PRESENCE_TOUCH_INTERVAL", default=10)
# A waiting person's page is told within this many seconds whether a moderator is in the
# call (rooms/waiting.py, signaling/consumers.py watch_moderators).
WAITING_POLL_INTERVAL = env.float("WAITING_POLL_INTERVAL", default=5.0)
PRESENCE_TIMEOUT = env.int("PRESENCE_TIMEOUT", default=45)
# A socket that drops without `leave` keeps its seat this long for the page to resume it.
RESUME_GRACE = env.int("RESUME_GRACE", default=30)

# Files sent peer to peer in a call (docs/protocol.md, "Files (peer to peer)"): the largest
# file, in MiB, that a page offers or accepts. 0 turns file transfer off (no button, no data
# channel). The bytes never reach the server; receivers hold a file in memory until saved.
FILE_TRANSFER_MAX_MB = env.int("FILE_TRANSFER_MAX_MB", default=100)
if FILE_TRANSFER_MAX_MB < 0:
    raise ImproperlyConfigured("FILE_TRANSFER_MAX_MB must be 0 (off) or a number of MiB.")

# Abuse limits (docs/security.md). Per connection, token buckets: (per second, burst).
RATE_LIMITS = {
    "signal": (
        env.float("RATE_SIGNAL_PER_SECOND", default=50.0),
        env.int("RATE_SIGNAL_BURST", default=200),
    ),
    "chat": (env.float("RATE_CHAT_PER_SECOND", default=1.0), env.int("RATE_CHAT_BURST", default=5)),
    # Everyone sees each one float by: a few are a mood, a stream is noise.
    "reaction": (
        env.float("RATE_REACTION_PER_SECOND", default=1.0),
        env.int("RATE_REACTION_BURST", default=5),
    ),
    "other": (
        env.float("RATE_OTHER_PER_SECOND", default=5.0),
        env.int("RATE_OTHER_BURST", default=30),
    ),
}
# Dropped messages within the window before the socket is closed with 4429.
RATE_LIMIT_STRIKES = env.int("RATE_LIMIT_STRIKES", default=30)
RATE_LIMIT_STRIKE_WINDOW = 10
# Bad messages per minute before the socket is closed with 4400.
BAD_MESSAGE_LIMIT = env.int("BAD_MESSAGE_LIMIT", default=20)
# Per person, across workers (counted in the cache).
MAX_CONNECTIONS_PER_ROOM = env.int("MAX_CONNECTIONS_PER_ROOM", default=2)
MAX_CONNECTIONS_PER_USER = env.int("MAX_CONNECTIONS_PER_USER", default=6)
JOINS_PER_MINUTE = env.int("JOINS_PER_MINUTE", default=20)
LOGIN_FAILURES_LIMIT = env.int("LOGIN_FAILURES_LIMIT", default=5)  # per 15 minutes
ROOM_PASSWORD_FAILURES_LIMIT = env.int("ROOM_PASSWORD_FAILURES_LIMIT", default=5)  # per 15 min
THROTTLE_WINDOW = 15 * 60
# Guests (rooms/guests.py) one address may become in an hour, whatever links it holds: each
# is a row in the user table, and a link for everyone must not fill it.
GUESTS_PER_ADDRESS_PER_HOUR = env.int("GUESTS_PER_ADDRESS_PER_HOUR", default=30)

# The cache holds the throttling counters: shared through Redis when there is one.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "config.cache.SharedRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "confab",
        }
    }
    # Every websocket handshake reads the session: from Redis first (cached_db writes both,
    # and falls back to the database), one PostgreSQL query fewer per join.
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}
