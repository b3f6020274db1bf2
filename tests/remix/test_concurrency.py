"""Fifty remixes stored at the same moment, each in its own transaction and connection: every
one is recorded, the counts are exact, and nobody deadlocks."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from remix.models import Ancestry, LineageEdge
from tests.factories import UserFactory
from tests.remix.helpers import make_clip, node

pytestmark = pytest.mark.django_db(transaction=True)

WRITERS = 50


def test_fifty_simultaneous_remixes_are_counted_exactly_without_deadlock():
    original = make_clip(UserFactory())
    child = make_clip(UserFactory(), parent=original)
    remixers = [UserFactory() for _ in range(WRITERS)]
    barrier = threading.Barrier(WRITERS, timeout=60)
    errors: list[BaseException] = []

    def remix(index: int) -> None:
        try:
            # Half remix the original, half its child: the two groups lock overlapping
            # ancestor sets, which is where a careless lock order would deadlock.
            parent = original if index % 2 else child
            barrier.wait()
            with transaction.atomic():
                make_clip(remixers[index], parent=parent)
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=remix, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    root, middle = node(original), node(child)
    assert (root.children_count, root.descendants_count) == (1 + WRITERS // 2, 1 + WRITERS)
    assert (middle.children_count, middle.descendants_count) == (WRITERS // 2, WRITERS // 2)
    assert LineageEdge.objects.count() == 1 + WRITERS
    assert Ancestry.objects.filter(ancestor=root).count() == 1 + WRITERS
    assert root.velocity_score == pytest.approx(1 + WRITERS // 2, rel=1e-3)
    assert root.tree_velocity_score == pytest.approx(1 + WRITERS, rel=1e-3)
