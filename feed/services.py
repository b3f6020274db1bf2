"""Writes for the feed: publishing, interactions, counters, steering, well-being accounting.

Counters move only by ``F()`` updates inside the transaction that writes the row they count,
so they are exact under any concurrency and never need a recount.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from redis.exceptions import RedisError

from accounts.services import notification_create
from core import embeddings
from core.errors import Conflict, Forbidden, InvalidRequest, NotFound, ServiceUnavailable
from core.pagination import decode_cursor, encode_cursor
from feed.models import (
    CAPTION_MAX,
    COMMENT_MAX,
    Comment,
    FeedPreferences,
    FeedSession,
    Like,
    NotInterested,
    Post,
    View,
)
from feed.selectors import following_page, hashtags_in, posts_visible_to
from generation.models import Clip, ClipAudience, public_id
from generation.selectors import clip_get_for_viewer

logger = logging.getLogger("montage.feed")

VISIBILITIES = {ClipAudience.PUBLIC, ClipAudience.FOLLOWERS, ClipAudience.ONLY_ME}
MAX_WATCH_MS = 60 * 60 * 1000


def _embed(text: str) -> list[float] | None:
    text = text.strip()
    return embeddings.embed([text])[0].tolist() if text else None


def _post_text(prompt: str, caption: str) -> str:
    return f"{prompt}\n{caption}".strip()


def _check_caption(caption: str) -> str:
    if not isinstance(caption, str) or len(caption) > CAPTION_MAX:
        raise InvalidRequest(
            f"caption must be text of at most {CAPTION_MAX} characters.",
            code="invalid_caption",
            param="caption",
        )
    return caption.strip()


def _check_visibility(visibility: str) -> str:
    if visibility not in VISIBILITIES:
        raise InvalidRequest(
            "visibility must be one of public, followers, only_me.",
            code="invalid_visibility",
            param="visibility",
        )
    return visibility


def _require_author(post: Post, actor, action: str) -> None:
    if post.author_id != actor.pk:
        raise Forbidden(f"Only the author can {action} this post.", code="not_post_author")


def post_publish(
    *,
    user,
    video_id: str,
    caption: str = "",
    visibility: str = ClipAudience.PUBLIC,
    allow_remix: bool = True,
) -> Post:
    """Publishes the caller's completed draft: the clip gets its audience and publication
    time (the state every reader filters on) and a post row carries the rest."""
    caption = _check_caption(caption)
    visibility = _check_visibility(visibility)
    clip = clip_get_for_viewer(job_id=video_id, user=user)
    if clip.user_id != user.pk:
        # Cameo owners may view a draft they appear in; only its creator may publish it.
        raise NotFound(
            f"No video found with id {video_id!r}.", code="video_not_found", param="video_id"
        )
    prompt = clip.job.prompt
    # Embedded before the transaction: the model must not hold row locks while it runs.
    vector = _embed(_post_text(prompt, caption))
    now = timezone.now()
    with transaction.atomic():
        locked = Clip.objects.select_for_update().filter(pk=clip.pk, removed_at__isnull=True)
        if not locked.exists():
            raise NotFound(
                f"No video found with id {video_id!r}.", code="video_not_found", param="video_id"
            )
        if Post.objects.filter(clip=clip).exists():
            raise Conflict("This video is already published.", code="already_published")
        locked.update(audience=visibility, published_at=now, allow_remix=bool(allow_remix))
        post = Post.objects.create(
            clip=clip,
            author=user,
            caption=caption,
            prompt=prompt,
            hashtags=hashtags_in(caption),
            embedding=vector,
            created_at=now,
        )
    post.clip.audience, post.clip.published_at = visibility, now
    post.clip.allow_remix = bool(allow_remix)
    return post


def post_update(
    *,
    post: Post,
    actor,
    caption: str | None = None,
    visibility: str | None = None,
    allow_remix: bool | None = None,
) -> Post:
    _require_author(post, actor, "edit")
    clip_changes = {}
    if visibility is not None:
        clip_changes["audience"] = _check_visibility(visibility)
    if allow_remix is not None:
        clip_changes["allow_remix"] = bool(allow_remix)
    post_changes = {}
    if caption is not None:
        caption = _check_caption(caption)
        post_changes = {
            "caption": caption,
            "hashtags": hashtags_in(caption),
            "embedding": _embed(_post_text(post.prompt, caption)),
            "edited_at": timezone.now(),
        }
    with transaction.atomic():
        if clip_changes:
            Clip.objects.filter(pk=post.clip_id).update(**clip_changes)
        if post_changes:
            Post.objects.filter(pk=post.pk).update(**post_changes)
    for name, value in clip_changes.items():
        setattr(post.clip, name, value)
    for name, value in post_changes.items():
        setattr(post, name, value)
    return post


def post_delete(*, post: Post, actor) -> None:
    """Unpublishes: the post and its interactions go, the clip is a private draft again."""
    _require_author(post, actor, "delete")
    with transaction.atomic():
        Clip.objects.filter(pk=post.clip_id).update(
            audience=ClipAudience.ONLY_ME, published_at=None
        )
        Post.objects.filter(pk=post.pk).delete()


def _post_data(post: Post) -> dict:
    return {"post_id": post.public_id, "video_id": public_id(post.clip.job_id)}


def like_add(*, post: Post, user) -> bool:
    """Likes ``post``; False when it was already liked (then nothing changes)."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            # ON CONFLICT: two concurrent likes by one person insert one row and count once.
            cursor.execute(
                "INSERT INTO feed_like (post_id, user_id, created_at) VALUES (%s, %s, %s) "
                "ON CONFLICT (user_id, post_id) DO NOTHING RETURNING id",
                [post.pk, user.pk, timezone.now()],
            )
            created = cursor.fetchone() is not None
        if created:
            Post.objects.filter(pk=post.pk).update(likes_count=F("likes_count") + 1)
            if post.author_id != user.pk:
                notification_create(
                    user=post.author, kind="post.liked", data=_post_data(post), actor=user
                )
    return created


