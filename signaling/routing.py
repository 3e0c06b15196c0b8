from django.urls import path

from signaling.consumers import RoomConsumer
from signaling.heartbeat import answer_pings
from signaling.lobby import LobbyConsumer

websocket_urlpatterns = [
    path("ws/rooms/<slug:slug>/", answer_pings(RoomConsumer.as_asgi())),  # type: ignore[arg-type]
    path("ws/lobby/", LobbyConsumer.as_asgi()),
]
