"""Reads for accounts. Every read of another person goes through the block rules here."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from accounts.models import (
    CAMEO_AUDIENCE_ORDER,
    PARENTAL_LINK_PREFIX,
    ApiKey,
    Block,
    Follow,
    Notification,
    ParentalEvent,
    ParentalLink,
    User,
)
from core.errors import NotFound


def blocked_either_way_q(viewer, field: str = "pk") -> Q:
    """A Q matching rows whose ``field`` user blocks, or is blocked by, ``viewer``."""
    if viewer is None or not viewer.is_authenticated:
        return Q(pk__in=[])
    blocked = Block.objects.filter(blocker=viewer).values("blocked")
    blockers = Block.objects.filter(blocked=viewer).values("blocker")
    return Q(**{f"{field}__in": blocked}) | Q(**{f"{field}__in": blockers})


def is_blocked_either_way(a: User, b: User) -> bool:
    return Block.objects.filter(Q(blocker=a, blocked=b) | Q(blocker=b, blocked=a)).exists()


def user_get_active(*, handle: str) -> User:
    """The active user with ``handle``, ignoring blocks (blocking must reach someone who
    already blocked you)."""
    user = User.objects.filter(handle=User.normalize_handle(handle), is_active=True).first()
    if user is None:
        raise NotFound("No such user.", code="user_not_found")
    return user


def user_get_for_viewer(*, handle: str, viewer) -> User:
    """The user with ``handle`` as ``viewer`` may see them. A block either way answers exactly
    as a missing user does, so a blocked person cannot even learn the account exists."""
    user = user_get_active(handle=handle)
    viewer_is_other = viewer is not None and viewer.is_authenticated and viewer.pk != user.pk
    if viewer_is_other and is_blocked_either_way(viewer, user):
        raise NotFound("No such user.", code="user_not_found")
    return user


def user_annotate_relationship(queryset: QuerySet, *, viewer) -> QuerySet:
    """Adds ``viewer_follows`` / ``follows_viewer`` in the same query (no N+1 on lists)."""
    if viewer is None or not viewer.is_authenticated:
        return queryset
    return queryset.annotate(
        viewer_follows=Exists(Follow.objects.filter(follower=viewer, followee=OuterRef("pk"))),
        follows_viewer=Exists(Follow.objects.filter(follower=OuterRef("pk"), followee=viewer)),
    )


def _edge_count(*, side: str, other: str) -> Coalesce:
    """How many edges have the outer user on ``side``, counting only active people on the
    ``other`` side (as the lists do). A correlated COUNT per row: joining both edge tables
    and counting DISTINCT would build followers x following rows for a popular account."""
    edges = (
        Follow.objects.filter(**{side: OuterRef("pk"), f"{other}__is_active": True})
        .order_by()
        .values(side)
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(edges, output_field=IntegerField()), 0)


def user_get_detail_for_viewer(*, handle: str, viewer) -> User:
    """A profile as ``viewer`` sees it (block rules as :func:`user_get_for_viewer`), with
    ``follower_count``, ``following_count`` and the relationship to the viewer."""
    target = user_get_for_viewer(handle=handle, viewer=viewer)
    queryset = user_annotate_relationship(User.objects.filter(pk=target.pk), viewer=viewer)
    return queryset.annotate(
        follower_count=_edge_count(side="followee", other="follower"),
        following_count=_edge_count(side="follower", other="followee"),
    ).get()


def user_counts(user: User) -> dict[str, int]:
    return {
        "followers": Follow.objects.filter(followee=user).count(),
        "following": Follow.objects.filter(follower=user).count(),
    }


def _annotate_edge_relationship(queryset: QuerySet, *, viewer, side: str) -> QuerySet:
    """``viewer_follows`` / ``follows_viewer`` for the person on ``side`` of each edge, in the
    list's own query."""
    if viewer is None or not viewer.is_authenticated:
        return queryset
    return queryset.annotate(
        viewer_follows=Exists(Follow.objects.filter(follower=viewer, followee=OuterRef(side))),
        follows_viewer=Exists(Follow.objects.filter(follower=OuterRef(side), followee=viewer)),
    )


def followers_for_viewer(*, user: User, viewer) -> QuerySet:
    """People following ``user``, without those the viewer blocks or is blocked by. Ordered by
    the follow edge (newest first), so the cursor is over the edge id."""
    queryset = (
        Follow.objects.filter(followee=user, follower__is_active=True)
        .exclude(blocked_either_way_q(viewer, "follower"))
        .select_related("follower")
    )
    return _annotate_edge_relationship(queryset, viewer=viewer, side="follower")


def following_for_viewer(*, user: User, viewer) -> QuerySet:
    queryset = (
        Follow.objects.filter(follower=user, followee__is_active=True)
        .exclude(blocked_either_way_q(viewer, "followee"))
        .select_related("followee")
    )
    return _annotate_edge_relationship(queryset, viewer=viewer, side="followee")


def edge_people(edges, *, side: str) -> list[dict]:
    """Rows for a followers/following page: the person on ``side`` of each edge, carrying the
    edge's relationship annotations, and when the edge was made."""
    rows = []
    for edge in edges:
        person = getattr(edge, side)
        for name in ("viewer_follows", "follows_viewer"):
            if hasattr(edge, name):
                setattr(person, name, getattr(edge, name))
        rows.append({"user": person, "created_at": edge.created_at})
    return rows


