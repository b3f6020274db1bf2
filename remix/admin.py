from django.contrib import admin

from remix.models import LineageEdge, LineageNode


@admin.register(LineageNode)
class LineageNodeAdmin(admin.ModelAdmin):
    list_display = ("id", "job_id", "depth", "children_count", "descendants_count", "created_at")
    readonly_fields = [f.name for f in LineageNode._meta.fields]
    search_fields = ("job__id",)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(LineageEdge)
class LineageEdgeAdmin(admin.ModelAdmin):
    list_display = ("id", "parent_id", "child_id", "kind", "created_by", "created_at")
    list_filter = ("kind",)
    readonly_fields = [f.name for f in LineageEdge._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
