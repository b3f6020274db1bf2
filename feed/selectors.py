"""Reads for the feed. Every list of posts goes through :func:`posts_visible_to`, which is the
clip visibility rule (generation.selectors.clips_visible_q) applied through the post's clip."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.postgres.search import SearchQuery
from django.db.models import Q, QuerySet

from accounts.models import Follow
from accounts.selectors import user_get_for_viewer
from core.errors import InvalidRequest, NotFound
from core.pagination import paginate_queryset
from feed.models import (
    COMMENT_PREFIX,
    POST_PREFIX,
    Comment,
    FeedPreferences,
    Like,
    NotInterested,
    Post,
    parse_prefixed,
)
from generation.selectors import clips_visible_q
from remix.models import LineageNode

HASHTAG = re.compile(r"#(\w{1,100})")
# What showing and ranking a post reads: never the search vector or the embedding (kilobytes a
# row, parsed in Python) nor the author's and clip's other columns.
SHOWN_FIELDS = (
    *(
        f.name
        for f in Post._meta.concrete_fields
        if f.name not in {"search", "embedding", "prompt"}
    ),
    "author__handle",
    "author__display_name",
    "author__birth_date",
    "clip__job_id",
    "clip__user_id",
    "clip__audience",
    "clip__allow_remix",
    "clip__labels",
    "clip__duration_s",
    "clip__published_at",
)
SEARCH_MAX = 200


def _through(q: Q, prefix: str) -> Q:
    """``q`` (a filter on one model) as a filter on a model that reaches it through ``prefix``."""
    moved = Q()
    moved.connector, moved.negated = q.connector, q.negated
    moved.children = [
        _through(child, prefix) if isinstance(child, Q) else (prefix + child[0], child[1])
        for child in q.children
    ]
    return moved


def posts_visible_to(user) -> QuerySet:
    # Safety: the clip's visibility rule (publication, holds, removals, blocks, teen ratings)
    # is the only filter on who sees a post; the feed adds none of its own that could drift.
    return (
        Post.objects.filter(_through(clips_visible_q(user), "clip__"))
        .select_related("author", "clip")
        .only(*SHOWN_FIELDS)
    )


def hashtags_in(text: str) -> list[str]:
    seen: dict[str, None] = {}
    for tag in HASHTAG.findall(text or ""):
        seen.setdefault(tag.lower(), None)
    return list(seen)


def _not_found(post_id: str) -> NotFound:
    return NotFound(f"No post found with id {post_id!r}.", code="post_not_found", param="post_id")


def post_get_for_viewer(*, post_id: str, user) -> Post:
    """A post ``user`` may see. Anything else answers exactly as a missing id does."""
    pk = parse_prefixed(POST_PREFIX, post_id)
    post = posts_visible_to(user).filter(pk=pk).first() if pk else None
    if post is None:
        raise _not_found(post_id)
    return post


def comment_get_for_viewer(*, comment_id: str, user) -> Comment:
    pk = parse_prefixed(COMMENT_PREFIX, comment_id)
    comment = (
        Comment.objects.select_related("post__clip__job", "post__author", "author")
        .filter(pk=pk, post__in=posts_visible_to(user).values("pk"))
        .first()
        if pk
        else None
    )
    if comment is None:
        raise NotFound(
            f"No comment found with id {comment_id!r}.",
            code="comment_not_found",
            param="comment_id",
        )
    return comment


def comments_of(*, post: Post, user, parent: Comment | None = None) -> QuerySet:
    """Top-level comments of ``post`` (or the replies to ``parent``), without those of people
    the viewer blocks or is blocked by."""
    from accounts.selectors import blocked_either_way_q

    return (
        Comment.objects.filter(post=post, parent=parent)
        .exclude(blocked_either_way_q(user, "author_id"))
        .select_related("author")
    )


def profile_posts(*, handle: str, viewer) -> QuerySet:
    author = user_get_for_viewer(handle=handle, viewer=viewer)
    return posts_visible_to(viewer).filter(author=author)


def search_posts(*, query: str, viewer) -> QuerySet:
    """Posts whose prompt or caption match ``query`` (Postgres full text, websearch syntax);
    ``#tags`` in the query must all be on the post."""
    query = (query or "").strip()
    if not query or len(query) > SEARCH_MAX:
        raise InvalidRequest(
            f"q must be 1-{SEARCH_MAX} characters.", code="invalid_query", param="q"
        )
    posts = posts_visible_to(viewer)
    tags = hashtags_in(query)
    if tags:
        posts = posts.filter(hashtags__contains=tags)
    words = HASHTAG.sub(" ", query).strip()
    if words:
        posts = posts.filter(search=SearchQuery(words, search_type="websearch", config="english"))
    return posts


