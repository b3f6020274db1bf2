from django.contrib import admin

from cameo.models import Appearance, Cameo, CameoGrant, LedgerEntry


@admin.register(Cameo)
class CameoAdmin(admin.ModelAdmin):
    list_display = ("handle", "kind", "owner", "status", "audience", "created_at")
    list_filter = ("kind", "status", "audience")
    search_fields = ("handle", "owner__handle")
    # Reference media names are private storage paths; consent settings are the owner's.
    readonly_fields = [f.name for f in Cameo._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(CameoGrant)
class CameoGrantAdmin(admin.ModelAdmin):
    list_display = ("cameo", "grantee", "status", "created_at")
    readonly_fields = [f.name for f in CameoGrant._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(Appearance)
class AppearanceAdmin(admin.ModelAdmin):
    list_display = ("cameo", "job", "user", "via", "created_at", "removed_at")
    readonly_fields = [f.name for f in Appearance._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(LedgerEntry)
class LedgerEntryAdmin(admin.ModelAdmin):
    """Read-only: the ledger is append-only everywhere, the admin included."""

    list_display = ("cameo", "seq", "action", "actor", "at")
    list_filter = ("action",)
    readonly_fields = [f.name for f in LedgerEntry._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
