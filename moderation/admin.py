from django.contrib import admin

from moderation.models import (
    AuditEntry,
    Case,
    HashBank,
    ProtectedTerm,
    Report,
    RightsHolder,
    ScreeningDecision,
    StaffRole,
    Strike,
    Suspension,
)


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    list_display = ["id", "queue", "subject_type", "subject_id", "category", "severity", "status"]
    list_filter = ["queue", "status", "category"]
    readonly_fields = [f.name for f in Case._meta.fields]


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: the table refuses changes anyway."""

    list_display = ["at", "actor", "action", "subject_type", "subject_id"]
    list_filter = ["action"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


@admin.register(HashBank)
class HashBankAdmin(admin.ModelAdmin):
    list_display = ["name", "enabled", "threshold", "action", "category"]


class ProtectedTermInline(admin.TabularInline):
    model = ProtectedTerm
    fields = ["term", "kind", "enabled"]
    extra = 0
    readonly_fields = ["term"]


@admin.register(RightsHolder)
class RightsHolderAdmin(admin.ModelAdmin):
    list_display = ["name", "contact"]
    inlines = [ProtectedTermInline]


admin.site.register([Report, ScreeningDecision, StaffRole, Strike, Suspension])
