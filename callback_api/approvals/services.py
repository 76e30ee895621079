"""The approval service as the panel and the API use it: the core's
:class:`burgernet.approvals.ApprovalService` with the recipient count plugged in (the same
selection a broadcast makes, :func:`broadcasting.recipients.select_recipients`), and the
refusals that are the user's (self-approval, no approver flag) answered as 403s with the
domain's codes.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.orm import Session

from broadcasting.recipients import Recipients, select_recipients
from burgernet.approvals import (
    ApprovalError,
    ApprovalService,
    NotAnApprover,
    SelfApproval,
    estimated_seconds,
)
from burgernet.domain import Channel
from burgernet.models import Action
from burgernet.repositories import action_area
from burgernet.services import Services

__all__ = ["approval_service", "count_alert_recipients", "refusal_status"]


def count_alert_recipients(session: Session, action: Action) -> Mapping[str, int]:
    """Who the action's alert would reach now, per channel it uses and in people (as the
    new-action page's preview counts them)."""
    wanted = [channel for channel in action.channels.split(",") if channel]
    found = select_recipients(session, action_area(action))
    reached = Recipients({c: ids for c, ids in found.by_channel.items() if c.value in wanted})
    counts = {channel: reached.count(Channel(channel)) for channel in wanted}
    counts["people"] = reached.people()
    return counts


def approval_service(services: Services) -> ApprovalService:
    return ApprovalService(
        services.sessions,
        services.actions,
        approval_minutes=services.settings.actions.approval_minutes,
        count_recipients=count_alert_recipients,
        estimate_eta=estimated_seconds(services.settings),
    )


def refusal_status(error: ApprovalError) -> int | None:
    """403 for a user who may not decide (asked themselves, no approver flag); None: the
    app's usual mapping of the domain error (404, 409, 422)."""
    return 403 if isinstance(error, SelfApproval | NotAnApprover) else None
