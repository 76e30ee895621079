"""The per-outcome policies of alert calls, as a pure decision: retry (when), done, or fall back."""

from __future__ import annotations

import pytest

from burgernet.alert_policies import (
    AlertPolicies,
    AlertPolicyError,
    AlertPolicyNotFound,
    Done,
    FallBack,
    OutcomePolicy,
    Retry,
    check_policy,
    decide,
    effective,
    from_settings,
    sms_capable,
)
from burgernet.domain import Channel
from burgernet.settings import load_settings

POLICIES = AlertPolicies(
    busy=OutcomePolicy(3, 120, then="fall_back"),
    no_answer=OutcomePolicy(2, 900, then="fall_back"),
    machine=OutcomePolicy(1, 1800),
    failed=OutcomePolicy(1, 0, then="fall_back"),
    transient=OutcomePolicy(3, 30, 2.0),
)


def test_busy_is_tried_soon_with_its_own_attempts_then_falls_back_to_sms() -> None:
    assert decide("busy", 1, True, POLICIES) == Retry(120)
    assert decide("busy", 2, True, POLICIES) == Retry(120)
    assert decide("busy", 3, True, POLICIES) == FallBack(Channel.SMS)


def test_no_answer_is_tried_later_and_fewer_times() -> None:
    assert decide("no_answer", 1, True, POLICIES) == Retry(900)
    assert decide("no_answer", 2, True, POLICIES) == FallBack(Channel.SMS)


def test_the_attempts_count_every_call_of_the_delivery_whatever_its_outcome() -> None:
    # Busy, then busy, then nobody answers: the third call is past no_answer's two.
    assert decide("no_answer", 3, True, POLICIES) == FallBack(Channel.SMS)


def test_a_message_left_on_a_machine_is_done_or_called_once_more_when_configured() -> None:
    assert decide("machine", 1, False, POLICIES) == Done()
    once_more = AlertPolicies(**{**POLICIES.__dict__, "machine": OutcomePolicy(2, 600)})
    assert decide("machine", 1, False, once_more) == Retry(600)
    assert decide("machine", 2, False, once_more) == Done()


def test_a_failed_call_falls_back_at_once_and_provider_trouble_keeps_the_general_rule() -> None:
    assert decide("failed", 1, False, POLICIES) == FallBack(Channel.SMS)
    assert decide("failed", 1, True, POLICIES) == Retry(30)
    assert decide("failed", 2, True, POLICIES) == Retry(60)  # doubling, as before
    assert decide("failed", 2, True, POLICIES, retry_after=90) == Retry(90)  # the provider's wish
    assert decide("failed", 3, True, POLICIES) == FallBack(Channel.SMS)


def test_busy_the_sender_knows_is_hopeless_skips_the_calls_left() -> None:
    assert decide("busy", 1, False, POLICIES) == FallBack(Channel.SMS)


def test_the_multiplier_grows_each_wait() -> None:
    growing = AlertPolicies(**{**POLICIES.__dict__, "busy": OutcomePolicy(4, 60, 2.0, "done")})
    assert [decide("busy", n, True, growing) for n in (1, 2, 3, 4)] == [
        Retry(60),
        Retry(120),
        Retry(240),
        Done(),
    ]


def test_reached_or_called_off_is_done_and_only_voice_falls_back() -> None:
    for status in ("sent", "delivered", "answered", "undelivered", "cancelled"):
        assert decide(status, 1, False, POLICIES) == Done()
    assert decide("failed", 1, False, POLICIES, channel=Channel.SMS) == Done()
    assert decide("failed", 1, True, POLICIES, channel=Channel.EMAIL) == Retry(30)
    with pytest.raises(ValueError):
        decide("queued", 1, False, POLICIES)


def test_stop_instead_of_falling_back() -> None:
    stop = AlertPolicies(**{**POLICIES.__dict__, "failed": OutcomePolicy(1, 0, then="done")})
    assert decide("failed", 1, False, stop) == Done()
    assert decide("failed", 3, True, stop) == Done()  # provider trouble to the end: failed's rule


def test_the_settings_defaults_and_the_panel_over_them() -> None:
    broadcast = load_settings().broadcast
    defaults = from_settings(broadcast)
    assert defaults.busy == OutcomePolicy(3, 120, 1.0, "fall_back")
    assert defaults.no_answer == OutcomePolicy(2, 900, 1.0, "fall_back")
    assert defaults.machine == OutcomePolicy(1, 1800, 1.0, "done")
    assert defaults.failed.then == "fall_back" and defaults.failed.attempts == 1
    assert defaults.transient == OutcomePolicy(broadcast.max_attempts, broadcast.retry_base_seconds, 2.0)
    chosen = effective(defaults, {"busy": OutcomePolicy(5, 30)})
    assert chosen.busy == OutcomePolicy(5, 30) and chosen.no_answer == defaults.no_answer


def test_settings_refuse_a_repeated_failed_call() -> None:
    with pytest.raises(ValueError, match=r"failed\.attempts"):
        load_settings(broadcast={"policies": {"failed": {"attempts": 2, "backoff_seconds": 10}}})


@pytest.mark.parametrize(
    ("outcome", "policy", "words"),
    [
        ("busy", OutcomePolicy(0, 60), "attempts"),
        ("busy", OutcomePolicy(11, 60), "attempts"),
        ("busy", OutcomePolicy(2, 0), "at least one second"),
        ("busy", OutcomePolicy(2, 99_999), "wait"),
        ("busy", OutcomePolicy(2, 60, 0.5), "multiplier"),
        ("busy", OutcomePolicy(10, 3600, 10.0), "last wait"),
        ("failed", OutcomePolicy(2, 60), "never repeated"),
    ],
)
def test_check_policy_names_what_is_wrong(outcome: str, policy: OutcomePolicy, words: str) -> None:
    with pytest.raises(AlertPolicyError, match=words) as refused:
        check_policy(outcome, policy)
    assert refused.value.code == "alert.policy_invalid"


def test_an_unknown_outcome_has_no_policy() -> None:
    with pytest.raises(AlertPolicyNotFound) as missing:
        check_policy("answered", OutcomePolicy(1, 0))
    assert missing.value.code == "alert.policy_not_found"


def test_only_a_mobile_number_takes_an_sms() -> None:
    assert sms_capable("+31612345678")
    assert not sms_capable("+31201234567")  # a fixed line in Amsterdam
    assert not sms_capable("not a number")
