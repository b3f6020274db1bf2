"""Reads for accounts. Every read of another person goes through the block rules here."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet

from accounts.models import ApiKey, Block, Follow, Notification, User
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


def user_get_for_viewer(*, handle: str, viewer) -> User:
    """The user with ``handle`` as ``viewer`` may see them. A block either way answers exactly
    as a missing user does, so a blocked person cannot even learn the account exists."""
    user = User.objects.filter(handle=User.normalize_handle(handle), is_active=True).first()
    if user is None:
        raise NotFound("No such user.", code="user_not_found")
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


def user_counts(user: User) -> dict[str, int]:
    return {
        "followers": Follow.objects.filter(followee=user).count(),
        "following": Follow.objects.filter(follower=user).count(),
    }


def followers_for_viewer(*, user: User, viewer) -> QuerySet:
    """People following ``user``, without those the viewer blocks or is blocked by. Ordered by
    the follow edge (newest first), so the cursor is over the edge id."""
    return (
        Follow.objects.filter(followee=user, follower__is_active=True)
        .exclude(blocked_either_way_q(viewer, "follower"))
        .select_related("follower")
    )


def following_for_viewer(*, user: User, viewer) -> QuerySet:
    return (
        Follow.objects.filter(follower=user, followee__is_active=True)
        .exclude(blocked_either_way_q(viewer, "followee"))
        .select_related("followee")
    )


def blocks_of(*, user: User) -> QuerySet:
    return Block.objects.filter(blocker=user).select_related("blocked")


def api_keys_of(*, user: User) -> QuerySet:
    return ApiKey.objects.filter(user=user)


def notifications_of(*, user: User, unread_only: bool = False) -> QuerySet:
    queryset = Notification.objects.filter(user=user).select_related("actor")
    if unread_only:
        queryset = queryset.filter(read_at__isnull=True)
    return queryset


def mutual_followers(a: User, b: User) -> bool:
    return (
        Follow.objects.filter(follower=a, followee=b).exists()
        and Follow.objects.filter(follower=b, followee=a).exists()
    )
