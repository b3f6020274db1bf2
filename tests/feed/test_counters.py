"""Counters stay exact when many people act on one post at the same moment (real threads, each
with its own connection to Postgres)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from feed import services
from feed.models import Comment, Like, Post, View
from tests.factories import UserFactory
from tests.feed.helpers import publish

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 8
ROUNDS = 5


def _run(workers) -> None:
    barrier = threading.Barrier(len(workers))
    errors = []

    def wrap(fn):
        def run():
            try:
                barrier.wait()
                fn()
            except Exception as exc:
                errors.append(exc)
            finally:
                connection.close()

        return run

    threads = [threading.Thread(target=wrap(fn)) for fn in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_likes_comments_and_views_count_exactly_under_concurrency():
    owner = UserFactory()
    post = publish(owner)
    people = [UserFactory() for _ in range(THREADS)]

    def act(person):
        def fn():
            for _ in range(ROUNDS):
                # The same person liking twice at once still counts once.
                services.like_add(post=post, user=person)
                services.comment_create(post=post, author=person, body="nice")
                services.view_record(post=post, user=person, watch_ms=100, completed=True)

        return fn

    _run([act(p) for p in people] + [act(p) for p in people[:2]])
    services.like_remove(post=post, user=people[0])
    post.refresh_from_db()
    assert post.likes_count == Like.objects.filter(post=post).count() == THREADS - 1
    workers = THREADS + 2
    assert post.comments_count == Comment.objects.filter(post=post).count() == workers * ROUNDS
    assert post.views_count == View.objects.filter(post=post).count() == workers * ROUNDS
    assert post.completions_count == workers * ROUNDS
    assert post.watch_ms == workers * ROUNDS * 100


def test_concurrent_like_and_unlike_never_drift():
    owner = UserFactory()
    post = publish(owner)
    people = [UserFactory() for _ in range(THREADS)]

    def toggle(person):
        def fn():
            for _ in range(ROUNDS):
                services.like_add(post=post, user=person)
                services.like_remove(post=post, user=person)
            services.like_add(post=post, user=person)

        return fn

    _run([toggle(p) for p in people] * 2)
    post = Post.objects.get(pk=post.pk)
    assert post.likes_count == Like.objects.filter(post=post).count() == THREADS
