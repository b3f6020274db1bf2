"""Writes for the feed: publishing, interactions, counters, steering, well-being accounting.

Counters move only by ``F()`` updates inside the transaction that writes the row they count,
so they are exact under any concurrency and never need a recount.
"""

from __future__ import annotations

import json
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

from accounts.selectors import parental_comment_allowed, parental_controls_for
from accounts.services import notification_create
from core import embeddings
from core.errors import Conflict, Forbidden, InvalidRequest, NotFound, ServiceUnavailable
from core.ids import uuid7
from core.pagination import decode_cursor, encode_cursor
from feed import selectors
from feed.models import (
    CAPTION_MAX,
    COMMENT_MAX,
    SESSION_PREFIX,
    Comment,
    FeedPreferences,
    FeedSession,
    ForYouList,
    Like,
    NotInterested,
    Post,
    View,
    prefixed,
)
from feed.selectors import hashtags_in
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
    time (the state every reader filters on) and a post row carries the rest. A teen whose
    parent has not allowed remixing publishes with remixing off, whatever was asked."""
    caption = _check_caption(caption)
    visibility = _check_visibility(visibility)
    controls = parental_controls_for(user)
    if controls is not None and not controls.allow_remix:
        # Safety: the parent's "allow remix of my posts" is off (the default of a link).
        allow_remix = False
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
        controls = parental_controls_for(actor) if allow_remix else None
        if controls is not None and not controls.allow_remix:
            raise Forbidden(
                "A parent has not allowed remixes of this account's posts.",
                code="parental_control",
                param="allow_remix",
            )
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


def _comment_not_found(param: str = "parent_id") -> NotFound:
    return NotFound("No comment found with that id.", code="comment_not_found", param=param)


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
    # Safety: a parent's "no comments from strangers" covers the teen's posts and replies to
    # the teen's comments.
    for person in {post.author, *([parent.author] if parent is not None else [])}:
        if not parental_comment_allowed(teen=person, author=author):
            raise Forbidden(
                f"@{person.handle} only accepts comments from people they follow.",
                code="comments_restricted",
            )
    from moderation.screening import comment_screen

    # Screened before the transaction: the classifier must not run while rows are locked.
    comment_screen(text=body, author=author, post_author=post.author, post_id=post.public_id)
    with transaction.atomic():
        if parent is not None:
            # Locked (threads lock their top-level comment first) so that a removal racing
            # this reply either counts it or refuses it: counters stay exact.
            locked = Comment.objects.select_for_update().filter(pk=parent.pk).first()
            if locked is None or locked.removed_at is not None:
                raise _comment_not_found()
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


def _lock_thread(comment: Comment) -> tuple[Comment | None, Comment | None]:
    """Locks ``comment`` and, for a reply, its top-level comment first (the order every
    comment write takes). Returns them as they are now (None: gone)."""
    if comment.parent_id is None:
        return Comment.objects.select_for_update().filter(pk=comment.pk).first(), None
    rows = {
        row.pk: row
        for row in Comment.objects.select_for_update()
        .filter(pk__in=[comment.parent_id, comment.pk])
        .order_by(F("parent_id").asc(nulls_first=True))
    }
    return rows.get(comment.pk), rows.get(comment.parent_id)


def _visible_in_thread(comment: Comment, top: Comment | None) -> int:
    """How many comments the post counts for ``comment`` now: itself when neither it nor its
    thread is removed, plus, for a top-level comment, its replies not removed."""
    if comment.removed_at is not None or (top is not None and top.removed_at is not None):
        return 0
    if comment.parent_id is not None:
        return 1
    return 1 + Comment.objects.filter(parent=comment, removed_at__isnull=True).count()


def comment_delete(*, comment: Comment, actor) -> None:
    """By its author or the post's author; a top-level comment takes its replies with it."""
    if actor.pk not in {comment.author_id, comment.post.author_id}:
        raise Forbidden(
            "Only the comment's author or the post's author can delete it.",
            code="not_comment_author",
        )
    with transaction.atomic():
        # Locked so a reply racing the delete is either counted and deleted, or refused.
        current, top = _lock_thread(comment)
        if current is None:
            return
        gone = _visible_in_thread(current, top)
        Comment.objects.filter(pk=current.pk).delete()
        if gone:
            Post.objects.filter(pk=current.post_id).update(
                comments_count=F("comments_count") - gone
            )
        if current.parent_id is not None and current.removed_at is None:
            Comment.objects.filter(pk=current.parent_id).update(
                replies_count=F("replies_count") - 1
            )


