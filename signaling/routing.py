from django.urls import path

from signaling.consumers import RoomConsumer
from signaling.lobby import LobbyConsumer

websocket_urlpatterns = [
    path("ws/rooms/<slug:slug>/", RoomConsumer.as_asgi()),
    path("ws/lobby/", LobbyConsumer.as_asgi()),
]