def blocks_of(*, user: User) -> QuerySet:
    return Block.objects.filter(blocker=user).select_related("blocked")


def api_keys_of(*, user: User) -> QuerySet:
    return ApiKey.objects.filter(user=user)


def api_key_get_for_user(*, key_id, user: User) -> ApiKey:
    """``user``'s own key; anyone else's answers as a missing one."""
    key = ApiKey.objects.filter(pk=key_id, user=user).first()
    if key is None:
        raise NotFound("No such API key.", code="api_key_not_found")
    return key


def notifications_of(*, user: User, unread_only: bool = False) -> QuerySet:
    """``user``'s notifications, without those whose actor is on either side of a block with
    them: a block hides both ways, including what was notified before it."""
    queryset = (
        Notification.objects.filter(user=user)
        .exclude(blocked_either_way_q(user, "actor"))
        .select_related("actor")
    )
    if unread_only:
        queryset = queryset.filter(read_at__isnull=True)
    return queryset


def mutual_followers(a: User, b: User) -> bool:
    return (
        Follow.objects.filter(follower=a, followee=b).exists()
        and Follow.objects.filter(follower=b, followee=a).exists()
    )


# --- Parental controls ------------------------------------------------------------------------

CONTROL_FIELDS = (
    "personalization_off",
    "daily_feed_minutes",
    "daily_feed_items",
    "strangers_can_comment",
    "cameo_audience_max",
    "allow_remix",
)

# Each control's value with no parent linked (what the platform gives every teen account).
PLATFORM_CONTROLS = {
    "personalization_off": False,
    "daily_feed_minutes": None,
    "daily_feed_items": None,
    "strangers_can_comment": True,
    "cameo_audience_max": None,
    "allow_remix": True,
}


@dataclass(frozen=True)
class ParentalControls:
    """What applies to a teen account: of each control, the strictest any linked parent set."""

    personalization_off: bool
    daily_feed_minutes: int | None
    daily_feed_items: int | None
    strangers_can_comment: bool
    cameo_audience_max: str | None
    allow_remix: bool
    # When the controls last changed (a link made, or a parent's edit).
    changed_at: dt.datetime
    parent_ids: frozenset


def _min_set(values) -> int | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def parental_controls_combine(links: list[dict]) -> ParentalControls | None:
    """The strictest of each control over the rows of ``links`` (dicts of CONTROL_FIELDS)."""
    if not links:
        return None
    caps = [row["cameo_audience_max"] for row in links if row["cameo_audience_max"]]
    return ParentalControls(
        personalization_off=any(row["personalization_off"] for row in links),
        daily_feed_minutes=_min_set(row["daily_feed_minutes"] for row in links),
        daily_feed_items=_min_set(row["daily_feed_items"] for row in links),
        strangers_can_comment=all(row["strangers_can_comment"] for row in links),
        cameo_audience_max=min(caps, key=CAMEO_AUDIENCE_ORDER.index) if caps else None,
        allow_remix=all(row["allow_remix"] for row in links),
        changed_at=max(row["controls_updated_at"] for row in links),
        parent_ids=frozenset(row["parent_id"] for row in links),
    )


def parental_controls_for(user) -> ParentalControls | None:
    """The parental controls that apply to ``user`` now, or None: for adults (controls end at
    the adult age, whatever is linked), anonymous visitors and teens without a linked parent.
    Adults cost no query."""
    # Safety: every place a control is enforced reads it here (feed ranking and limits,
    # comments, publishing, cameo audiences), so they cannot disagree.
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_teen:
        return None
    rows = list(
        ParentalLink.objects.filter(teen_id=user.pk, revoked_at__isnull=True).values(
            *CONTROL_FIELDS, "controls_updated_at", "parent_id"
        )
    )
    return parental_controls_combine(rows)


def parental_comment_allowed(*, teen, author) -> bool:
    """Whether ``author`` may comment on ``teen``'s posts (or reply to their comments): always,
    unless a parent turned comments from strangers off; then only the teen, the people the teen
    follows and the teen's linked parents may."""
    if author is None or teen.pk == author.pk:
        return True
    controls = parental_controls_for(teen)
    if controls is None or controls.strangers_can_comment:
        return True
    if author.pk in controls.parent_ids:
        return True
    return Follow.objects.filter(follower_id=teen.pk, followee_id=author.pk).exists()


def parental_links_of(*, user: User) -> QuerySet:
    """Links where ``user`` is the parent or the teen, revoked ones included."""
    return ParentalLink.objects.filter(Q(parent=user) | Q(teen=user)).select_related(
        "parent", "teen"
    )


def parental_link_get_for_user(*, link_id: str, user: User) -> ParentalLink:
    """A link ``user`` is a party to; anyone else's answers as a missing one."""
    raw = link_id[len(PARENTAL_LINK_PREFIX) :] if link_id.startswith(PARENTAL_LINK_PREFIX) else ""
    try:
        pk = uuid.UUID(raw)
    except ValueError:
        pk = None
    link = parental_links_of(user=user).filter(pk=pk).first() if pk else None
    if link is None:
        raise NotFound(
            f"No parental link found with id {link_id!r}.",
            code="parental_link_not_found",
            param="link_id",
        )
    return link


def parental_events_of(*, link: ParentalLink) -> QuerySet:
    return ParentalEvent.objects.filter(link_id=link.pk)
