"""The outcome policies in the panel: read (each with its default), save, back to the default.

The rules and the defaults' shape are the domain's (:mod:`burgernet.alert_policies`); the
defaults themselves come from the settings (``broadcast.policies``). Every change is audited in
the same transaction. Workers read the table themselves and pick a change up within
``broadcasting.worker.POLICY_CACHE_SECONDS``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from burgernet.alert_policies import (
    EDITABLE_OUTCOMES,
    AlertPolicies,
    AlertPolicyError,
    AlertPolicyNotFound,
    OutcomePolicy,
    check_policy,
    from_settings,
)
from burgernet.alert_policy_records import policy_of
from burgernet.db import session_scope
from burgernet.models import AlertOutcomePolicy
from burgernet.repositories import record_audit
from burgernet.services import Services
from burgernet.settings import BroadcastSettings

__all__ = ["AlertPolicyError", "AlertPolicyNotFound", "AlertPolicyStore", "PolicyRow", "alert_policy_store"]

AUDIT_ENTITY = "alert_outcome_policy"


@dataclass(frozen=True)
class PolicyRow:
    outcome: str
    policy: OutcomePolicy  # what the workers apply
    default: OutcomePolicy  # what the settings say
    customised: bool  # set in the panel
    updated_by: str | None = None


class AlertPolicyStore:
    def __init__(self, sessions: sessionmaker[Session], broadcast: BroadcastSettings) -> None:
        self._sessions = sessions
        self._defaults: AlertPolicies = from_settings(broadcast)

    def all(self) -> list[PolicyRow]:
        """One per outcome, in the order the panel shows them."""
        with session_scope(self._sessions) as session:
            stored = {row.outcome: row for row in session.scalars(select(AlertOutcomePolicy))}
            return [self._row(outcome, stored.get(outcome)) for outcome in EDITABLE_OUTCOMES]

    def get(self, outcome: str) -> PolicyRow:
        if outcome not in EDITABLE_OUTCOMES:
            raise AlertPolicyNotFound(f"no policy for the outcome {outcome!r}")
        with session_scope(self._sessions) as session:
            return self._row(outcome, session.get(AlertOutcomePolicy, outcome))

    def _row(self, outcome: str, stored: AlertOutcomePolicy | None) -> PolicyRow:
        default = self._defaults.for_outcome(outcome)
        if stored is None:
            return PolicyRow(outcome, default, default, customised=False)
        return PolicyRow(outcome, policy_of(stored), default, customised=True, updated_by=stored.updated_by)

    def save(self, outcome: str, policy: OutcomePolicy, *, actor: str, source: str) -> PolicyRow:
        checked = check_policy(outcome, policy)
        with session_scope(self._sessions) as session:
            row = session.get(AlertOutcomePolicy, outcome)
            before = None if row is None else asdict(policy_of(row))
            if row is None:
                row = AlertOutcomePolicy(outcome=outcome)
                session.add(row)
            row.attempts = checked.attempts
            row.backoff_seconds = checked.backoff_seconds
            row.backoff_multiplier = checked.backoff_multiplier
            row.when_exhausted = checked.then
            row.updated_at = datetime.now(UTC)
            row.updated_by = actor
            record_audit(
                session,
                actor=actor,
                verb="save",
                entity=AUDIT_ENTITY,
                entity_id=outcome,
                detail={"before": before, "after": asdict(checked)},
                source=source,
            )
            return self._row(outcome, row)

    def reset(self, outcome: str, *, actor: str, source: str) -> bool:
        """Back to the settings' default; False when there was nothing stored."""
        if outcome not in EDITABLE_OUTCOMES:
            raise AlertPolicyNotFound(f"no policy for the outcome {outcome!r}")
        with session_scope(self._sessions) as session:
            row = session.get(AlertOutcomePolicy, outcome)
            if row is None:
                return False
            before = asdict(policy_of(row))
            session.delete(row)
            record_audit(
                session,
                actor=actor,
                verb="reset",
                entity=AUDIT_ENTITY,
                entity_id=outcome,
                detail={"before": before},
                source=source,
            )
        return True


def alert_policy_store(services: Services) -> AlertPolicyStore:
    return AlertPolicyStore(services.sessions, services.settings.broadcast)
