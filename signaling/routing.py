from django.urls import path

from signaling.consumers import RoomConsumer
from signaling.heartbeat import answer_pings
from signaling.lobby import LobbyConsumer
from signaling.outages import SessionAuthMiddleware

websocket_urlpatterns = [
    # The room consumer reads its user in the join's database call (one hop fewer a join).
    path(
        "ws/rooms/<slug:slug>/",
        SessionAuthMiddleware(answer_pings(RoomConsumer.as_asgi()), read_user=False),
    ),
    path("ws/lobby/", SessionAuthMiddleware(LobbyConsumer.as_asgi())),
]
