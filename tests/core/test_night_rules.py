"""The quiet window and who waits for the morning (burgernet.night_rules)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from burgernet.domain import Channel
from burgernet.night_rules import InvalidQuietHours, hold_for, may_be_held, parse_quiet_hours
from burgernet.settings import SettingsError, load_settings


def test_the_window_is_parsed_and_empty_means_off() -> None:
    window = parse_quiet_hours("23:00-07:00")
    assert window is not None and window.text == "23:00-07:00"
    assert parse_quiet_hours("") is None
    assert parse_quiet_hours("  ") is None
    for bad in ("23-07", "24:00-07:00", "23:00-23:00", "23:00 to 07:00"):
        with pytest.raises(InvalidQuietHours):
            parse_quiet_hours(bad)


def test_settings_refuse_an_unreadable_window() -> None:
    with pytest.raises(SettingsError, match="quiet_hours"):
        load_settings(broadcast={"quiet_hours": "11pm-7am"})
    with pytest.raises(SettingsError, match="quiet_hours"):
        load_settings(broadcast={"quiet_hours": "23:00-07:00", "quiet_timezone": "Mars/Olympus"})
    assert load_settings(broadcast={"quiet_hours": "23:00-07:00"}).broadcast.quiet_window() is not None
    assert load_settings().broadcast.quiet_window() is None  # off by default


def test_the_end_is_the_next_local_morning_in_amsterdam() -> None:
    window = parse_quiet_hours("23:00-07:00")
    assert window is not None
    # 02:30 Amsterdam in winter is 01:30 UTC: the window ends at 07:00 local, 06:00 UTC.
    assert window.end_after(datetime(2026, 12, 3, 1, 30, tzinfo=UTC)) == datetime(
        2026, 12, 3, 6, 0, tzinfo=UTC
    )
    # 23:30 local (22:30 UTC) the evening before: the end is the next day.
    assert window.end_after(datetime(2026, 12, 2, 22, 30, tzinfo=UTC)) == datetime(
        2026, 12, 3, 6, 0, tzinfo=UTC
    )
    # Summer time: 07:00 local is 05:00 UTC.
    assert window.end_after(datetime(2026, 7, 1, 1, 0, tzinfo=UTC)) == datetime(2026, 7, 1, 5, 0, tzinfo=UTC)
    # Daytime and 07:00 sharp: outside.
    assert window.end_after(datetime(2026, 12, 2, 12, 0, tzinfo=UTC)) is None
    assert window.end_after(datetime(2026, 12, 3, 6, 0, tzinfo=UTC)) is None
    # A window within one day.
    day = parse_quiet_hours("12:00-13:30")
    assert day is not None
    assert day.end_after(datetime(2026, 12, 2, 11, 15, tzinfo=UTC)) == datetime(
        2026, 12, 2, 12, 30, tzinfo=UTC
    )


def test_only_information_actions_wait_and_amber_and_missing_children_never() -> None:
    assert may_be_held("vehicle", "information", "alert")
    assert may_be_held("suspect", None, "update")
    assert not may_be_held("vehicle", "urgent", "alert")
    assert not may_be_held("missing_person", "amber", "alert")
    assert not may_be_held("missing_child", "information", "alert")
    assert not may_be_held("amber_alert", "information", "alert")
    assert not may_be_held("vehicle", "information", "reply")


def test_the_hold_covers_voice_and_sms_only_when_asked_never_email_or_push() -> None:
    window = parse_quiet_hours("23:00-07:00")
    night = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)
    every = [Channel.VOICE, Channel.SMS, Channel.EMAIL, Channel.PUSH]
    hold = hold_for(
        window,
        action_type="vehicle",
        urgency="information",
        kind="alert",
        hold_sms=False,
        now=night,
        channels=every,
    )
    assert hold is not None and hold.channels == {Channel.VOICE}
    hold = hold_for(
        window,
        action_type="vehicle",
        urgency="information",
        kind="alert",
        hold_sms=True,
        now=night,
        channels=every,
    )
    assert hold is not None and hold.channels == {Channel.VOICE, Channel.SMS}
    assert hold.until == datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
    only_mail = [Channel.EMAIL, Channel.PUSH]
    assert (
        hold_for(
            window,
            action_type="vehicle",
            urgency="information",
            kind="alert",
            hold_sms=True,
            now=night,
            channels=only_mail,
        )
        is None
    )
    assert (
        hold_for(
            window, action_type="missing_child", urgency="information", kind="alert", hold_sms=True, now=night
        )
        is None
    )
    assert (
        hold_for(None, action_type="vehicle", urgency="information", kind="alert", hold_sms=True, now=night)
        is None
    )
