from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts.models import ApiKey, Block, Follow, Notification, ParentalEvent, ParentalLink, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ("-date_joined",)
    list_display = ("handle", "display_name", "email", "is_staff", "is_active", "date_joined")
    search_fields = ("handle", "display_name", "email")
    fieldsets = (
        (None, {"fields": ("handle", "password")}),
        ("Profile", {"fields": ("display_name", "email", "bio", "avatar", "birth_date")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("handle", "password1", "password2")}),
    )
    filter_horizontal = ("groups",)
    list_filter = ("is_staff", "is_active")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("prefix", "user", "name", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "key_hash", "created_at", "last_used_at")
    search_fields = ("prefix", "user__handle")


admin.site.register(Follow)
admin.site.register(Block)
admin.site.register(Notification)


@admin.register(ParentalLink)
class ParentalLinkAdmin(admin.ModelAdmin):
    list_display = ("parent", "teen", "created_at", "revoked_at")
    search_fields = ("parent__handle", "teen__handle")
    # Controls change through the service (it records each change); the admin only reads them.
    readonly_fields = [f.name for f in ParentalLink._meta.fields]


@admin.register(ParentalEvent)
class ParentalEventAdmin(admin.ModelAdmin):
    list_display = ("at", "actor", "action", "link_id")
    readonly_fields = [f.name for f in ParentalEvent._meta.fields]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
