from django.contrib import admin

from feed.models import Comment, FeedSession, Post


@admin.register(Post)
class PostAdmin(admin.ModelAdmin):
    list_display = ("id", "author", "created_at", "likes_count", "comments_count", "views_count")
    raw_id_fields = ("clip", "author")
    readonly_fields = ("likes_count", "comments_count", "views_count", "completions_count")
    exclude = ("embedding",)


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin):
    list_display = ("id", "post", "author", "created_at")
    raw_id_fields = ("post", "author", "parent")


@admin.register(FeedSession)
class FeedSessionAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "created_at")
    raw_id_fields = ("user",)
