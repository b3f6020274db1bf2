"""Extension points for the apps above moderation (cameo, feed): they register what happens
when staff decide a case in their queue, without moderation importing them."""

from __future__ import annotations

from collections.abc import Callable

_resolvers: dict[str, list[Callable]] = {}


def register_case_resolver(queue: str, fn: Callable) -> None:
    """``fn(case=, decision=, actor=, note=)`` runs inside the transaction of every staff
    decision on a case in ``queue``; raising aborts the decision. Registering the same function
    twice (an app's ready() run again) keeps one."""
    fns = _resolvers.setdefault(queue, [])
    if fn not in fns:
        fns.append(fn)


def case_resolvers(queue: str) -> list[Callable]:
    return list(_resolvers.get(queue, ()))


def has_resolver(queue: str) -> bool:
    return bool(_resolvers.get(queue))
