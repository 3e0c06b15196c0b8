"""ASGI application serving only the floor consumer (bench/floor.py), with Confab's
settings so that it uses the same channel layer, and the smallest call page that uses it
(bench/minimal.html, at /minimal, for bench/call_setup.py)."""

import os
from pathlib import Path
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from bench.floor import FloorConsumer  # noqa: E402

MINIMAL_PAGE = (Path(__file__).parent / "minimal.html").read_bytes()


async def minimal_page(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Every HTTP request gets the minimal call page."""
    headers = [(b"content-type", b"text/html; charset=utf-8")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": MINIMAL_PAGE})


application = ProtocolTypeRouter(
    {
        "http": minimal_page,
        "websocket": URLRouter([path("ws/rooms/<slug:slug>/", FloorConsumer.as_asgi())]),
    }
)
