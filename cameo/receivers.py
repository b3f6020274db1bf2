"""Signal receivers: what cameo does when something it enforces changes below it."""

from __future__ import annotations

from django.db import transaction


def parental_controls_changed(sender, *, teen_id, link_id, changes: dict, actor: str, **kwargs):
    """A parent changed the cap on their teen's cameo audience (or a link with a cap was made
    or removed). Inside the change's transaction, each of the teen's cameos records it in its
    consent ledger; once committed, jobs and clips of people the narrower audience now
    excludes are stopped and taken down, as when the owner narrows it (consent_enforce)."""
    if "cameo_audience_max" not in changes:
        return
    from cameo import ledger, permissions
    from cameo.models import LIVE_STATUSES, Cameo
    from cameo.services import consent_enforce

    cameos = list(
        Cameo.objects.select_for_update(of=("self",))
        .select_related("owner")
        .filter(owner_id=teen_id, status__in=LIVE_STATUSES)
        .order_by("pk")
    )
    for cameo in cameos:
        ledger.append(
            cameo=cameo,
            actor=actor,
            action="parental_audience_cap",
            data={
                "link": f"plink_{link_id.hex}",
                **changes["cameo_audience_max"],
                "audience_now": permissions.effective_audience(cameo),
            },
        )

    def enforce():
        for cameo in cameos:
            consent_enforce(cameo=cameo, actor=actor, policy=cameo.revocation_policy)

    transaction.on_commit(enforce)


def connect() -> None:
    from accounts.signals import parental_controls_changed as signal

    signal.connect(parental_controls_changed, dispatch_uid="cameo.parental_controls_changed")