def like_remove(*, post: Post, user) -> bool:
    with transaction.atomic():
        deleted, _ = Like.objects.filter(post=post, user=user).delete()
        if deleted:
            Post.objects.filter(pk=post.pk).update(likes_count=F("likes_count") - 1)
    return bool(deleted)


def comment_create(*, post: Post, author, body: str, parent: Comment | None = None) -> Comment:
    if not isinstance(body, str) or not body.strip() or len(body) > COMMENT_MAX:
        raise InvalidRequest(
            f"body must be 1-{COMMENT_MAX} characters.", code="invalid_comment", param="body"
        )
    if parent is not None and parent.post_id != post.pk:
        raise InvalidRequest(
            "That comment is on another post.", code="invalid_parent", param="parent_id"
        )
    # One level of replies: answering a reply joins its thread.
    if parent is not None and parent.parent_id is not None:
        parent = parent.parent
    with transaction.atomic():
        comment = Comment.objects.create(post=post, author=author, body=body.strip(), parent=parent)
        Post.objects.filter(pk=post.pk).update(comments_count=F("comments_count") + 1)
        if parent is not None:
            Comment.objects.filter(pk=parent.pk).update(replies_count=F("replies_count") + 1)
        data = {**_post_data(post), "comment_id": comment.public_id, "body": comment.body[:140]}
        if post.author_id != author.pk:
            notification_create(user=post.author, kind="post.commented", data=data, actor=author)
        if parent is not None and parent.author_id not in {author.pk, post.author_id}:
            notification_create(user=parent.author, kind="comment.replied", data=data, actor=author)
    return comment


def comment_delete(*, comment: Comment, actor) -> None:
    """By its author or the post's author; a top-level comment takes its replies with it."""
    if actor.pk not in {comment.author_id, comment.post.author_id}:
        raise Forbidden(
            "Only the comment's author or the post's author can delete it.",
            code="not_comment_author",
        )
    with transaction.atomic():
        # Locked so a reply racing the delete is either counted and deleted, or refused.
        Comment.objects.select_for_update().filter(pk=comment.pk).first()
        gone = 1 + Comment.objects.filter(parent=comment).count()
        deleted, _ = Comment.objects.filter(pk=comment.pk).delete()
        if not deleted:
            return
        Post.objects.filter(pk=comment.post_id).update(comments_count=F("comments_count") - gone)
        if comment.parent_id is not None:
            Comment.objects.filter(pk=comment.parent_id).update(
                replies_count=F("replies_count") - 1
            )


def view_record(*, post: Post, user, watch_ms: int, completed: bool) -> View:
    if isinstance(watch_ms, bool) or not isinstance(watch_ms, int):
        raise InvalidRequest(
            "watch_ms must be an integer.", code="invalid_watch_ms", param="watch_ms"
        )
    if not 0 <= watch_ms <= MAX_WATCH_MS:
        raise InvalidRequest(
            f"watch_ms must be between 0 and {MAX_WATCH_MS}.",
            code="invalid_watch_ms",
            param="watch_ms",
        )
    with transaction.atomic():
        view = View.objects.create(
            post=post, user=user, watch_ms=watch_ms, completed=bool(completed)
        )
        Post.objects.filter(pk=post.pk).update(
            views_count=F("views_count") + 1,
            completions_count=F("completions_count") + (1 if completed else 0),
            watch_ms=F("watch_ms") + watch_ms,
        )
    # After the commit: the tally counts only views that were recorded.
    watch_time_add(user=user, watch_ms=watch_ms)
    return view


