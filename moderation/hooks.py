"""Extension points for the apps above moderation (cameo, feed): they register what happens
when staff decide a case in their queue, and how to remove and restore the subjects they own,
without moderation importing them."""

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


_subject_actions: dict[str, dict[str, Callable]] = {}


def register_subject_action(subject_type: str, *, remove: Callable, restore: Callable) -> None:
    """How to remove and restore a subject of ``subject_type`` whose state lives in an app
    above moderation (comments, in feed). Each is called ``fn(obj=, actor=, reason=)`` with the
    subject's object, inside the decision's transaction, and returns whether it changed
    anything (False: already so). Registering again replaces."""
    _subject_actions[subject_type] = {"remove": remove, "restore": restore}


def subject_action(subject_type: str, action: str) -> Callable | None:
    return _subject_actions.get(subject_type, {}).get(action)
