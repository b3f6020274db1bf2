"""Signal receivers: what the feed does when something it enforces changes below it."""

from __future__ import annotations


def parental_controls_changed(sender, *, teen_id, changes: dict, **kwargs) -> None:
    """A parent turned personalisation off (or a link that did was removed): the teen's For You
    list ranked ahead of time is not served again until it is ranked under the new setting."""
    if "personalization_off" not in changes:
        return
    from accounts.models import User
    from feed.services import for_you_list_stale

    teen = User.objects.filter(pk=teen_id).first()
    if teen is not None:
        for_you_list_stale(user=teen)


def connect() -> None:
    from accounts.signals import parental_controls_changed as signal

    signal.connect(parental_controls_changed, dispatch_uid="feed.parental_controls_changed")
