"""Reads for the feed. Every list of posts goes through :func:`posts_visible_to`, which is the
clip visibility rule (generation.selectors.clips_visible_q) applied through the post's clip."""

from __future__ import annotations

import contextlib
import copy
import re
import uuid
from dataclasses import dataclass, field

import psycopg
from django.conf import settings
from django.contrib.postgres.search import SearchQuery
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from accounts.selectors import user_get_for_viewer
from core.errors import InvalidRequest, NotFound
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


def comments_visible_q(user) -> Q:
    """Comments ``user`` may see on a post they may see: not removed by trust and safety, nor
    in a removed thread, unless they wrote it (its author sees it marked removed)."""
    shown = Q(removed_at__isnull=True) & (
        Q(parent__isnull=True) | Q(parent__removed_at__isnull=True)
    )
    if user is not None and user.is_authenticated:
        shown |= Q(author_id=user.pk)
    return shown


def comment_get_for_viewer(*, comment_id: str, user) -> Comment:
    pk = parse_prefixed(COMMENT_PREFIX, comment_id)
    comment = (
        Comment.objects.select_related("post__clip__job", "post__author", "author")
        .filter(comments_visible_q(user), pk=pk, post__in=posts_visible_to(user).values("pk"))
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
    """Top-level comments of ``post`` (or the replies to ``parent``) the viewer may see
    (:func:`comments_visible_q`), without those of people the viewer blocks or is blocked by."""
    from accounts.selectors import blocked_either_way_q

    return (
        Comment.objects.filter(comments_visible_q(user), post=post, parent=parent)
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


def preferences_of(user) -> FeedPreferences:
    """``user``'s feed preferences as they apply: a parent's "personalisation off" overrides
    the teen's own switch (the row keeps the teen's choice for when the control ends)."""
    from accounts.selectors import parental_controls_for

    prefs = FeedPreferences.objects.filter(user=user).first() or FeedPreferences(user=user)
    controls = parental_controls_for(user)
    if controls is not None and controls.personalization_off:
        # Safety: ranking reads personalisation here; a parent's control wins.
        prefs.personalized = False
    return prefs


@dataclass
class PageContext:
    """What a page of posts shows besides the rows: two queries for the whole page."""

    liked: set = field(default_factory=set)
    remixes: dict = field(default_factory=dict)


def page_context(posts: list[Post], *, viewer) -> PageContext:
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
    return PageContext(liked=liked, remixes=remixes)


def share_url(post: Post) -> str:
    return f"{settings.FEED_SHARE_BASE_URL}{post.public_id}"


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
        Comment.objects.select_related("author", "post__author", "post__clip__job", "parent")
        .filter(pk=pk)
        .first()
        if pk
        else None
    )
    if comment is not None and viewer is not None:
        visible = (
            posts_visible_to(viewer).filter(pk=comment.post_id).exists()
            and Comment.objects.filter(comments_visible_q(viewer), pk=comment.pk).exists()
        )
        comment = comment if visible else None
    if comment is None:
        raise NotFound("No such comment.", code="subject_not_found", param="subject_id")
    reach = 1 + comment.post.views_count
    details = {
        "text": comment.body,
        "post_id": comment.post.public_id,
        "video_id": comment.post.clip.job.public_id,
        "parent_id": comment.parent.public_id if comment.parent_id else None,
        "parent_removed": bool(comment.parent_id and comment.parent.removed_at),
        "replies": comment.replies_count,
        # Comments on a teen's post are screened with the teen thresholds.
        "on_teen_post": comment.post.author.is_teen,
        "created_at": comment.created_at,
        "removed_at": comment.removed_at,
        "removal_reason": comment.removal_reason,
    }
    return Subject(
        "comment",
        comment.public_id,
        comment.author,
        reach,
        comment,
        comment.body[:80],
        details=details,
    )


# --- Feed pages ----------------------------------------------------------------------------
# A feed page is read on every scroll, and compiling the visibility rule through the ORM costs
# several times what running the query does. So each feed query is compiled once per process
# and kind of viewer, with stand-in values (below) where the viewer's id and the page's post
# ids go, and then run with the real ones. The SQL is the ORM's own compilation of
# posts_visible_to(): the rule stays in one place. A viewer's kind is what the rule branches on
# (generation.selectors.clips_visible_q); FEED_VERIFY_COMPILED_QUERIES (on in tests) compiles
# every query afresh as well and refuses to run one that differs.

_VIEWER = uuid.UUID("00000000-0000-7000-8000-0000000f33d1")
_IDS = uuid.UUID("00000000-0000-7000-8000-0000000f33d2")
NEWEST = uuid.UUID(int=(1 << 128) - 1)  # keyset position of a first page: before everything
PAGE_COLUMNS = (
    "id",
    "caption",
    "hashtags",
    "created_at",
    "edited_at",
    "likes_count",
    "comments_count",
    "views_count",
    "completions_count",
    "author_id",
    "author__handle",
    "author__display_name",
    "clip__job_id",
    "clip__audience",
    "clip__allow_remix",
    "clip__labels",
    "clip__duration_s",
    "remixes",
    "liked",
)


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple
    # Per parameter: which stand-in it is ("viewer", "ids") or None for a constant.
    slots: tuple


_compiled: dict[tuple, _Compiled] = {}


def _slot(value) -> str | None:
    if isinstance(value, uuid.UUID | str):
        return "viewer" if str(value) == str(_VIEWER) else None
    if isinstance(value, list | tuple) and len(value) == 1 and value[0] == _IDS:
        return "ids"
    return None


def _stand_in(viewer):
    """``viewer`` with the stand-in id: the same kind of viewer, for compiling."""
    shadow = copy.copy(viewer)
    shadow.pk = _VIEWER
    return shadow


def _viewer_kind(viewer) -> tuple:
    return (type(viewer), viewer.is_authenticated, viewer.is_staff, viewer.is_teen)


def _bound(name: str, build, viewer, ids: list | None = None) -> tuple[str, list]:
    """(SQL, parameters) of the queryset ``build(viewer, ids)``, compiled once per kind of
    viewer."""
    key = (name, *_viewer_kind(viewer))
    compiled = _compiled.get(key)
    if compiled is None:
        sql, params = build(_stand_in(viewer), [_IDS]).query.sql_with_params()
        compiled = _Compiled(sql, tuple(params), tuple(_slot(p) for p in params))
        _compiled[key] = compiled
    bound = {"viewer": viewer.pk, "ids": ids}
    params = [
        p if s is None else bound[s] for p, s in zip(compiled.params, compiled.slots, strict=True)
    ]
    if settings.FEED_VERIFY_COMPILED_QUERIES:
        sql, fresh = build(viewer, [_IDS] if ids is None else ids).query.sql_with_params()
        if (sql, list(fresh)) != (compiled.sql, params):
            raise ImproperlyConfigured(
                f"The cached {name} query no longer matches the visibility rule for this viewer: "
                "the rule depends on more than feed.selectors._viewer_kind."
            )
    return compiled.sql, params


def _rows(sql: str, params: list) -> list[dict]:
    with prepared_cursor() as cursor:
        cursor.execute(sql, params)
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@contextlib.contextmanager
def prepared_cursor():
    """A cursor on Django's connection whose statements the server prepares once per
    connection: planning a feed query costs more than running it. Django binds parameters on
    the client (so nothing can be prepared); this cursor binds them on the server. Off with
    FEED_PREPARED_STATEMENTS (behind a connection pooler that cannot keep prepared
    statements)."""
    if not settings.FEED_PREPARED_STATEMENTS:
        with connection.cursor() as cursor:
            yield cursor
        return
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    raw = connection.connection
    if raw.prepare_threshold is None:
        # Django leaves preparing off. Client-binding cursors (all of Django's) never
        # prepare whatever this says; only server-binding ones like this do.
        raw.prepare_threshold = 0
    cursor = psycopg.Cursor(raw)
    wrapped = (
        connection.make_debug_cursor(cursor)
        if connection.queries_logged
        else connection.make_cursor(cursor)
    )
    try:
        yield wrapped
    finally:
        cursor.close()


def _page_annotations(viewer) -> dict:
    return {
        "remixes": Coalesce(
            Subquery(
                LineageNode.objects.filter(job_id=OuterRef("clip__job_id")).values(
                    "children_count"
                )[:1]
            ),
            0,
        ),
        "liked": Exists(Like.objects.filter(user_id=viewer.pk, post_id=OuterRef("pk"))),
    }


def feed_posts_q(viewer) -> Q:
    """What every feed leaves out besides the visibility rule: posts ``viewer`` marked not
    interested, and clips whose cameo appearance was removed by the cameo's owner."""
    from cameo.models import Appearance

    return ~Exists(NotInterested.objects.filter(user_id=viewer.pk, post_id=OuterRef("pk"))) & ~(
        # Safety: a clip whose cameo appearance was removed by the cameo's owner never
        # reaches a feed, even before its takedown completes.
        Exists(Appearance.objects.filter(job_id=OuterRef("clip__job_id"), removed_at__isnull=False))
    )


def _by_ids(viewer, ids) -> QuerySet:
    return (
        posts_visible_to(viewer)
        .extra(where=['"feed_post"."id" = ANY(%s::uuid[])'], params=[ids])
        .filter(feed_posts_q(viewer))
        .annotate(**_page_annotations(viewer))
        .values(*PAGE_COLUMNS)
    )


def feed_rows(*, viewer, ids: list) -> list[dict]:
    """The posts ``ids`` as a feed shows them, in that order, less those ``viewer`` may not
    see now (visibility, blocks, moderation, teen ratings, "not interested", removed cameo
    appearances): one query."""
    if not ids:
        return []
    rows = {row["id"]: row for row in _rows(*_bound("by_ids", _by_ids, viewer, list(ids)))}
    return [rows[pk] for pk in ids if pk in rows]


# Following, in one statement: the newest post ids of the people followed before the keyset
# position, read from the (author, id) index alone (no post row is touched to choose them),
# then the rules and the page's columns for those candidates only.
_FOLLOWING_CANDIDATES = (
    "SELECT id FROM feed_post WHERE author_id IN (SELECT followee_id FROM accounts_follow "
    "WHERE follower_id = %s) AND id < %s ORDER BY id DESC LIMIT %s"
)


def _following_page(viewer, ids) -> QuerySet:
    return (
        posts_visible_to(viewer)
        .extra(where=['"feed_post"."id" IN (SELECT id FROM following_candidates)'])
        .filter(feed_posts_q(viewer))
        .annotate(**_page_annotations(viewer))
        .values(*PAGE_COLUMNS)
    )


@dataclass
class FollowingPage:
    rows: list[dict]
    next_before: uuid.UUID | None  # keyset position of the next page; None at the end


def following_page(*, viewer, before: uuid.UUID, limit: int) -> FollowingPage:
    """Up to ``limit`` newest posts by people ``viewer`` follows published before the post
    ``before`` (keyset on uuid7 ids: newest first, stable while posts arrive), in one query.

    The rules are applied to the newest ``2 * limit + 1`` candidates: a page is short only when
    more than half of them are hidden from the viewer, and the next page then starts after the
    last candidate, so nothing is skipped or repeated either way."""
    page_sql, page_params = _bound("following", _following_page, viewer)
    # Both parts are constant text (the ORM's compilation, no value): values are parameters.
    sql = (
        f"WITH following_candidates AS MATERIALIZED ({_FOLLOWING_CANDIDATES}) "  # noqa: S608
        "SELECT m.candidates AS candidates__count, m.last AS candidates__last, v.* "
        "FROM (SELECT count(*) AS candidates, (array_agg(id ORDER BY id))[1] AS last "
        "FROM following_candidates) m "
        f"LEFT JOIN LATERAL ({page_sql}) v ON true ORDER BY v.id DESC"
    )
    wanted = 2 * limit + 1
    rows = _rows(sql, [viewer.pk, before, wanted, *page_params])
    count, last = (rows[0]["candidates__count"], rows[0]["candidates__last"]) if rows else (0, None)
    rows = [row for row in rows if row["id"] is not None]
    if len(rows) > limit:
        return FollowingPage(rows[:limit], rows[limit - 1]["id"])
    return FollowingPage(rows, last if count == wanted else None)


@dataclass
class SessionPage:
    """One page of a For You session: its post ids and their explanations."""

    session_id: uuid.UUID
    post_ids: list
    explain: dict
    end: int  # where the page ends in the session
    total: int  # items in the session
    created_at: object = None
    built_at: object = None  # when the list the session was copied from was ranked


# The explanations of one page, out of a session's (or a list's) JSON: only they are read.
_EXPLAIN_OF_PAGE = (
    "(SELECT coalesce(jsonb_object_agg(k, d.explain -> k), '{{}}'::jsonb) "
    "FROM unnest({t}.post_ids[{start} + 1 : {stop}]) AS p, replace(p::text, '-', '') AS k)"
)
# The explanations (~100 kB, stored compressed) decompressed once for the page's lookups, not
# once per lookup: ``||`` makes an in-memory copy (a tenth of the cost, measured).
_EXPLAIN_ONCE = "LATERAL (SELECT {t}.explain || '{{}}'::jsonb AS explain OFFSET 0) d"


def session_page(*, session_id: uuid.UUID, user, offset: int) -> SessionPage | None:
    """The page of ``user``'s session that starts at ``offset`` (a page boundary); None when
    there is no such session or page."""
    stop = "coalesce(e.stop, %(offset)s)"
    explain = _EXPLAIN_OF_PAGE.format(t="s", start="%(offset)s", stop=stop)
    with prepared_cursor() as cursor:
        cursor.execute(
            f"SELECT s.created_at, %(offset)s = ANY(s.page_ends), {stop}, "  # noqa: S608
            f"cardinality(s.post_ids), s.post_ids[%(offset)s + 1 : {stop}], {explain} "
            "FROM feed_feedsession s, LATERAL (SELECT min(x) AS stop FROM unnest(s.page_ends) x "
            f"WHERE x > %(offset)s) e, {_EXPLAIN_ONCE.format(t='s')} "
            "WHERE s.id = %(session)s AND s.user_id = %(user)s",
            {"offset": offset, "session": session_id, "user": user.pk},
        )
        row = cursor.fetchone()
    if row is None or not row[1]:
        return None
    created_at, _, end, total, post_ids, page_explain = row
    return SessionPage(session_id, post_ids or [], page_explain, end, total, created_at)


def follows_key(user) -> str:
    """``<count>:<max id>`` of ``user``'s follows: changes with any follow or unfollow."""
    with connection.cursor() as cursor:
        cursor.execute(_FOLLOWS_KEY, {"user": user.pk})
        return cursor.fetchone()[0]


_FOLLOWS_KEY = (
    "SELECT count(*) || ':' || coalesce(max(id), 0) FROM accounts_follow "
    "WHERE follower_id = %(user)s"
)


def session_from_list(*, user, session_id: uuid.UUID, now, oldest) -> SessionPage | None:
    """Starts session ``session_id`` as a copy of ``user``'s ranked For You list, in one
    statement, and returns its first page; None (and nothing written) when the list is
    missing, marked stale, ranked before ``oldest``, or ranked before a follow or unfollow."""
    explain = _EXPLAIN_OF_PAGE.format(t="l", start="0", stop="l.page_ends[1]")
    with prepared_cursor() as cursor:
        cursor.execute(
            "WITH l AS (SELECT * FROM feed_foryoulist WHERE user_id = %(user)s "  # noqa: S608
            "AND stale_at IS NULL AND built_at >= %(oldest)s "
            f"AND follows_key = ({_FOLLOWS_KEY})), "
            "s AS (INSERT INTO feed_feedsession (id, user_id, post_ids, page_ends, explain, "
            "created_at) SELECT %(session)s, user_id, post_ids, page_ends, explain, %(now)s "
            "FROM l) "
            "SELECT coalesce(l.page_ends[1], 0), cardinality(l.post_ids), "
            f"l.post_ids[1 : l.page_ends[1]], {explain}, l.built_at "
            f"FROM l, {_EXPLAIN_ONCE.format(t='l')}",
            {"user": user.pk, "session": session_id, "now": now, "oldest": oldest},
        )
        row = cursor.fetchone()
    if row is None:
        return None
    end, total, post_ids, page_explain, built_at = row
    return SessionPage(session_id, post_ids or [], page_explain, end, total, now, built_at)