def comment_remove(*, comment: Comment, actor: str, reason: str) -> bool:
    """Trust and safety removes a comment (moderation's decision on a comment case, which
    audits it as ``actor``): hidden from everyone but its author, with the replies of a removed
    top-level comment; the post's count drops by what others could see. False when it was
    already removed or is gone."""
    with transaction.atomic():
        current, top = _lock_thread(comment)
        if current is None or current.removed_at is not None:
            return False
        hidden = _visible_in_thread(current, top)
        Comment.objects.filter(pk=current.pk).update(
            removed_at=timezone.now(), removal_reason=reason[:300]
        )
        if hidden:
            Post.objects.filter(pk=current.post_id).update(
                comments_count=F("comments_count") - hidden
            )
        if current.parent_id is not None:
            Comment.objects.filter(pk=current.parent_id).update(
                replies_count=F("replies_count") - 1
            )
    return True


def comment_restore(*, comment: Comment, actor: str, reason: str) -> bool:
    """Undoes :func:`comment_remove` (a restore or an overturned appeal): the comment, and the
    replies of a top-level one, are shown and counted again. False when it was not removed."""
    with transaction.atomic():
        current, top = _lock_thread(comment)
        if current is None or current.removed_at is None:
            return False
        Comment.objects.filter(pk=current.pk).update(removed_at=None, removal_reason="")
        current.removed_at = None
        shown = _visible_in_thread(current, top)
        if shown:
            Post.objects.filter(pk=current.post_id).update(
                comments_count=F("comments_count") + shown
            )
        if current.parent_id is not None:
            Comment.objects.filter(pk=current.parent_id).update(
                replies_count=F("replies_count") + 1
            )
    return True


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
    # "See less like this" reaches the ranking of the next session, not only this post.
    for_you_list_stale(user=user)
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
    for_you_list_stale(user=user)
    return prefs


def steering_clear(*, user) -> None:
    FeedPreferences.objects.filter(user=user).update(
        steering="", steering_more=None, steering_less=None, steering_set_at=None
    )
    for_you_list_stale(user=user)


def personalization_set(*, user, enabled: bool) -> FeedPreferences:
    controls = parental_controls_for(user)
    if enabled and controls is not None and controls.personalization_off:
        raise Forbidden(
            "A parent turned personalisation off for this account.",
            code="parental_control",
            param="personalized",
        )
    prefs, _ = FeedPreferences.objects.update_or_create(
        user=user, defaults={"personalized": bool(enabled)}
    )
    for_you_list_stale(user=user)
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


def _session_cursor(session_id: uuid.UUID, offset: int) -> str:
    return encode_cursor([session_id.hex, offset])


def _session_page_from_cursor(cursor: str, user) -> selectors.SessionPage:
    invalid = InvalidRequest("The cursor is not valid.", code="invalid_cursor", param="cursor")
    raw_id, raw_offset = decode_cursor(cursor, 2)
    try:
        session_id, offset = uuid.UUID(raw_id or ""), int(raw_offset or "")
    except ValueError as exc:
        raise invalid from exc
    if not 0 < offset <= settings.FEED_SESSION_SIZE:
        raise invalid
    page = selectors.session_page(session_id=session_id, user=user, offset=offset)
    if page is None:
        raise invalid
    if session_expired(page.created_at):
        raise InvalidRequest(
            "This feed session has expired; start again without a cursor.",
            code="feed_session_expired",
            param="cursor",
        )
    return page


# --- For You lists ranked ahead of time ------------------------------------------------------


def _list_enqueue(user_id) -> None:
    """Asks a worker to rank ``user_id``'s list again (once per minute at most per user)."""
    from core.tasks import enqueue_on_commit
    from feed.tasks import build_for_you

    try:
        if not cache.add(f"feed:list:queued:{user_id}", 1, timeout=60):
            return
    except RedisError:
        # Redis is the broker as well: sending now would only wait on it. A stale list is
        # not served again (or is ranked inline once too old), and the next change asks again.
        logger.warning("could not ask for the For You list of %s", user_id, exc_info=True)
        return
    enqueue_on_commit(
        build_for_you, args=(str(user_id),), kwargs={"requested_at": timezone.now().isoformat()}
    )


def for_you_list_stale(*, user) -> None:
    """A change the next session must show (steering, "not interested", personalisation): the
    list is not served again until ranked after now, which a worker is asked to do."""
    ForYouList.objects.filter(user=user).update(stale_at=timezone.now())
    _list_enqueue(user.pk)


