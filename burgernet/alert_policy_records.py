"""The outcome policies as they stand: the panel's rows (table ``alert_outcome_policies``)
over the settings' defaults. One reading for the worker that applies them, the ETA that
forecasts them and the panel page that edits them (:mod:`burgernet.alert_policies` holds the
rules themselves, pure)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from burgernet.alert_policies import AlertPolicies, OutcomePolicy, effective, from_settings
from burgernet.models import AlertOutcomePolicy
from burgernet.settings import BroadcastSettings

__all__ = ["current_policies", "policy_of", "stored_policies"]


def policy_of(row: AlertOutcomePolicy) -> OutcomePolicy:
    """One stored row as the policy the rules apply."""
    return OutcomePolicy(
        row.attempts,
        float(row.backoff_seconds),
        float(row.backoff_multiplier),
        "fall_back" if row.when_exhausted == "fall_back" else "done",
    )


def stored_policies(session: Session) -> dict[str, OutcomePolicy]:
    """The outcome policies an admin set in the panel (outcome → policy); the rest default."""
    return {row.outcome: policy_of(row) for row in session.scalars(select(AlertOutcomePolicy))}


def current_policies(session: Session, broadcast: BroadcastSettings) -> AlertPolicies:
    """What the workers apply now: the panel's policies over ``broadcast.policies``."""
    return effective(from_settings(broadcast), stored_policies(session))
