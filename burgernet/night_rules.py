"""Night rules: a quiet window in which alerts that are not urgent wait for the morning.

A control room may set ``broadcast.quiet_hours = "23:00-07:00"`` (local time,
``broadcast.quiet_timezone``, Europe/Amsterdam by default; empty: no quiet window). Inside it:

* **voice** alerts of an action whose urgency is *information* are held until the window ends,
  and so are its **SMS** when ``broadcast.quiet_hold_sms`` is on;
* **e-mail** and **push** are never held: they do not wake anyone;
* an **AMBER Alert** or a **missing child** always goes at once, whatever its urgency, and so does
  any action that is amber or urgent;
* a participant who opted in to night alerts (``participants.night_alerts``) is never held.

Held deliveries are queued with ``deliveries.not_before`` = the window's end; the worker keeps
them in the delayed set until then (see ``broadcasting.worker``). This module is pure: it
parses the window and says who waits and until when.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from burgernet.domain import ActionType, Channel

# Channels that may wait (SMS only when asked for): they ring or buzz a phone at night.
HOLDABLE_CHANNELS = frozenset({Channel.VOICE, Channel.SMS})
# Types that always go at once, whatever the urgency an operator chose.
NEVER_HELD_TYPES = frozenset({ActionType.AMBER_ALERT.value, ActionType.MISSING_CHILD.value})
# Only this urgency may wait; amber and urgent never do.
HOLDABLE_URGENCY = "information"
# An action's alert, its updates and its result message may wait (they all ring a phone);
# a reply to a sighting is a push and never waits.
HOLDABLE_KINDS = frozenset({"alert", "update", "result"})

# HH:MM-HH:MM; seconds may be given too (HH:MM:SS), which only tests need.
_CLOCK = r"([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?"
_WINDOW = re.compile(rf"^\s*{_CLOCK}\s*-\s*{_CLOCK}\s*$")


class InvalidQuietHours(ValueError):
    """The quiet window is not "HH:MM-HH:MM"."""


@dataclass(frozen=True)
class QuietWindow:
    """A daily window in local time; ``start > end`` runs past midnight (23:00-07:00)."""

    start: time
    end: time
    zone: str = "Europe/Amsterdam"

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise InvalidQuietHours("the quiet window starts and ends at the same time")
        try:
            ZoneInfo(self.zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidQuietHours(f"unknown time zone {self.zone!r}") from exc

    @property
    def text(self) -> str:
        def clock(moment: time) -> str:
            return f"{moment:%H:%M:%S}" if moment.second else f"{moment:%H:%M}"

        return f"{clock(self.start)}-{clock(self.end)}"

    def end_after(self, now: datetime) -> datetime | None:
        """When the window ends, as UTC, if ``now`` lies inside it; None outside it."""
        zone = ZoneInfo(self.zone)
        local = now.astimezone(zone)
        clock = local.time().replace(tzinfo=None)
        if self.start < self.end:
            inside = self.start <= clock < self.end
            end_day = local.date()
        else:
            inside = clock >= self.start or clock < self.end
            end_day = local.date() + timedelta(days=1) if clock >= self.start else local.date()
        if not inside:
            return None
        # Built as a local wall-clock time: a DST change in the night moves the UTC moment.
        end_local = datetime.combine(end_day, self.end, tzinfo=zone)
        return end_local.astimezone(UTC)


def parse_quiet_hours(text: str, zone: str = "Europe/Amsterdam") -> QuietWindow | None:
    """``"23:00-07:00"`` → a window; empty → None (no quiet hours). InvalidQuietHours otherwise."""
    if not text or not text.strip():
        return None
    match = _WINDOW.match(text)
    if match is None:
        raise InvalidQuietHours(f'quiet hours must look like "23:00-07:00", not {text!r}')
    h1, m1, s1, h2, m2, s2 = (int(part or 0) for part in match.groups())
    return QuietWindow(time(h1, m1, s1), time(h2, m2, s2), zone)


def may_be_held(action_type: str, urgency: str | None, kind: str) -> bool:
    """Whether an action's broadcast may wait at all (before looking at the clock)."""
    if action_type in NEVER_HELD_TYPES or kind not in HOLDABLE_KINDS:
        return False
    return (urgency or HOLDABLE_URGENCY) == HOLDABLE_URGENCY


def held_channels(hold_sms: bool) -> frozenset[Channel]:
    return HOLDABLE_CHANNELS if hold_sms else frozenset({Channel.VOICE})


@dataclass(frozen=True)
class Hold:
    """What of one broadcast waits: these channels, until ``until`` (UTC), except the opted-in."""

    channels: frozenset[Channel]
    until: datetime

    def applies_to(self, channel: Channel) -> bool:
        return channel in self.channels


def hold_for(
    window: QuietWindow | None,
    *,
    action_type: str,
    urgency: str | None,
    kind: str,
    hold_sms: bool,
    now: datetime,
    channels: Iterable[Channel] | None = None,
) -> Hold | None:
    """The hold on a broadcast starting ``now``, or None when everything goes at once."""
    if window is None or not may_be_held(action_type, urgency, kind):
        return None
    until = window.end_after(now)
    if until is None:
        return None
    held = held_channels(hold_sms)
    if channels is not None:
        held = held & frozenset(channels)
    if not held:
        return None
    return Hold(frozenset(held), until)


__all__ = [
    "HOLDABLE_CHANNELS",
    "NEVER_HELD_TYPES",
    "Hold",
    "InvalidQuietHours",
    "QuietWindow",
    "held_channels",
    "hold_for",
    "may_be_held",
    "parse_quiet_hours",
]
