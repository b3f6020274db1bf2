"""Posts, comments and feed items as the API shows them; input serializers for the writes."""

from __future__ import annotations

import json

from django.conf import settings
from rest_framework import serializers

from feed.models import CAPTION_MAX, COMMENT_MAX, POST_PREFIX, Comment, Post, prefixed
from feed.selectors import PageContext, share_url
from generation.models import ClipAudience, public_id


def post_body(post: Post, ctx: PageContext) -> dict:
    clip = post.clip
    return {
        "object": "post",
        "id": post.public_id,
        "video_id": public_id(clip.job_id),
        "author": {"handle": post.author.handle, "display_name": post.author.display_name},
        "caption": post.caption,
        "hashtags": post.hashtags,
        "visibility": clip.audience,
        "allow_remix": clip.allow_remix,
        "labels": clip.labels,
        "duration_s": clip.duration_s,
        "created_at": post.created_at.isoformat(),
        "edited_at": post.edited_at.isoformat() if post.edited_at else None,
        "share_url": share_url(post),
        "counts": {
            "likes": post.likes_count,
            "comments": post.comments_count,
            "remixes": ctx.remixes.get(clip.job_id, 0),
            "views": post.views_count,
            "completions": post.completions_count,
        },
        "viewer": {"liked": post.pk in ctx.liked},
    }


def row_body(row: dict) -> dict:
    """A post as :func:`post_body` shows it, from a feed row (feed.selectors.PAGE_COLUMNS)."""
    public = prefixed(POST_PREFIX, row["id"])
    labels = row["clip__labels"]
    return {
        "object": "post",
        "id": public,
        "video_id": public_id(row["clip__job_id"]),
        "author": {"handle": row["author__handle"], "display_name": row["author__display_name"]},
        "caption": row["caption"],
        "hashtags": row["hashtags"],
        "visibility": row["clip__audience"],
        "allow_remix": row["clip__allow_remix"],
        # Read with a raw cursor, JSON columns arrive as text.
        "labels": json.loads(labels) if isinstance(labels, str) else labels,
        "duration_s": row["clip__duration_s"],
        "created_at": row["created_at"].isoformat(),
        "edited_at": row["edited_at"].isoformat() if row["edited_at"] else None,
        "share_url": f"{settings.FEED_SHARE_BASE_URL}{public}",
        "counts": {
            "likes": row["likes_count"],
            "comments": row["comments_count"],
            "remixes": row["remixes"],
            "views": row["views_count"],
            "completions": row["completions_count"],
        },
        "viewer": {"liked": row["liked"]},
    }


def feed_row_item(row: dict, why: dict) -> dict:
    return {"type": "post", "post": row_body(row), "why": why}


def comment_body(comment: Comment) -> dict:
    return {
        "object": "comment",
        "id": comment.public_id,
        "author": comment.author.handle,
        "body": comment.body,
        "parent_id": f"cmt_{comment.parent_id.hex}" if comment.parent_id else None,
        "replies_count": comment.replies_count,
        "created_at": comment.created_at.isoformat(),
        # Only the author is shown a comment trust and safety removed.
        "removed": comment.removed_at is not None,
    }


class PublishInputSerializer(serializers.Serializer):
    video_id = serializers.CharField(max_length=100)
    caption = serializers.CharField(max_length=CAPTION_MAX, allow_blank=True, default="")
    visibility = serializers.ChoiceField(choices=ClipAudience.values, default=ClipAudience.PUBLIC)
    allow_remix = serializers.BooleanField(default=True)


class PostUpdateInputSerializer(serializers.Serializer):
    caption = serializers.CharField(max_length=CAPTION_MAX, allow_blank=True, required=False)
    visibility = serializers.ChoiceField(choices=ClipAudience.values, required=False)
    allow_remix = serializers.BooleanField(required=False)


class CommentInputSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=COMMENT_MAX)
    parent_id = serializers.CharField(max_length=100, required=False, allow_null=True)


class ViewInputSerializer(serializers.Serializer):
    watch_ms = serializers.IntegerField(min_value=0, max_value=60 * 60 * 1000)
    completed = serializers.BooleanField(default=False)


class PostReportInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=50)
    detail = serializers.CharField(max_length=2000, allow_blank=True, default="")


class SteeringInputSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=300)


class PreferencesInputSerializer(serializers.Serializer):
    personalized = serializers.BooleanField()


class PostSerializer(serializers.Serializer):
    """Documents a post (rendered by :func:`post_body`)."""

    object = serializers.CharField(help_text="Always `post`.")
    id = serializers.CharField(help_text="`post_<hex>`.")
    video_id = serializers.CharField()
    author = serializers.DictField()
    caption = serializers.CharField()
    hashtags = serializers.ListField(child=serializers.CharField())
    visibility = serializers.ChoiceField(choices=ClipAudience.values)
    allow_remix = serializers.BooleanField()
    share_url = serializers.CharField()
    counts = serializers.DictField(child=serializers.IntegerField())
    viewer = serializers.DictField()


class FeedPageSerializer(serializers.Serializer):
    """Documents a feed page: items are posts (with `why`) or well-being notices."""

    object = serializers.CharField()
    data = serializers.ListField(child=serializers.DictField())
    has_more = serializers.BooleanField()
    next_cursor = serializers.CharField(allow_null=True)
    session_id = serializers.CharField(allow_null=True)


def _list_of(name: str, item: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """Documents a cursor-paginated list of ``item`` (core.pagination.list_body)."""
    fields = {
        "object": serializers.CharField(help_text="Always `list`."),
        "data": item(many=True),
        "has_more": serializers.BooleanField(),
        "next_cursor": serializers.CharField(allow_null=True),
    }
    return type(name, (serializers.Serializer,), fields)


PostListSerializer = _list_of("PostListSerializer", PostSerializer)


class CommentSerializer(serializers.Serializer):
    """Documents a comment (rendered by :func:`comment_body`)."""

    object = serializers.CharField(help_text="Always `comment`.")
    id = serializers.CharField(help_text="`cmt_<hex>`.")
    author = serializers.CharField(help_text="The author's handle.")
    body = serializers.CharField()
    parent_id = serializers.CharField(allow_null=True)
    replies_count = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    removed = serializers.BooleanField(
        help_text="Removed by trust and safety: only its author is shown it."
    )


CommentListSerializer = _list_of("CommentListSerializer", CommentSerializer)


class PreferencesSerializer(serializers.Serializer):
    object = serializers.CharField(help_text="Always `feed.preferences`.")
    steering = serializers.CharField(allow_null=True)
    personalized = serializers.BooleanField()


class ReportCreatedSerializer(serializers.Serializer):
    object = serializers.CharField(help_text="Always `report`.")
    id = serializers.CharField()
    status = serializers.CharField()
