from django.contrib import admin

from rooms.models import ChatMessage, ModerationAction, Presence, Profile, Room, RoomBan


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin[Profile]):
    list_display = ["display_name", "user"]
    search_fields = ["display_name", "user__username"]


class PresenceInline(admin.TabularInline[Presence, Room]):
    model = Presence
    fields = ["name", "user", "peer_id", "joined_at", "last_seen"]
    readonly_fields = ["name", "user", "peer_id", "joined_at", "last_seen"]
    extra = 0
    can_delete = False


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin[Room]):
    list_display = [
        "name",
        "slug",
        "owner",
        "kind",
        "capacity",
        "is_private",
        "is_locked",
        "created_at",
        "closed_at",
    ]
    list_filter = ["kind", "is_private", "is_locked", ("closed_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "slug", "owner__username"]
    readonly_fields = ["slug", "password", "created_at", "last_activity_at"]
    inlines = [PresenceInline]


@admin.register(ChatMessage)
class ChatMessageAdmin(admin.ModelAdmin[ChatMessage]):
    list_display = ["room", "author_name", "body", "sent_at", "hidden_at", "hidden_by"]
    list_filter = [("hidden_at", admin.EmptyFieldListFilter), "room"]
    search_fields = ["body", "author_name", "author__username", "room__name"]
    readonly_fields = ["room", "author", "author_name", "body", "sent_at", "hidden_at", "hidden_by"]


@admin.register(Presence)
class PresenceAdmin(admin.ModelAdmin[Presence]):
    list_display = ["name", "user", "room", "peer_id", "joined_at", "last_seen"]
    list_filter = ["room"]
    search_fields = ["name", "user__username", "room__name", "peer_id"]
    readonly_fields = ["room", "user", "peer_id", "channel_name", "name", "joined_at", "last_seen"]


@admin.register(RoomBan)
class RoomBanAdmin(admin.ModelAdmin[RoomBan]):
    list_display = ["user", "room", "banned_by", "reason", "created_at", "expires_at", "lifted_at"]
    list_filter = ["room", ("lifted_at", admin.EmptyFieldListFilter)]
    search_fields = ["user__username", "room__name", "reason"]


@admin.register(ModerationAction)
class ModerationActionAdmin(admin.ModelAdmin[ModerationAction]):
    list_display = ["created_at", "kind", "room", "actor", "target_user", "reason", "source"]
    list_filter = ["kind", "source", "room"]
    search_fields = ["room__name", "actor__username", "target_user__username", "reason"]
    date_hierarchy = "created_at"
