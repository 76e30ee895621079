"""What happens after each outcome of a delivery: try again (when), stop, or fall back to SMS.

A control room wants an alert to *reach* people, not to ring the same phone every half
minute. So each outcome of an alert call has its own policy:

* ``busy`` — the person is on the phone right now: try again soon (default 3 calls, 2 min apart);
* ``no_answer`` — nobody picked up: try again later (default 2 calls, 15 min apart);
* ``machine`` — an answering machine took the call and the short message was left: the
  participant was reached, done (or one more call to reach the person, when configured);
* ``failed`` — the call cannot be made (the number does not exist, is refused): no retry.

When a policy's calls are used up without reaching the participant (failed, busy or no answer
to the end), the alert *falls back* to the next channel: a voice alert to SMS, when the
participant allows SMS and has a mobile number (:mod:`broadcasting.store` checks that).

A provider's *transient* trouble (Twilio 429/5xx, an SMTP 4xx, the originate refused) is a
different thing: it says nothing about the participant, so it keeps the pipeline's general
rule (``broadcast.max_attempts`` tries, ``broadcast.retry_base_seconds`` doubling each time, or
the provider's ``Retry-After``), and only when those are used up does ``failed``'s rule apply.

Pure: frozen dataclasses in, a decision out (:func:`decide`). The defaults come from
``broadcast.policies`` in the settings; admins change them in the panel (Settings → Alert
retries, table ``alert_outcome_policies``), and the panel's values win (:func:`effective`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, ClassVar, Literal

import phonenumbers
from phonenumbers import PhoneNumberType

from burgernet.domain import Channel
from burgernet.errors import DomainError, NotFoundError

if TYPE_CHECKING:
    from burgernet.settings import BroadcastSettings, OutcomePolicySettings

__all__ = [
    "EDITABLE_OUTCOMES",
    "FALLBACK_CHANNEL",
    "THEN_CHOICES",
    "AlertPolicies",
    "AlertPolicyError",
    "AlertPolicyNotFound",
    "Decision",
    "Done",
    "FallBack",
    "OutcomePolicy",
    "Retry",
    "Then",
    "check_policy",
    "decide",
    "effective",
    "from_settings",
    "sms_capable",
]

# The outcomes an admin sets a policy for, in the order the panel shows them.
EDITABLE_OUTCOMES: tuple[str, ...] = ("busy", "no_answer", "machine", "failed")
Then = Literal["done", "fall_back"]
THEN_CHOICES: tuple[Then, ...] = ("done", "fall_back")
# Where a channel's deliveries go when they did not reach the participant. Only voice falls back:
# an SMS that failed has no cheaper, surer channel behind it (e-mail is read hours later).
FALLBACK_CHANNEL: Mapping[Channel, Channel] = {Channel.VOICE: Channel.SMS}

MAX_ATTEMPTS = 10
MAX_BACKOFF_SECONDS = 6 * 3600  # an alert retried after more than six hours is no alert any more
MAX_MULTIPLIER = 10.0
# Outcomes that end a delivery whatever the policies say: it reached the person, or it was called off.
_FINAL_WITHOUT_POLICY = frozenset({"sent", "delivered", "answered", "undelivered", "cancelled"})


class AlertPolicyError(DomainError):
    """A policy cannot be saved as given; the message says what to change."""

    code: ClassVar[str] = "alert.policy_invalid"


class AlertPolicyNotFound(NotFoundError):
    """No policy is kept for this outcome (only busy, no_answer, machine and failed have one)."""

    code: ClassVar[str] = "alert.policy_not_found"


@dataclass(frozen=True)
class OutcomePolicy:
    """``attempts``: the most calls a delivery gets when this is its latest outcome (every
    earlier call of the delivery counts, whatever its outcome was); the wait before call n+1 is
    ``backoff_seconds × backoff_multiplier^(n-1)``; ``then``: what follows the last call."""

    attempts: int
    backoff_seconds: float
    backoff_multiplier: float = 1.0
    then: Then = "done"

    def wait_after(self, attempt: int) -> float:
        return self.backoff_seconds * self.backoff_multiplier ** max(0, attempt - 1)


@dataclass(frozen=True)
class AlertPolicies:
    """Every policy the worker applies; ``transient`` is the pipeline's general retry rule."""

    busy: OutcomePolicy
    no_answer: OutcomePolicy
    machine: OutcomePolicy
    failed: OutcomePolicy
    transient: OutcomePolicy

    def for_outcome(self, status: str) -> OutcomePolicy:
        return {
            "busy": self.busy,
            "no_answer": self.no_answer,
            "machine": self.machine,
            "failed": self.failed,
        }[status]


@dataclass(frozen=True)
class Retry:
    in_seconds: float


