from django.urls import path

from rooms import views

urlpatterns = [
    path("", views.lobby, name="lobby"),
    path("rooms/new/", views.room_create, name="room-create"),
    path("rooms/<slug:slug>/", views.room_detail, name="room"),
    path("rooms/<slug:slug>/messages", views.room_messages, name="room-messages"),
    path("rooms/<slug:slug>/people", views.room_people, name="room-people"),
    path("rooms/<slug:slug>/leave", views.room_leave, name="room-leave"),
    path("rooms/<slug:slug>/goodbye", views.room_goodbye, name="room-goodbye"),
    path("rooms/<slug:slug>/invites", views.room_invites, name="room-invites"),
    path(
        "rooms/<slug:slug>/invites/<int:pk>/revoke",
        views.room_invite_revoke,
        name="room-invite-revoke",
    ),
    path("invite/<str:secret>", views.invite, name="invite"),
]
