"""ASGI application serving only the floor consumer (bench/floor.py), with Confab's
settings so that it uses the same channel layer."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from bench.floor import FloorConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {"websocket": URLRouter([path("ws/rooms/<slug:slug>/", FloorConsumer.as_asgi())])}
)
