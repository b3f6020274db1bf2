"""Signals: how accounts tells the apps above it that something they enforce has changed
(accounts imports none of them)."""

from __future__ import annotations

from django.dispatch import Signal

# Sent inside the transaction that changes a link's controls (the parent's edit, the link
# made or removed): ``teen_id``, ``link_id``, ``actor`` and ``changes``, {control: {"from",
# "to"}} of that link (a link made changes from the platform's values, a link removed back to
# them). The teen's combined controls (accounts.selectors.parental_controls_for) already read
# the new values. Receivers doing slow work defer it with transaction.on_commit.
parental_controls_changed = Signal()
