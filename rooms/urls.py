from django.urls import path

from rooms import views

urlpatterns = [
    path("", views.lobby, name="lobby"),
    path("rooms/new/", views.room_create, name="room-create"),
    path("rooms/<slug:slug>/", views.room_detail, name="room"),
    path("rooms/<slug:slug>/messages", views.room_messages, name="room-messages"),
    path("rooms/<slug:slug>/people", views.room_people, name="room-people"),
    path("rooms/<slug:slug>/leave", views.room_leave, name="room-leave"),
]
