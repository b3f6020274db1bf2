"""For You: candidate sources, a transparent weighted score, then page rules.

1. Candidates: people you follow, people you interact with, trending (engagement and remix
   velocity), nearest in meaning to what you liked and remixed (pgvector), what you steered
   towards, and fresh posts for exploration. Each source is one indexed query.
2. Score: ``sum(FEED_WEIGHTS[f] * feature_f)``; every contribution is kept, so an item can say
   why it is there.
3. Rules, per page: at most FEED_MAX_PER_AUTHOR_PER_PAGE items per author and one per remix
   chain; what a rule holds back waits for a later page rather than being dropped.

Ranking reads a few hundred rows through a dozen queries: a worker does it ahead of time for
active users (feed.services.for_you_list_build), and a request does it only for a user whose
list is missing or out of date.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, FloatField, OuterRef, Subquery
from django.utils import timezone
from pgvector.django import CosineDistance

from accounts.models import Follow
from cameo.models import Appearance
from feed.models import Comment, FeedPreferences, Like, NotInterested, Post
from feed.selectors import posts_visible_to, preferences_of
from generation.models import GenerationJob
from remix.models import LineageNode
from remix.selectors import trending_originals, velocities

INTERACTION_DAYS = 30
TASTE_SAMPLE = 50
# HNSW returns at most ef_search rows before the visibility filter; ask for enough.
EF_SEARCH = 200
TRENDING_POOL = 2000


@dataclass
class PostRow:
    """What ranking reads of a post: a plain row, since model instances for hundreds of
    candidates (with author and clip) cost more than all the scoring."""

    pk: object
    author_id: object
    handle: str
    job_id: object
    created_at: object
    likes_count: int
    comments_count: int
    completions_count: int
    views_count: int
    distances: dict


ROW_FIELDS = {
    "pk": "id",
    "author_id": "author_id",
    "handle": "author__handle",
    "job_id": "clip__job_id",
    "created_at": "created_at",
    "likes_count": "likes_count",
    "comments_count": "comments_count",
    "completions_count": "completions_count",
    "views_count": "views_count",
}


@dataclass
class Candidate:
    post: PostRow
    sources: set = field(default_factory=set)
    features: dict = field(default_factory=dict)
    contributions: dict = field(default_factory=dict)
    score: float = 0.0
    chain: int | str = ""


def _taste_vector(user) -> np.ndarray | None:
    """Mean embedding of the posts ``user`` liked and the posts they remixed, recent first."""
    liked = Like.objects.filter(user=user).order_by("-id").values("post_id")[:TASTE_SAMPLE]
    remixed_jobs = (
        GenerationJob.objects.filter(user=user, parent__isnull=False)
        .order_by("-created_at")
        .values("parent_id")[:TASTE_SAMPLE]
    )
    # Two index lookups in one statement (an OR across the two would scan every post).
    with_vector = Post.objects.filter(embedding__isnull=False)
    rows = (
        with_vector.filter(id__in=liked)
        .values_list("embedding")
        .union(with_vector.filter(clip__job_id__in=remixed_jobs).values_list("embedding"), all=True)
    )
    vectors = [row[0] for row in rows]
    if not vectors:
        return None
    mean = np.mean(np.asarray(vectors, dtype=np.float32), axis=0)
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm else None


@dataclass
class Graph:
    """The viewer's people, as small id sets read once: sources filter posts by these lists,
    which the post indexes answer, instead of joining the graph tables into every query."""

    followees: set = field(default_factory=set)
    interacted: set = field(default_factory=set)
    connected: set = field(default_factory=set)  # cameo grants, either way
    showing_me: set = field(default_factory=set)  # jobs that show the viewer's cameos
    # feed.selectors.follows_key of the follows read here (None when not read).
    follows_key: str | None = None


def _graph(user, prefs: FeedPreferences) -> Graph:
    from cameo.models import CameoGrant, GrantStatus

    if not prefs.personalized:
        return Graph()
    since = timezone.now() - timedelta(days=INTERACTION_DAYS)
    liked = Like.objects.filter(user=user, created_at__gte=since).values_list("post__author_id")
    commented = Comment.objects.filter(author=user, created_at__gte=since).values_list(
        "post__author_id"
    )
    grants = CameoGrant.objects.filter(status=GrantStatus.ACCEPTED)
    owners = grants.filter(grantee=user).values_list("cameo__owner_id")
    grantees = grants.filter(cameo__owner=user).values_list("grantee_id")
    follows = list(Follow.objects.filter(follower_id=user.pk).values_list("followee_id", "id"))
    return Graph(
        followees={followee for followee, _ in follows},
        follows_key=f"{len(follows)}:{max((pk for _, pk in follows), default=0)}",
        interacted={row[0] for row in liked.union(commented)},
        connected={row[0] for row in owners.union(grantees)},
        showing_me=set(
            Appearance.objects.filter(cameo__owner=user, removed_at__isnull=True).values_list(
                "job_id", flat=True
            )
        ),
    )


def _gather(user, prefs: FeedPreferences, base, taste, graph: Graph) -> dict:
    """{post id: set of source names}. One bounded query per source, whatever the data size."""
    n = settings.FEED_CANDIDATES_PER_SOURCE
    found: dict = {}

    def add(source: str, queryset) -> None:
        for pk in queryset.values_list("id", flat=True)[:n]:
            found.setdefault(pk, set()).add(source)

    add("fresh", base.order_by("-id"))
    # Trending is ranked within the newest TRENDING_POOL posts (read down the primary key), so
    # its cost does not grow with the table; freshness decays older posts anyway.
    newest = Post.objects.order_by("-id").values("id")[:TRENDING_POOL]
    engagement = F("comments_count") * 3 + F("completions_count") * 2 + F("likes_count")
    add("trending", base.filter(id__in=newest).order_by(engagement.desc(), "-id"))
    remixing = [clip.pk for clip, _ in trending_originals(user=user, limit=min(n, 50))]
    if remixing:
        add("remixing", base.filter(clip_id__in=remixing))
    for source, authors in (
        ("followed", graph.followees),
        ("interacted", graph.interacted),
        ("cameo", graph.connected),
    ):
        if authors:
            # The newest post ids of these people come from the (author, id) index alone;
            # the rules then read only those rows, not every post the people ever made.
            newest_of = (
                Post.objects.filter(author_id__in=authors).order_by("-id").values("id")[: 2 * n]
            )
            add(source, base.filter(id__in=newest_of).order_by("-id"))
    if graph.showing_me:
        add("cameo", base.filter(clip__job_id__in=graph.showing_me).order_by("-id"))
    near = [("similar", taste)] if taste is not None else []
    if prefs.personalized and prefs.steering_more is not None:
        near.append(("steering", np.asarray(prefs.steering_more)))
    if near:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL hnsw.ef_search = %s", [EF_SEARCH])
            for source, vector in near:
                add(
                    source,
                    base.filter(embedding__isnull=False).order_by(
                        CosineDistance("embedding", vector)
                    ),
                )
    return found


def _similarity(post: PostRow, name: str) -> float:
    """Cosine similarity from the distance computed for ``post`` (0 without one)."""
    distance = post.distances.get(f"d_{name}")
    return 0.0 if distance is None else 1.0 - float(distance)


def _reason(candidate: Candidate, prefs: FeedPreferences) -> str:
    top = max(candidate.contributions.items(), key=lambda kv: kv[1], default=("fresh", 0))[0]
    author = candidate.post.handle
    reasons = {
        "followed": f"From @{author}, whom you follow",
        "interacted": f"From @{author}, whose posts you interact with",
        "cameo": f"From @{author}, connected to you through cameos",
        "similar": "Like clips you liked or remixed",
        "steering": f"Matches what you asked for: \u201c{prefs.steering}\u201d",
        "remixes": "People are remixing this",
        "remix_velocity": "Its remixes are taking off right now",
        "comments": "People are talking about this",
        "completions": "People watch this to the end",
        "likes": "Popular right now",
        "views": "Popular right now",
        "fresh": "New on Montage",
    }
    return reasons.get(top, "New on Montage")


@dataclass(frozen=True)
class Slot:
    """What the page rules read of a ranked item."""

    pk: object
    author_id: object
    chain: str


@dataclass
class Ranking:
    """Candidates in score order (best first), with their explanations."""

    slots: list[Slot]
    explain: dict
    follows_key: str | None = None  # of the follows ranked with, when they were read


def cut_pages(slots: list[Slot], *, page_size: int) -> tuple[list[Slot], list[int]]:
    """The session order of ``slots`` (score order) under the page rules, at most
    FEED_SESSION_SIZE items, and where each page ends."""
    pages, size = [], 0
    for page in apply_rules(slots, page_size=page_size):
        if size + len(page) > settings.FEED_SESSION_SIZE:
            break
        pages.append(page)
        size += len(page)
    return [s for page in pages for s in page], list(
        itertools.accumulate(len(page) for page in pages)
    )


def _not_interested(user) -> tuple[list, set]:
    """(the posts ``user`` most recently marked "not interested", whose embeddings "see less
    like this" pushes down; the authors of all they marked)."""
    marked = list(
        NotInterested.objects.filter(user=user).order_by("-id").values_list("post_id", "author_id")
    )
    recent = [post for post, _ in marked[: settings.FEED_SEE_LESS_SAMPLE]]
    return recent, {author for _, author in marked}


def rank_candidates(user) -> Ranking:
    """Every candidate for ``user``'s For You, scored, best first."""
    prefs = preferences_of(user)  # a parent's "personalisation off" applies here
    taste = _taste_vector(user) if prefs.personalized else None
    graph = _graph(user, prefs)
    base = (
        posts_visible_to(user)
        .exclude(author_id=user.pk)
        .exclude(id__in=NotInterested.objects.filter(user=user).values("post_id"))
        # Safety: a clip whose cameo appearance was removed by the cameo's owner never
        # reaches a feed, even before its takedown completes.
        .exclude(
            clip__job_id__in=Appearance.objects.filter(removed_at__isnull=False).values("job_id")
        )
    )
    found = _gather(user, prefs, base, taste, graph)
    targets = {"similar": taste}
    if prefs.personalized:
        targets |= {"more": prefs.steering_more, "less": prefs.steering_less}
    # Similarities are computed by Postgres: embeddings never travel to Python.
    distances = {
        f"d_{name}": CosineDistance("embedding", vector)
        for name, vector in targets.items()
        if vector is not None
    }
    disliked, seen_less = _not_interested(user)
    if disliked:
        # "See less like this": the nearest of the posts marked not interested, per candidate.
        nearest = (
            Post.objects.filter(id__in=disliked, embedding__isnull=False)
            .annotate(d=CosineDistance("embedding", OuterRef("embedding")))
            .order_by("d")
            .values("d")[:1]
        )
        distances["d_disliked"] = Subquery(nearest, output_field=FloatField())
    rows = (
        base.filter(id__in=list(found))
        .annotate(**distances)
        .values(*ROW_FIELDS.values(), *distances)
        if found
        else []
    )
    posts = [
        PostRow(
            **{attr: row[column] for attr, column in ROW_FIELDS.items()},
            distances={name: row[name] for name in distances},
        )
        for row in rows
    ]
    if not posts:
        return Ranking([], {}, graph.follows_key)
    job_ids = [p.job_id for p in posts]
    nodes = {
        row["job_id"]: row
        for row in LineageNode.objects.filter(job_id__in=job_ids).values(
            "job_id", "id", "root_id", "children_count"
        )
    }
    speed = velocities(job_ids=job_ids)
    weights = settings.FEED_WEIGHTS
    half_life = settings.FEED_FRESH_HALF_LIFE_HOURS * 3600
    now = timezone.now()
    candidates = []
    for post in posts:
        node = nodes.get(post.job_id)
        features = {
            "followed": float(post.author_id in graph.followees),
            "interacted": float(post.author_id in graph.interacted),
            "cameo": float(post.author_id in graph.connected or "cameo" in found[post.pk]),
            "similar": max(0.0, _similarity(post, "similar")),
            "steering": _similarity(post, "more") - _similarity(post, "less"),
            "remixes": math.log1p(node["children_count"] if node else 0),
            "remix_velocity": math.log1p(speed[post.job_id]["tree_remixes_per_hour"]),
            "comments": math.log1p(post.comments_count),
            "completions": math.log1p(post.completions_count),
            "likes": math.log1p(post.likes_count),
            "views": math.log1p(post.views_count),
            "fresh": 0.5 ** (max(0.0, (now - post.created_at).total_seconds()) / half_life),
            "seen_less": float(post.author_id in seen_less),
            "seen_less_similar": _closeness(_similarity(post, "disliked")),
        }
        contributions = {k: weights.get(k, 0.0) * v for k, v in features.items() if v}
        candidate = Candidate(
            post=post,
            sources=found[post.pk],
            features=features,
            contributions=contributions,
            score=sum(contributions.values()),
            chain=(node["root_id"] or node["id"]) if node else f"job:{post.job_id}",
        )
        candidates.append(candidate)
    candidates.sort(key=lambda c: (-c.score, -c.post.created_at.timestamp(), str(c.post.pk)))
    explain = {
        c.post.pk.hex: {
            "reason": _reason(c, prefs),
            "score": round(c.score, 4),
            "sources": sorted(c.sources),
            "signals": {k: round(v, 4) for k, v in c.contributions.items()},
        }
        for c in candidates
    }
    slots = [Slot(c.post.pk, c.post.author_id, str(c.chain)) for c in candidates]
    return Ranking(slots, explain, graph.follows_key)


def _closeness(similarity: float) -> float:
    """0 below FEED_SEE_LESS_THRESHOLD cosine similarity, rising to 1 for the same meaning:
    only posts close to one marked "not interested" are pushed down, not everything."""
    floor = settings.FEED_SEE_LESS_THRESHOLD
    return max(0.0, (similarity - floor) / (1.0 - floor))


def apply_rules(candidates: list[Slot], *, page_size: int) -> list[list[Slot]]:
    """Fills pages in score order under the per-page rules (author diversity, one item per
    remix chain); an item a rule holds back keeps its rank for the next page. A page comes out
    short only when every remaining item breaks a rule on it."""
    cap = settings.FEED_MAX_PER_AUTHOR_PER_PAGE
    pool = list(candidates)
    pages: list[list[Slot]] = []
    while pool:
        authors: dict = {}
        chains: set = set()
        page: list[Slot] = []
        rest: list[Slot] = []
        for index, c in enumerate(pool):
            if len(page) == page_size:
                rest.extend(pool[index:])
                break
            if authors.get(c.author_id, 0) < cap and c.chain not in chains:
                page.append(c)
                authors[c.author_id] = authors.get(c.author_id, 0) + 1
                chains.add(c.chain)
            else:
                rest.append(c)
        pages.append(page)
        pool = rest
    return pages
