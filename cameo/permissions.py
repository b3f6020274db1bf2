"""Who may see and use a cameo. Every read and every use goes through these two functions.

The rule, in order (the first that applies decides):
1. Nobody uses a cameo that is not verified; only its owner (and staff) sees one that is not.
2. Its owner may.
3. A block, either way, between owner and user: no — blocks always win.
4. The audience: ``only_me`` nobody else; ``approved`` an accepted grant; ``mutuals`` mutual
   followers or an accepted grant; ``everyone`` any signed-in person.
Staff may read a cameo (moderation needs to), never use it on someone else's behalf.
"""

from __future__ import annotations

from accounts.selectors import is_blocked_either_way, mutual_followers, parental_controls_for
from cameo.models import Audience, Cameo, CameoGrant, CameoStatus, GrantStatus

# Narrowest first.
AUDIENCE_ORDER = [Audience.ONLY_ME, Audience.APPROVED, Audience.MUTUALS, Audience.EVERYONE]


def parental_cap(owner) -> str | None:
    """The widest audience a linked parent lets ``owner``'s cameo have (None: no cap)."""
    controls = parental_controls_for(owner)
    return controls.cameo_audience_max if controls is not None else None


def effective_audience(cameo: Cameo) -> str:
    """The cameo's audience as it applies: a teen's is never ``everyone``, and never wider
    than a linked parent's cap, whatever the row says."""
    audience = cameo.audience
    if cameo.owner.is_teen:
        if audience == Audience.EVERYONE:
            audience = Audience.MUTUALS
        cap = parental_cap(cameo.owner)
        if cap is not None and AUDIENCE_ORDER.index(cap) < AUDIENCE_ORDER.index(audience):
            audience = cap
    return audience


def _signed_in(user) -> bool:
    return user is not None and user.is_authenticated and user.is_active


def has_grant(cameo: Cameo, user) -> bool:
    return CameoGrant.objects.filter(
        cameo=cameo, grantee_id=user.pk, status=GrantStatus.ACCEPTED
    ).exists()


def audience_admits(cameo: Cameo, user) -> bool:
    """Whether the cameo's audience setting lets ``user`` (not its owner) use it."""
    # Safety: a teen's cameo is never open to everyone, nor wider than a parent allows.
    audience = effective_audience(cameo)
    if audience == Audience.EVERYONE:
        return True
    if audience == Audience.ONLY_ME:
        return False
    if has_grant(cameo, user):
        return True
    return audience == Audience.MUTUALS and mutual_followers(cameo.owner, user)


def can_use(cameo: Cameo, user) -> bool:
    # Safety: the single consent decision, made at job creation and again at completion.
    if not _signed_in(user) or cameo.status != CameoStatus.VERIFIED:
        return False
    if not cameo.owner.is_active:
        return False
    if cameo.owner_id == user.pk:
        return True
    if is_blocked_either_way(cameo.owner, user):
        return False
    return audience_admits(cameo, user)


def can_see(cameo: Cameo, user) -> bool:
    """Whether ``user`` may learn that the cameo exists and read its public details."""
    if not _signed_in(user) or cameo.status == CameoStatus.DELETED:
        return False
    if cameo.owner_id == user.pk:
        return True
    if user.is_staff:
        return True
    return can_use(cameo, user)


def is_owner(cameo: Cameo, user) -> bool:
    return _signed_in(user) and cameo.owner_id == user.pk
