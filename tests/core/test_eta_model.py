"""The pure ETA model (burgernet.eta.estimate): rates, trunk channels, retries, queue, night hold."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from burgernet.eta import ChannelInputs, EstimateInputs, estimate, throughput

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def run(*channels: ChannelInputs, **options: object) -> dict[int, float | None]:
    inputs = EstimateInputs(channels=channels, fan_out_seconds=0.0, now=NOW, **options)  # type: ignore[arg-type]
    return dict(estimate(inputs).seconds_to)


def voice(recipients: int, **overrides: object) -> ChannelInputs:
    values: dict[str, object] = {
        "channel": "voice",
        "recipients": recipients,
        "per_second": 100.0,
        "concurrent": 10,
        "answer_share": 1.0,
        "ring_to_answer_seconds": 1.0,
        "talk_seconds": 4.0,
        "unanswered_seconds": 20.0,
    }
    values.update(overrides)
    return ChannelInputs(**values)  # type: ignore[arg-type]


def test_a_rate_bound_channel_takes_recipients_over_rate() -> None:
    seconds = run(ChannelInputs("sms", 1000, per_second=10.0, send_seconds=0.5))
    assert seconds[100] == pytest.approx(99.9 + 0.5, abs=0.01)
    assert seconds[50] == pytest.approx(49.9 + 0.5, abs=0.01)
    assert seconds[90] == pytest.approx(89.9 + 0.5, abs=0.01)


def test_voice_goes_in_waves_of_the_trunk_channels_it_may_hold() -> None:
    # 40 calls, 10 channels, each held 5 s (1 s ringing + 4 s talk): four waves.
    seconds = run(voice(40))
    last_wave_start = 3 * 5.0 + 9 / 100
    assert seconds[100] == pytest.approx(last_wave_start + 1.0, abs=0.01)
    assert throughput(voice(40)) == pytest.approx(2.0)  # 10 channels / 5 s


def test_the_call_rate_binds_when_calls_are_short() -> None:
    seconds = run(voice(100, per_second=2.0, talk_seconds=0.5, ring_to_answer_seconds=0.5))
    assert seconds[100] == pytest.approx(99 / 2.0 + 0.5, abs=0.01)


def test_more_channels_or_a_faster_rate_is_never_slower() -> None:
    base = run(voice(500))[100]
    assert base is not None
    assert (run(voice(500, concurrent=20))[100] or 0) < base
    assert (run(voice(500, per_second=1000.0))[100] or 0) <= base


def test_unanswered_calls_are_tried_again_after_the_backoff() -> None:
    # Half the attempts go unanswered: some wait 30 s, then 60 s, before their last try.
    once = run(voice(20, answer_share=0.5), max_attempts=1, retry_waits=(30.0, 60.0))
    thrice = run(voice(20, answer_share=0.5), max_attempts=3, retry_waits=(30.0, 60.0))
    assert once[100] is not None and thrice[100] is not None
    # A channel is held 12.5 s on average (half 5 s, half 20 s): the second wave's unanswered
    # calls end 20 s after it starts.
    assert once[100] == pytest.approx(12.5 + 9 / 100 + 20.0, abs=0.01)
    # The third attempt starts no sooner than 20 + 30 + 20 + 60 s after the first.
    assert thrice[100] >= 130.0
    assert thrice[50] is not None and thrice[50] < 15.0  # half answer on the first try


def test_deliveries_queued_ahead_go_first() -> None:
    alone = run(ChannelInputs("sms", 100, per_second=10.0))[100]
    behind = run(ChannelInputs("sms", 100, per_second=10.0, queued_ahead=300))[100]
    assert alone is not None and behind is not None
    assert behind - alone == pytest.approx(30.0, abs=0.01)


def test_a_held_channel_starts_when_the_quiet_window_ends() -> None:
    inputs = EstimateInputs(
        channels=(
            voice(10, held_seconds=3600.0),
            ChannelInputs("email", 10, per_second=100.0, send_seconds=0.1),
        ),
        fan_out_seconds=0.0,
        now=NOW,
    )
    result = estimate(inputs)
    held = result.channel("voice")
    assert held is not None and held.held_until == datetime(2026, 12, 2, 13, 0, tzinfo=UTC)
    assert (held.seconds_to[50] or 0) >= 3600.0
    email = result.channel("email")
    assert email is not None and email.held_until is None and (email.seconds_to[100] or 0) < 1.0
    # Half of everything (the e-mails) is handled at once; the rest waits for the morning.
    assert (result.seconds_to[50] or 0) < 1.0
    assert (result.seconds_to[100] or 0) > 3600.0


def test_the_whole_broadcast_merges_its_channels() -> None:
    result = estimate(
        EstimateInputs(
            channels=(
                ChannelInputs("sms", 100, per_second=10.0, send_seconds=0.0),
                ChannelInputs("email", 100, per_second=100.0, send_seconds=0.0),
            ),
            fan_out_seconds=0.0,
            now=NOW,
        )
    )
    assert result.recipients == 200
    # By 0.9 s: 91 e-mails and 10 SMS, just over half.
    assert result.seconds_to[50] == pytest.approx(0.9, abs=0.01)
    assert result.seconds_to[100] == pytest.approx(9.9, abs=0.01)
    assert result.longest_seconds == result.seconds_to[100]
    assert result.as_dict()["seconds_to"] == {"50%": 0.9, "90%": 7.9, "100%": 9.9}


def test_a_national_alert_is_estimated_quickly_and_scales_linearly() -> None:
    small = run(ChannelInputs("push", 100_000, per_second=5000.0, send_seconds=0.0))[100]
    large = run(ChannelInputs("push", 1_000_000, per_second=5000.0, send_seconds=0.0))[100]
    assert small == pytest.approx(20.0, rel=0.01)
    assert large == pytest.approx(200.0, rel=0.01)


def test_no_recipients_no_times() -> None:
    result = estimate(EstimateInputs(channels=(ChannelInputs("sms", 0, per_second=10.0),), now=NOW))
    assert result.seconds_to == {50: None, 90: None, 100: None}