@dataclass(frozen=True)
class Done:
    pass


@dataclass(frozen=True)
class FallBack:
    channel: Channel


Decision = Retry | Done | FallBack


def decide(
    status: str,
    attempt: int,
    transient: bool,
    policies: AlertPolicies,
    *,
    channel: Channel = Channel.VOICE,
    retry_after: float | None = None,
) -> Decision:
    """What follows call (or send) number ``attempt`` of a delivery that ended ``status``.

    ``transient``: the sender says trying again may help (``Outcome.retry``). For ``failed`` it
    marks provider trouble (the general rule applies); for ``busy`` and ``no_answer`` its
    absence means the sender knows another call cannot help (the number does not exist), so
    the calls left are skipped. ``retry_after``: the provider asked for at least this wait.
    """
    if status in _FINAL_WITHOUT_POLICY:
        return Done()
    if status == "failed" and transient:
        policy = replace(policies.transient, then=policies.failed.then)
    elif status in ("busy", "no_answer", "machine", "failed"):
        policy = policies.for_outcome(status)
        if status in ("busy", "no_answer") and not transient:
            policy = replace(policy, attempts=1)
    else:
        raise ValueError(f"{status!r} is not an outcome of a delivery attempt")
    if attempt < policy.attempts:
        return Retry(max(policy.wait_after(attempt), retry_after or 0.0))
    next_channel = FALLBACK_CHANNEL.get(channel)
    if policy.then == "fall_back" and next_channel is not None:
        return FallBack(next_channel)
    return Done()


def check_policy(outcome: str, policy: OutcomePolicy) -> OutcomePolicy:
    """The policy as it may be stored, or AlertPolicyError naming what is wrong."""
    if outcome not in EDITABLE_OUTCOMES:
        raise AlertPolicyNotFound(f"no policy for the outcome {outcome!r}")
    if not 1 <= policy.attempts <= MAX_ATTEMPTS:
        raise AlertPolicyError(f"attempts is 1 to {MAX_ATTEMPTS} (the first call counts)")
    if outcome == "failed" and policy.attempts != 1:
        # A refused number stays refused; provider trouble has its own rule (broadcast.max_attempts).
        raise AlertPolicyError("a failed call is never repeated: attempts is 1")
    if not (math.isfinite(policy.backoff_seconds) and 0 <= policy.backoff_seconds <= MAX_BACKOFF_SECONDS):
        raise AlertPolicyError(f"the wait is 0 to {MAX_BACKOFF_SECONDS} seconds")
    if policy.attempts > 1 and policy.backoff_seconds < 1:
        raise AlertPolicyError("wait at least one second before calling again")
    if not (math.isfinite(policy.backoff_multiplier) and 1.0 <= policy.backoff_multiplier <= MAX_MULTIPLIER):
        raise AlertPolicyError(f"the multiplier is 1 to {MAX_MULTIPLIER:g}")
    if policy.then not in THEN_CHOICES:
        raise AlertPolicyError(f"after the last call: one of {', '.join(THEN_CHOICES)}")
    last_wait = policy.wait_after(policy.attempts - 1) if policy.attempts > 1 else 0.0
    if last_wait > MAX_BACKOFF_SECONDS:
        raise AlertPolicyError(
            f"the last wait would be {last_wait:.0f} s, at most {MAX_BACKOFF_SECONDS} s: lower the multiplier"
        )
    return policy


def effective(defaults: AlertPolicies, stored: Mapping[str, OutcomePolicy]) -> AlertPolicies:
    """The panel's policies over the settings' defaults (``stored``: outcome → policy)."""
    chosen = {outcome: stored[outcome] for outcome in EDITABLE_OUTCOMES if outcome in stored}
    return replace(defaults, **chosen)


def _from_section(section: OutcomePolicySettings) -> OutcomePolicy:
    return OutcomePolicy(section.attempts, section.backoff_seconds, section.backoff_multiplier, section.then)


def from_settings(broadcast: BroadcastSettings) -> AlertPolicies:
    """The defaults: ``broadcast.policies``, and the general rule for provider trouble."""
    defaults = broadcast.policies
    return AlertPolicies(
        busy=_from_section(defaults.busy),
        no_answer=_from_section(defaults.no_answer),
        machine=_from_section(defaults.machine),
        failed=_from_section(defaults.failed),
        transient=OutcomePolicy(broadcast.max_attempts, broadcast.retry_base_seconds, 2.0),
    )


def sms_capable(phone_e164: str) -> bool:
    """A number a text message can reach: a mobile one (a fixed line cannot take an SMS)."""
    try:
        parsed = phonenumbers.parse(phone_e164, None)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(parsed) and phonenumbers.number_type(parsed) in (
        PhoneNumberType.MOBILE,
        PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )
