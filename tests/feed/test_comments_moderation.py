"""Comments removed by trust and safety: hidden from everyone but their author (who sees them
marked removed), a removed top-level comment hiding its thread, restoring, and the post's
comment count staying exactly what others can see, also under concurrency."""

from __future__ import annotations

import random
import threading

import pytest
from django.db import connection
from django.db.models import Q

from feed import services
from feed.models import Comment, Post
from tests.factories import UserFactory
from tests.feed.helpers import client_for, publish
from tests.support.errors import assert_error

ACTOR = "staff:test"


def visible_count(post: Post) -> int:
    """What the post's counter must say: comments not removed in threads not removed."""
    return (
        Comment.objects.filter(post=post, removed_at__isnull=True)
        .filter(Q(parent__isnull=True) | Q(parent__removed_at__isnull=True))
        .count()
    )


def assert_counts_exact(post: Post) -> None:
    post.refresh_from_db()
    assert post.comments_count == visible_count(post)
    for top in Comment.objects.filter(post=post, parent__isnull=True):
        assert top.replies_count == top.replies.filter(removed_at__isnull=True).count(), top


def _bodies(client, post, **params) -> list[tuple[str, bool]]:
    response = client.get(f"/api/v1/posts/{post.public_id}/comments", params)
    assert response.status_code == 200, response.content
    return [(c["body"], c["removed"]) for c in response.json()["data"]]


@pytest.mark.django_db
def test_a_removed_comment_is_shown_only_to_its_author_marked_removed():
    owner, author, other = UserFactory(), UserFactory(), UserFactory()
    post = publish(owner)
    comment = services.comment_create(post=post, author=author, body="first")
    services.comment_create(post=post, author=other, body="second")
    assert services.comment_remove(comment=comment, actor=ACTOR, reason="harassment")
    assert not services.comment_remove(comment=comment, actor=ACTOR, reason="again")

    assert _bodies(client_for(author), post) == [("first", True), ("second", False)]
    for viewer in (client_for(owner), client_for(other)):
        assert _bodies(viewer, post) == [("second", False)]
    assert_counts_exact(post)
    post.refresh_from_db()
    assert post.comments_count == 1

    # Nobody else reaches it: not to reply, not to report it again.
    url = f"/api/v1/posts/{post.public_id}/comments"
    reply = client_for(other).post(
        url, {"body": "hm", "parent_id": comment.public_id}, format="json"
    )
    assert_error(reply, 404, code="comment_not_found", param="comment_id")
    report = client_for(other).post(
        "/api/v1/reports",
        {"subject_type": "comment", "subject_id": comment.public_id, "reason": "spam"},
        format="json",
    )
    assert_error(report, 404, code="subject_not_found", param="subject_id")
    # Its author cannot reply under it either (the thread is closed while removed).
    own_reply = client_for(author).post(
        url, {"body": "but", "parent_id": comment.public_id}, format="json"
    )
    assert_error(own_reply, 404, code="comment_not_found", param="parent_id")
    assert Comment.objects.filter(parent=comment).count() == 0

    assert services.comment_restore(comment=comment, actor=ACTOR, reason="overturned")
    assert _bodies(client_for(other), post) == [("first", False), ("second", False)]
    assert_counts_exact(post)


@pytest.mark.django_db
def test_removing_a_top_level_comment_hides_its_replies_and_restoring_brings_them_back():
    owner = UserFactory()
    people = [UserFactory() for _ in range(3)]
    post = publish(owner)
    top = services.comment_create(post=post, author=people[0], body="top")
    replies = [
        services.comment_create(post=post, author=p, body=f"reply {i}", parent=top)
        for i, p in enumerate(people)
    ]
    services.comment_create(post=post, author=owner, body="another thread")
    services.comment_remove(comment=replies[0], actor=ACTOR, reason="spam")
    assert_counts_exact(post)
    post.refresh_from_db()
    assert post.comments_count == 4  # top, two replies, another thread

    services.comment_remove(comment=top, actor=ACTOR, reason="hate")
    assert_counts_exact(post)
    post.refresh_from_db()
    assert post.comments_count == 1
    # The replies are not reachable by others while their thread is removed.
    viewer = client_for(people[2])
    listing = viewer.get(f"/api/v1/posts/{post.public_id}/comments", {"parent_id": top.public_id})
    assert_error(listing, 404, code="comment_not_found", param="comment_id")
    assert _bodies(viewer, post) == [("another thread", False)]

    # A reply removed while its thread is removed changes nothing the post counts.
    services.comment_remove(comment=replies[1], actor=ACTOR, reason="spam")
    assert_counts_exact(post)
    services.comment_restore(comment=top, actor=ACTOR, reason="appeal")
    assert_counts_exact(post)
    post.refresh_from_db()
    assert post.comments_count == 3  # top, reply 2, another thread
    assert _bodies(viewer, post, parent_id=top.public_id) == [("reply 2", False)]
    services.comment_restore(comment=replies[1], actor=ACTOR, reason="appeal")
    assert_counts_exact(post)


@pytest.mark.django_db
def test_deleting_removed_comments_and_threads_keeps_counts_exact():
    owner, a, b = UserFactory(), UserFactory(), UserFactory()
    post = publish(owner)
    top = services.comment_create(post=post, author=a, body="top")
    reply = services.comment_create(post=post, author=b, body="reply", parent=top)
    lone = services.comment_create(post=post, author=b, body="lone")
    services.comment_remove(comment=top, actor=ACTOR, reason="spam")
    services.comment_delete(comment=reply, actor=b)  # in a removed thread
    assert_counts_exact(post)
    services.comment_remove(comment=lone, actor=ACTOR, reason="spam")
    services.comment_delete(comment=lone, actor=b)  # removed itself
    assert_counts_exact(post)
    services.comment_delete(comment=top, actor=owner)  # the post's author clears the thread
    assert_counts_exact(post)
    assert not Comment.objects.filter(post=post).exists()
    post.refresh_from_db()
    assert post.comments_count == 0


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [3, 11])
def test_any_sequence_of_comment_actions_keeps_counts_exact(seed):
    rng = random.Random(seed)
    owner = UserFactory()
    people = [UserFactory() for _ in range(3)]
    post = publish(owner)
    for _ in range(40):
        rows = list(Comment.objects.filter(post=post))
        action = rng.choice(["comment", "reply", "remove", "restore", "delete"])
        if action == "comment" or not rows:
            services.comment_create(post=post, author=rng.choice(people), body="nice")
        elif action == "reply":
            parent = rng.choice(rows)
            if parent.removed_at is None and (
                parent.parent is None or parent.parent.removed_at is None
            ):
                services.comment_create(
                    post=post, author=rng.choice(people), body="same", parent=parent
                )
        elif action == "remove":
            services.comment_remove(comment=rng.choice(rows), actor=ACTOR, reason="r")
        elif action == "restore":
            services.comment_restore(comment=rng.choice(rows), actor=ACTOR, reason="r")
        else:
            services.comment_delete(comment=rng.choice(rows), actor=owner)
        assert_counts_exact(post)


@pytest.mark.django_db(transaction=True)
def test_replies_racing_the_removal_of_their_thread_are_counted_exactly():
    owner = UserFactory()
    people = [UserFactory() for _ in range(6)]
    post = publish(owner)
    top = services.comment_create(post=post, author=owner, body="thread")
    barrier = threading.Barrier(len(people) + 1)
    errors, refused = [], []

    def reply(person):
        try:
            barrier.wait()
            for _ in range(3):
                services.comment_create(post=post, author=person, body="me too", parent=top)
        except Exception as exc:
            # A reply that comes after the removal is refused: its thread is gone.
            (refused if getattr(exc, "code", "") == "comment_not_found" else errors).append(exc)
        finally:
            connection.close()

    def remove():
        try:
            barrier.wait()
            services.comment_remove(comment=top, actor=ACTOR, reason="spam")
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=reply, args=(p,)) for p in people]
    threads.append(threading.Thread(target=remove))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert_counts_exact(post)
    post.refresh_from_db()
    assert post.comments_count == 0
    services.comment_restore(comment=top, actor=ACTOR, reason="appeal")
    assert_counts_exact(post)
    post.refresh_from_db()
    assert post.comments_count == 1 + Comment.objects.filter(parent=top).count()