def hashtag_posts(*, tag: str, viewer) -> QuerySet:
    tag = tag.lstrip("#").lower()
    if not re.fullmatch(r"\w{1,100}", tag):
        raise InvalidRequest("Not a hashtag.", code="invalid_hashtag", param="tag")
    return posts_visible_to(viewer).filter(hashtags__contains=[tag])


def cameo_posts(*, handle: str, viewer) -> QuerySet:
    """A cameo's public appearances: published posts showing it that ``viewer`` may see (the
    cameo itself must be visible to them)."""
    from cameo.models import Appearance
    from cameo.selectors import cameo_get_by_handle_for_viewer

    cameo = cameo_get_by_handle_for_viewer(handle=handle, user=viewer)
    jobs = Appearance.objects.filter(cameo=cameo, removed_at__isnull=True).values("job_id")
    return posts_visible_to(viewer).filter(clip__job_id__in=jobs)


def following_posts(*, user) -> QuerySet:
    followees = Follow.objects.filter(follower_id=user.pk).values("followee_id")
    return posts_visible_to(user).filter(author_id__in=followees)


def following_page(*, user, cursor: str | None, limit: int) -> tuple[list[Post], str | None]:
    # uuid7 keys: -id is newest first, and the keyset on it is stable while posts arrive.
    return paginate_queryset(
        following_posts(user=user), ordering=("-id",), cursor=cursor, limit=limit
    )


def preferences_of(user) -> FeedPreferences:
    return FeedPreferences.objects.filter(user=user).first() or FeedPreferences(user=user)


@dataclass
class PageContext:
    """What a page of posts shows besides the rows: two queries for the whole page."""

    liked: set = field(default_factory=set)
    remixes: dict = field(default_factory=dict)
    explain: dict = field(default_factory=dict)


def page_context(posts: list[Post], *, viewer, explain: dict | None = None) -> PageContext:
    ids = [p.pk for p in posts]
    liked = set()
    if ids and viewer is not None and viewer.is_authenticated:
        liked = set(
            Like.objects.filter(user=viewer, post_id__in=ids).values_list("post_id", flat=True)
        )
    remixes = {}
    if ids:
        remixes = dict(
            LineageNode.objects.filter(job_id__in=[p.clip.job_id for p in posts]).values_list(
                "job_id", "children_count"
            )
        )
    return PageContext(liked=liked, remixes=remixes, explain=explain or {})


def share_url(post: Post) -> str:
    return f"{settings.FEED_SHARE_BASE_URL}{post.public_id}"


def not_interested_authors(user) -> QuerySet:
    return NotInterested.objects.filter(user=user).values("author_id")


def post_remixes_page(*, post: Post, user, cursor: str | None, limit: int):
    """The published remixes of ``post`` that ``user`` may see, in the order the lineage graph
    lists a clip's children (remix.selectors.children_page)."""
    from remix.selectors import children_page

    items, next_cursor = children_page(clip=post.clip, user=user, cursor=cursor, limit=limit)
    clip_ids = [item.clip.pk for item in items]
    rows = {p.clip_id: p for p in posts_visible_to(user).filter(clip_id__in=clip_ids)}
    return [rows[pk] for pk in clip_ids if pk in rows], next_cursor


def comment_subject(*, subject_id: str, viewer):
    """A comment as moderation's report and case subject (``viewer`` None: the system)."""
    from moderation.subjects import Subject

    pk = parse_prefixed(COMMENT_PREFIX, subject_id)
    comment = (
        Comment.objects.select_related("author", "post__clip__job").filter(pk=pk).first()
        if pk
        else None
    )
    if comment is not None and viewer is not None:
        visible = posts_visible_to(viewer).filter(pk=comment.post_id).exists()
        comment = comment if visible else None
    if comment is None:
        raise NotFound("No such comment.", code="subject_not_found", param="subject_id")
    reach = 1 + comment.post.views_count
    return Subject("comment", comment.public_id, comment.author, reach, comment, comment.body[:80])