TALLY_TTL = 2 * 24 * 3600


def _tally_keys(user) -> tuple[str, str, str]:
    """Today's well-being tally of ``user`` in Redis: items served, ms watched, and ms watched
    when the last break item was shown. Read on every feed page, so it costs no database
    write; the keys outlive their day by a day and then expire."""
    base = f"feed:day:{user.pk}:{timezone.localdate().isoformat()}"
    return f"{base}:items", f"{base}:watch", f"{base}:break"


def _tally_add(key: str, amount: int) -> int:
    cache.add(key, 0, timeout=TALLY_TTL)
    return cache.incr(key, amount)


def watch_time_add(*, user, watch_ms: int) -> None:
    try:
        _tally_add(_tally_keys(user)[1], watch_ms)
    except RedisError:
        # The view is recorded; only the take-a-break reminder may come a little late.
        logger.warning("could not add watch time for %s", user.pk, exc_info=True)


def not_interested_add(*, post: Post, user) -> bool:
    if post.author_id == user.pk:
        raise InvalidRequest("This is your own post.", code="own_post", param="post_id")
    try:
        with transaction.atomic():
            NotInterested.objects.create(user=user, post=post, author_id=post.author_id)
    except IntegrityError:
        return False
    return True


def post_report(*, post: Post, reporter, reason: str, detail: str = ""):
    """Hands the report to moderation, about the post's clip."""
    from moderation.models import Category
    from moderation.services import report_create

    if reason not in Category.values:
        raise InvalidRequest(
            f"reason must be one of {', '.join(Category.values)}.",
            code="invalid_reason",
            param="reason",
        )
    return report_create(
        reporter=reporter,
        subject_type="clip",
        subject_id=public_id(post.clip.job_id),
        reason=reason,
        detail=detail,
    )


STEER_LESS = re.compile(r"^(less|fewer|no|not|without|avoid|stop|skip)\b\s*", re.I)
STEER_MORE = re.compile(r"^(more|some|lots of|show me)\b\s*", re.I)


def steering_parse(text: str) -> tuple[list[str], list[str]]:
    """ "more cozy animation, less sports" -> (["cozy animation"], ["sports"])."""
    more, less = [], []
    for part in re.split(r"[,;.]|\bbut\b|\band\b(?=\s+(?:less|fewer|no|more)\b)", text):
        phrase = part.strip()
        if not phrase:
            continue
        if STEER_LESS.match(phrase):
            less.append(STEER_LESS.sub("", phrase).strip())
        else:
            more.append(STEER_MORE.sub("", phrase).strip())
    return [p for p in more if p], [p for p in less if p]


def steering_set(*, user, text: str) -> FeedPreferences:
    if not isinstance(text, str) or not text.strip() or len(text) > 300:
        raise InvalidRequest(
            "text must be 1-300 characters.", code="invalid_steering", param="text"
        )
    more, less = steering_parse(text.strip())
    if not more and not less:
        raise InvalidRequest(
            "Say what you want more or less of.", code="invalid_steering", param="text"
        )
    prefs, _ = FeedPreferences.objects.update_or_create(
        user=user,
        defaults={
            "steering": text.strip(),
            "steering_more": _embed(", ".join(more)) if more else None,
            "steering_less": _embed(", ".join(less)) if less else None,
            "steering_set_at": timezone.now(),
        },
    )
    return prefs


def steering_clear(*, user) -> None:
    FeedPreferences.objects.filter(user=user).update(
        steering="", steering_more=None, steering_less=None, steering_set_at=None
    )


def personalization_set(*, user, enabled: bool) -> FeedPreferences:
    prefs, _ = FeedPreferences.objects.update_or_create(
        user=user, defaults={"personalized": bool(enabled)}
    )
    return prefs


def session_expired(created_at) -> bool:
    return timezone.now() - created_at > timedelta(hours=settings.FEED_SESSION_TTL_HOURS)


# --- Feeds: sessions and well-being --------------------------------------------------------


@dataclass
class FeedPage:
    posts: list
    next_cursor: str | None
    explain: dict = field(default_factory=dict)
    notices: list = field(default_factory=list)  # "take_a_break" / "daily_limit" items
    session_id: str | None = None


def _session_cursor(session: FeedSession, offset: int) -> str:
    return encode_cursor([session.id.hex, offset])


def _session_from_cursor(cursor: str, user) -> tuple[FeedSession, int]:
    invalid = InvalidRequest("The cursor is not valid.", code="invalid_cursor", param="cursor")
    raw_id, raw_offset = decode_cursor(cursor, 2)
    try:
        session_id, offset = uuid.UUID(raw_id or ""), int(raw_offset or "")
    except ValueError as exc:
        raise invalid from exc
    session = FeedSession.objects.filter(pk=session_id, user=user).first()
    if session is None or offset not in session.page_ends:
        raise invalid
    if session_expired(session.created_at):
        raise InvalidRequest(
            "This feed session has expired; start again without a cursor.",
            code="feed_session_expired",
            param="cursor",
        )
    return session, offset


