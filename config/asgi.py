"""ASGI entry point: HTTP goes to Django, websockets to the signaling consumers."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Django must be set up before the consumers (and the models they import) are imported.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from config import aborted, daphne_limits  # noqa: E402
from signaling.routing import websocket_urlpatterns  # noqa: E402
from signaling.startup import log_startup_warnings  # noqa: E402

log_startup_warnings()
# daphne refuses a frame over 80 KiB at its header, with `error bad_message` and 1009, instead
# of reading it whole for parse() to refuse. daphne imports this module before it builds its
# server, so this holds however daphne is started (config/daphne_limits.py explains).
daphne_limits.install()
# A request still in flight when the worker stops is logged at INFO, not as an ERROR.
aborted.install()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Each websocket route reads the session and user itself (signaling/routing.py).
        "websocket": AllowedHostsOriginValidator(URLRouter(websocket_urlpatterns)),
    }
)