def for_you_list_build(*, user, ranking=None) -> ForYouList:
    """Ranks ``user``'s For You (or stores ``ranking``, done for them just now) and keeps it
    as their list, cut for FEED_LIST_PAGE_SIZE. A change marked while ranking (stale_at later
    than the start) stays marked: the list it made is already out of date."""
    from feed.ranking import cut_pages, rank_candidates

    started = timezone.now()
    ranking = ranking or rank_candidates(user)
    key = ranking.follows_key or selectors.follows_key(user)
    size = settings.FEED_LIST_PAGE_SIZE
    ordered, ends = cut_pages(ranking.slots, page_size=size)
    position = {slot.pk: index for index, slot in enumerate(ranking.slots)}
    row = ForYouList(
        user=user,
        page_size=size,
        post_ids=[s.pk for s in ordered],
        page_ends=ends,
        explain={s.pk.hex: ranking.explain[s.pk.hex] for s in ordered},
        authors=[s.author_id for s in ordered],
        chains=[s.chain for s in ordered],
        ranks=[position[s.pk] for s in ordered],
        follows_key=key,
        built_at=started,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO feed_foryoulist (user_id, page_size, post_ids, page_ends, explain, "
            "authors, chains, ranks, follows_key, built_at, stale_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, NULL) "
            "ON CONFLICT (user_id) DO UPDATE SET page_size = EXCLUDED.page_size, "
            "post_ids = EXCLUDED.post_ids, page_ends = EXCLUDED.page_ends, "
            "explain = EXCLUDED.explain, authors = EXCLUDED.authors, "
            "chains = EXCLUDED.chains, ranks = EXCLUDED.ranks, "
            "follows_key = EXCLUDED.follows_key, built_at = EXCLUDED.built_at, "
            "stale_at = CASE WHEN feed_foryoulist.stale_at > EXCLUDED.built_at "
            "THEN feed_foryoulist.stale_at END",
            [
                user.pk,
                size,
                row.post_ids,
                ends,
                json.dumps(row.explain),
                row.authors,
                row.chains,
                row.ranks,
                key,
                started,
            ],
        )
    return row


def for_you_list_refresh_due(*, user_id, requested_at=None) -> bool:
    """Whether ``user_id``'s list should be ranked (again): missing, marked stale, or ranked
    before ``requested_at``."""
    row = ForYouList.objects.filter(user_id=user_id).values("built_at", "stale_at").first()
    if row is None or row["stale_at"] is not None:
        return True
    return requested_at is not None and row["built_at"] < requested_at


def _uuid7_floor(moment) -> uuid.UUID:
    """The smallest uuid7 (core.ids.uuid7) made at ``moment`` or later."""
    ms = int(moment.timestamp() * 1000)
    return uuid.UUID(int=(ms << 80) | (0x7 << 76) | (0b10 << 62))


def for_you_lists_refresh() -> int:
    """Asks workers to rank again the lists of users who started a session in the last
    FEED_LIST_ACTIVE_MINUTES and whose list is older than FEED_LIST_REFRESH_SECONDS; returns
    how many were asked for."""
    now = timezone.now()
    since = _uuid7_floor(now - timedelta(minutes=settings.FEED_LIST_ACTIVE_MINUTES))
    # uuid7 ids: the sessions started since then are a range of the primary key.
    active = (
        FeedSession.objects.filter(id__gte=since)
        .values_list("user_id", flat=True)
        .distinct()
        .order_by()
    )
    fresh = ForYouList.objects.filter(
        built_at__gte=now - timedelta(seconds=settings.FEED_LIST_REFRESH_SECONDS),
        stale_at__isnull=True,
    ).values("user_id")
    due = list(active.exclude(user_id__in=fresh)[: settings.FEED_LIST_REFRESH_BATCH])
    for user_id in due:
        _list_enqueue(user_id)
    return len(due)


def _cut_list(row: ForYouList, page_size: int) -> tuple[list, list, dict]:
    """``row``'s items cut into pages of ``page_size`` (score order, the same rules)."""
    from feed.ranking import Slot, cut_pages

    slots = sorted(
        (
            (rank, Slot(pk, author, chain))
            for pk, author, chain, rank in zip(
                row.post_ids, row.authors, row.chains, row.ranks, strict=True
            )
        ),
        key=lambda item: item[0],
    )
    ordered, ends = cut_pages([slot for _, slot in slots], page_size=page_size)
    return [s.pk for s in ordered], ends, {s.pk.hex: row.explain[s.pk.hex] for s in ordered}


def _session_start(*, user, page_size: int) -> selectors.SessionPage:
    """A new For You session and its first page: a copy of the user's ranked list when it is
    usable, else ranked now (and kept as the list)."""
    now = timezone.now()
    oldest = now - timedelta(seconds=settings.FEED_LIST_MAX_AGE_SECONDS)
    session_id = uuid7()
    if page_size == settings.FEED_LIST_PAGE_SIZE:
        page = selectors.session_from_list(user=user, session_id=session_id, now=now, oldest=oldest)
        if page is not None:
            refresh = now - timedelta(seconds=settings.FEED_LIST_REFRESH_SECONDS)
            if page.built_at < refresh:
                _list_enqueue(user.pk)
            return page
        row = for_you_list_build(user=user)
        post_ids, ends, explain = row.post_ids, row.page_ends, row.explain
    else:
        row = ForYouList.objects.filter(
            user=user, stale_at__isnull=True, built_at__gte=oldest
        ).first()
        if row is None or row.follows_key != selectors.follows_key(user):
            row = for_you_list_build(user=user)
        post_ids, ends, explain = _cut_list(row, page_size)
    FeedSession.objects.create(
        id=session_id,
        user=user,
        post_ids=post_ids,
        page_ends=ends,
        explain=explain,
        created_at=now,
    )
    first = ends[0] if ends else 0
    return selectors.SessionPage(
        session_id,
        post_ids[:first],
        {pk.hex: explain[pk.hex] for pk in post_ids[:first]},
        first,
        len(post_ids),
        now,
        row.built_at,
    )


def for_you_page(*, user, cursor: str | None, limit: int) -> FeedPage:
    """A page of the caller's For You session (a new session when there is no cursor). Posts
    that became hidden since the session was ranked are left out; none are added. The first
    page's ``limit`` is the session's page size: the per-page rules cut the session into
    pages once, so later pages keep those cuts whatever limit they ask for."""
    if cursor:
        page = _session_page_from_cursor(cursor, user)
    else:
        page = _session_start(user=user, page_size=limit)
    session_id = prefixed(SESSION_PREFIX, page.session_id)
    allowed, notices = _wellbeing(user=user, wanted=len(page.post_ids))
    if allowed == 0:
        return FeedPage([], None, notices=notices, session_id=session_id)
    ids = page.post_ids[:allowed]
    rows = selectors.feed_rows(viewer=user, ids=ids)
    more = page.end < page.total and not _limit_reached(notices)
    explain = page.explain if isinstance(page.explain, dict) else json.loads(page.explain)
    return FeedPage(
        rows,
        _session_cursor(page.session_id, page.end) if more else None,
        explain={pk.hex: explain.get(pk.hex, {}) for pk in ids},
        notices=notices,
        session_id=session_id,
    )


def following_feed_page(*, user, cursor: str | None, limit: int) -> FeedPage:
    before = selectors.NEWEST
    if cursor:
        # A malformed cursor is refused before anything is counted.
        (raw,) = decode_cursor(cursor, 1)
        try:
            before = uuid.UUID(raw or "")
        except ValueError as exc:
            raise InvalidRequest(
                "The cursor is not valid.", code="invalid_cursor", param="cursor"
            ) from exc
    allowed, notices = _wellbeing(user=user, wanted=limit)
    if allowed == 0:
        return FeedPage([], None, notices=notices)
    page = selectors.following_page(viewer=user, before=before, limit=allowed)
    rows = page.rows
    next_cursor = encode_cursor([page.next_before]) if page.next_before else None
    if _limit_reached(notices):
        next_cursor = None
    explain = {
        row["id"].hex: {
            "reason": f"From @{row['author__handle']}, whom you follow",
            "sources": ["followed"],
        }
        for row in rows
    }
    return FeedPage(rows, next_cursor, explain=explain, notices=notices)


def _limit_reached(notices: list) -> bool:
    return any(n["type"] == "daily_limit" for n in notices)


def _wellbeing(*, user, wanted: int) -> tuple[int, list]:
    """How many items this page may serve, and the well-being items to show with it.

    Teen accounts get FEED_TEEN_DAILY_ITEMS feed items a day, or fewer when a linked parent
    set ``daily_feed_items``; a parent's ``daily_feed_minutes`` also ends the day's feed once
    that much watch time was recorded. The page that reaches a limit ends the scroll (no
    cursor) with a ``daily_limit`` item. Anyone who has watched FEED_BREAK_AFTER_MINUTES since
    the last break item gets a ``take_a_break`` item first.
    """
    items_key, watch_key, break_key = _tally_keys(user)
    notices = []
    allowed = wanted
    controls = parental_controls_for(user)
    try:
        if user.is_teen:
            # Safety: teen accounts cannot scroll past their daily limit, nor past the tighter
            # limits a linked parent set.
            daily_items = settings.FEED_TEEN_DAILY_ITEMS
            if controls is not None and controls.daily_feed_items is not None:
                daily_items = min(daily_items, controls.daily_feed_items)
            minutes = controls.daily_feed_minutes if controls is not None else None
            if minutes is not None and (cache.get(watch_key) or 0) >= minutes * 60_000:
                allowed = 0
                notices.append(
                    {
                        "type": "daily_limit",
                        "message": "You have reached today's watch time limit. See you tomorrow.",
                    }
                )
            else:
                before = _tally_add(items_key, wanted) - wanted
                allowed = max(0, min(wanted, daily_items - before))
                if before + allowed >= daily_items:
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