def feed_session_start(*, user, page_size: int) -> FeedSession:
    from feed.ranking import rank

    post_ids, page_ends, explain = rank(user, page_size=page_size)
    return FeedSession.objects.create(
        user=user, post_ids=post_ids, page_ends=page_ends, explain=explain
    )


def for_you_page(*, user, cursor: str | None, limit: int) -> FeedPage:
    """A page of the caller's For You session (a new session when there is no cursor). Posts
    that became hidden since the session was ranked are left out; none are added. The first
    page's ``limit`` is the session's page size: the per-page rules cut the session into
    pages once, so later pages keep those cuts whatever limit they ask for."""
    if cursor:
        session, offset = _session_from_cursor(cursor, user)
    else:
        session, offset = feed_session_start(user=user, page_size=limit), 0
    end = next((e for e in session.page_ends if e > offset), offset)
    allowed, notices = _wellbeing(user=user, wanted=end - offset)
    if allowed == 0:
        return FeedPage([], None, notices=notices, session_id=session.public_id)
    ids = session.post_ids[offset : offset + allowed]
    rows = posts_visible_to(user).in_bulk(ids)
    posts = [rows[pk] for pk in ids if pk in rows]
    more = end < len(session.post_ids) and not _limit_reached(notices)
    explain = {pk.hex: session.explain.get(pk.hex, {}) for pk in ids}
    return FeedPage(
        posts,
        _session_cursor(session, end) if more else None,
        explain=explain,
        notices=notices,
        session_id=session.public_id,
    )


def following_feed_page(*, user, cursor: str | None, limit: int) -> FeedPage:
    if cursor:
        decode_cursor(cursor, 1)  # a malformed cursor is refused before anything is counted
    allowed, notices = _wellbeing(user=user, wanted=limit)
    if allowed == 0:
        return FeedPage([], None, notices=notices)
    posts, next_cursor = following_page(user=user, cursor=cursor, limit=allowed)
    if _limit_reached(notices):
        next_cursor = None
    explain = {
        p.pk.hex: {"reason": f"From @{p.author.handle}, whom you follow", "sources": ["followed"]}
        for p in posts
    }
    return FeedPage(posts, next_cursor, explain=explain, notices=notices)


def _limit_reached(notices: list) -> bool:
    return any(n["type"] == "daily_limit" for n in notices)


def _wellbeing(*, user, wanted: int) -> tuple[int, list]:
    """How many items this page may serve, and the well-being items to show with it.

    Teen accounts get FEED_TEEN_DAILY_ITEMS feed items a day: the page that reaches the limit
    ends the scroll (no cursor) with a ``daily_limit`` item. Anyone who has watched
    FEED_BREAK_AFTER_MINUTES since the last break item gets a ``take_a_break`` item first.
    """
    items_key, watch_key, break_key = _tally_keys(user)
    notices = []
    allowed = wanted
    try:
        if user.is_teen:
            # Safety: teen accounts cannot scroll past their daily limit.
            before = _tally_add(items_key, wanted) - wanted
            allowed = max(0, min(wanted, settings.FEED_TEEN_DAILY_ITEMS - before))
            if before + allowed >= settings.FEED_TEEN_DAILY_ITEMS:
                notices.append(
                    {
                        "type": "daily_limit",
                        "message": "You have reached today's feed limit. See you tomorrow.",
                    }
                )
        tally = cache.get_many([watch_key, break_key])
    except RedisError as exc:
        if user.is_teen:
            # Safety: without the tally a teen's limit cannot be enforced; fail closed.
            raise ServiceUnavailable(code="feed_unavailable") from exc
        return allowed, notices
    watched, break_at = tally.get(watch_key, 0), tally.get(break_key, 0)
    every_ms = settings.FEED_BREAK_AFTER_MINUTES * 60 * 1000
    if watched - break_at >= every_ms:
        cache.set(break_key, watched, timeout=TALLY_TTL)
        notices.insert(
            0,
            {
                "type": "take_a_break",
                "message": f"You have watched for {watched // 60000} minutes today. "
                "Time for a break?",
            },
        )
    return allowed, notices


def feed_sessions_prune() -> int:
    """Deletes For You sessions past their lifetime (their cursors are refused already)."""
    cutoff = timezone.now() - timedelta(hours=settings.FEED_SESSION_TTL_HOURS)
    deleted, _ = FeedSession.objects.filter(created_at__lt=cutoff).delete()
    return deleted
