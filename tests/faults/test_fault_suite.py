"""The fault-injection suite, short: each fault once, against `burgernet run` under call load.

One system for the module (:func:`testbed.faults.run_suite`, the same rig as
``benchmarks/faults.py``, PostgreSQL mode so every fault runs): SIPp callers to the free number,
SIPp phones registered as the centralists, and a broadcast (SMS and e-mail to test servers)
running through every period. A baseline period without a fault comes first, then each fault of
:data:`testbed.faults.FAULTS` in turn. The figures (timings) are the benchmark's business; here
only what must hold whatever the speed: no caller is dead-ended, no recipient is missed or
messaged twice, and a frozen FastAGI server keeps no caller in silence beyond 5 s.
"""

from __future__ import annotations

import sys

import pytest

from testbed.faults import FAULTS, PhaseResult, RigOptions, Timing, format_table, run_suite

PERIODS = ("baseline", *FAULTS)
FROZEN_SERVE_SILENCE_BOUND_S = 5.0


@pytest.fixture(scope="module")
def periods() -> dict[str, PhaseResult]:
    options = RigOptions(rate=2.0, participants=10_000, postgres=True, hold_s=20.0)
    timing = Timing(
        baseline_s=6,
        lead_s=2,
        observe_s=4,
        recover_s=30,
        serve_stop_s=10,
        redis_down_s=5,
        postgres_down_s=3,
        delivery_wait_s=60,
    )
    results, _info = run_suite(options, timing, FAULTS, recipients=100)
    print(format_table(results), file=sys.stderr)  # shown with a failure
    return {result.name: result for result in results}


def _described(result: PhaseResult) -> str:
    return (
        f"{result.title}: {result.offered} offered, {result.centralist} centralist, {result.tip} tip, "
        f"{result.no_action} no-action, {result.dead_ended} dead-ended ({result.cut_by_crash} cut by an "
        f"Asterisk crash) {result.dead_end_examples}; "
        f"longest silence {result.longest_silence_s} s (heard {result.heard_silence_s} s in "
        f"{result.probe_calls} calls); system {result.system}; {result.error or ''}"
    )


@pytest.mark.parametrize("period", PERIODS)
def test_no_caller_is_dead_ended(periods: dict[str, PhaseResult], period: str) -> None:
    result = periods[period]
    assert result.error is None, _described(result)
    assert result.offered > 0, _described(result)
    # Calls inside Asterisk when Asterisk itself is killed go down with it, whatever we do: they
    # are counted (and shown by the benchmark), but only calls after the crash must get through.
    lost_with_asterisk = result.cut_by_crash if period == "asterisk_restart" else 0
    assert result.dead_ended - lost_with_asterisk == 0, _described(result)
    assert result.centralist + result.tip + result.no_action + result.dead_ended == result.offered


@pytest.mark.parametrize("period", PERIODS)
def test_every_recipient_gets_the_alert_exactly_once(periods: dict[str, PhaseResult], period: str) -> None:
    result = periods[period]
    assert result.deliveries_expected > 0, _described(result)
    assert result.broadcast_status == "done", _described(result)
    assert (result.deliveries_lost, result.deliveries_doubled) == (0, 0), _described(result)


def test_a_frozen_fastagi_server_keeps_no_caller_silent_beyond_5_s(periods: dict[str, PhaseResult]) -> None:
    frozen = periods["serve_stop"]
    assert frozen.longest_silence_s is not None, _described(frozen)
    assert frozen.longest_silence_s <= FROZEN_SERVE_SILENCE_BOUND_S, _described(frozen)
    # The same in the audio a few callers received (the time stamps' ground truth).
    assert frozen.probe_calls > 0 and frozen.heard_silence_s is not None, _described(frozen)
    assert frozen.heard_silence_s <= FROZEN_SERVE_SILENCE_BOUND_S, _described(frozen)
