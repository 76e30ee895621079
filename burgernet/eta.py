"""How long until an alert has reached its people: the expected time to 50, 90 and 100 % handled.

Two halves:

* :func:`estimate` is pure: frozen inputs in (:class:`EstimateInputs`), an :class:`Estimate`
  out. Per channel it plays the queue forward as the workers work it:

  - every channel is paced by its shared rate (``sms_per_second``, ``email_per_second``,
    ``push.pushes_per_second``, ``voice_calls_per_second`` for call set-up);
  - voice is bounded by the trunk channels alert calls may hold at once (the trunk minus
    ``inbound_reserved_channels``, on every alert node together): a channel is held from the
    dial until the hang-up, so call *i* starts when both its rate slot and a channel are free
    (``start_i = max(i / rate, ⌊i / K⌋ · hold + (i mod K) / rate)``);
  - a delivery is *handled* when it reaches a final status: for an answered call the answer
    (the talk goes on after it, holding the channel), for a text or e-mail the provider's
    acceptance;
  - calls nobody answers are tried again as the ``no_answer`` outcome policy says (its calls
    and the wait before each, :mod:`burgernet.alert_policies`, the panel's values over the
    settings'); their retries join the back of the queue, as the worker's delayed set puts them;
  - deliveries of other broadcasts already queued at the same or a higher priority go first;
  - a channel held by the night rules (:mod:`burgernet.night_rules`) starts when the quiet
    window ends.

  The broadcast's own 50/90/100 % count all its deliveries together, as the live progress
  does: the estimate merges the channels' curves.

* :func:`gather_inputs` / :func:`estimate_for_action` read the inputs from the database and the
  settings: the configured rates and trunk, what is queued ahead, and what past broadcasts
  measured — the share of alert calls answered (``action_channel_facts``) and how long a call
  rings before it is answered, a call nobody answers, or a provider takes to accept a text
  (the last finished deliveries). Without measurements, the defaults below.

The core only: no adapter is imported (``.importlinter``); the recipients of a draft are counted
here with the same area rule as the fan-out (a coarse box in SQL, the exact test in NumPy).
"""

from __future__ import annotations

import heapq
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import shapely
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from burgernet.alert_policy_records import current_policies
from burgernet.areas import stored_area
from burgernet.domain import ActionType, Channel
from burgernet.models import (
    Action,
    ActionChannelFact,
    Broadcast,
    Delivery,
    Participant,
    urgency_implied_by,
)
from burgernet.night_rules import hold_for
from burgernet.push_subscriptions import select_for_area
from burgernet.settings import Settings
from routing import Area, CircleArea, NationalArea, PolygonArea, PostcodeArea
from routing.areas import EARTH_RADIUS_M

MILESTONES = (50, 90, 100)
# Defaults when nothing was measured yet (seconds, shares).
DEFAULT_ANSWER_SHARE = 0.6  # of alert call attempts answered
DEFAULT_RING_TO_ANSWER_SECONDS = 8.0
DEFAULT_TALK_SECONDS = 35.0  # the message, the menu after it, the hang-up
DEFAULT_SEND_SECONDS = {Channel.SMS: 0.3, Channel.EMAIL: 0.5, Channel.PUSH: 0.2}
# The fan-out before the first send: selecting recipients and writing their deliveries.
FAN_OUT_BASE_SECONDS = 0.3
FAN_OUT_SECONDS_PER_DELIVERY = 50e-6
# Measurements from the last this-many finished deliveries of a channel, and the last this-many
# actions' voice figures.
MEASURE_DELIVERIES = 500
MEASURE_ACTIONS = 50
# The simulation follows at most this many steps per channel: a national alert of a million
# deliveries is played in steps of many deliveries each (the rate and trunk scale with them).
MAX_STEPS = 4000
# Same order as broadcasting.store: AMBER 0, urgent 1, information 2; a result one lower.
PRIORITY_OF_URGENCY = {"amber": 0, "urgent": 1, "information": 2}


# --- inputs ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChannelInputs:
    """One channel of one broadcast: how many, what is ahead, and how the channel behaves."""

    channel: str  # voice | sms | email | push
    recipients: int
    per_second: float  # the shared rate (for voice: call set-ups per second)
    queued_ahead: int = 0  # other broadcasts' deliveries queued or sending at the same or higher priority
    # Voice only: trunk channels alert calls may hold at once; None for the other channels.
    concurrent: int | None = None
    # Seconds from the hand-over to the provider until the attempt is final.
    send_seconds: float = 0.3
    # Voice: the share of attempts answered, ring time until the answer, talk after it, and
    # how long an unanswered attempt rings (its channel is held that long).
    answer_share: float = 1.0
    ring_to_answer_seconds: float = 0.0
    talk_seconds: float = 0.0
    unanswered_seconds: float = 0.0
    held_seconds: float = 0.0  # the night rules hold this channel this long from now
    measured: bool = False  # answer share / times come from past broadcasts


@dataclass(frozen=True)
class EstimateInputs:
    channels: tuple[ChannelInputs, ...]
    # Calls nobody answers: how many calls a person gets at most, and the wait after call 1,
    # 2, … (the last wait repeats): the no_answer policy's (see gather_inputs).
    max_attempts: int = 3
    retry_waits: tuple[float, ...] = (30.0, 60.0)
    fan_out_seconds: float = FAN_OUT_BASE_SECONDS
    now: datetime = field(default_factory=lambda: datetime.now(UTC))


# --- output ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChannelEstimate:
    channel: str
    recipients: int
    queued_ahead: int
    # Seconds from the start (the request) until 50/90/100 % of this channel's deliveries are
    # final; None when the channel has no recipients.
    seconds_to: Mapping[int, float | None]
    throughput_per_second: float  # deliveries per second once the channel is going
    held_until: datetime | None
    basis: str  # in words: what bounds it (rate, trunk, calls answered), what was measured


@dataclass(frozen=True)
class Estimate:
    """Per channel and for the whole broadcast (all channels together, as the progress counts)."""

    channels: tuple[ChannelEstimate, ...]
    seconds_to: Mapping[int, float | None]
    recipients: int
    made_at: datetime

    def channel(self, name: str) -> ChannelEstimate | None:
        return next((c for c in self.channels if c.channel == name), None)

    @property
    def longest_seconds(self) -> float | None:
        """The time to 100 % (the figure an approval request shows)."""
        return self.seconds_to.get(100)

    def as_dict(self) -> dict[str, object]:
        def times(seconds: Mapping[int, float | None]) -> dict[str, float | None]:
            return {f"{pct}%": (round(s, 1) if s is not None else None) for pct, s in seconds.items()}

        return {
            "made_at": self.made_at.isoformat(),
            "recipients": self.recipients,
            "seconds_to": times(self.seconds_to),
            "channels": [
                {
                    **{k: v for k, v in asdict(c).items() if k not in ("seconds_to", "held_until")},
                    "seconds_to": times(c.seconds_to),
                    "held_until": c.held_until.isoformat() if c.held_until else None,
                    "throughput_per_second": round(c.throughput_per_second, 2),
                }
                for c in self.channels
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), separators=(",", ":"))


def estimate_from_json(text: str | None) -> dict[str, object] | None:
    """A stored estimate (``broadcasts.estimate``) as the dict :meth:`Estimate.as_dict` wrote."""
    if not text:
        return None
    try:
        found = json.loads(text)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


# --- the pure model ---------------------------------------------------------------------------
def _hold_seconds(c: ChannelInputs) -> float:
    """Mean time a voice attempt holds its trunk channel."""
    answered = c.ring_to_answer_seconds + c.talk_seconds
    return c.answer_share * answered + (1 - c.answer_share) * c.unanswered_seconds


def throughput(c: ChannelInputs) -> float:
    """Attempts per second once the channel is going: the rate, or the trunk if it binds."""
    if c.concurrent is None:
        return c.per_second
    hold = _hold_seconds(c)
    return min(c.per_second, c.concurrent / hold) if hold > 0 else c.per_second


def _start_after(position: float, rate: float, slots: float | None, hold: float) -> float:
    """When the attempt at ``position`` (0-based, in attempts since the channel went idle) may
    start: its rate slot, and for voice a free channel (waves of ``slots`` calls)."""
    by_rate = position / rate
    if slots is None or hold <= 0:
        return by_rate
    wave = math.floor(position / slots)
    return max(by_rate, wave * hold + (position - wave * slots) / rate)


@dataclass(order=True)
class _Batch:
    ready: float
    order: int
    weight: float = field(compare=False)
    attempt: int = field(compare=False)
    counted: bool = field(compare=False)  # ours (True) or a delivery queued ahead (False)


def _channel_curve(
    c: ChannelInputs, max_attempts: int, retry_waits: Sequence[float], offset: float
) -> list[tuple[float, float]]:
    """(seconds from the start, deliveries of ours that became final then), in time order."""
    total = c.recipients + c.queued_ahead
    if c.recipients <= 0:
        return []
    # One simulated step stands for `scale` deliveries; the rate and the trunk shrink with it.
    scale = max(1.0, total / MAX_STEPS)
    rate = c.per_second / scale
    slots = None if c.concurrent is None else c.concurrent / scale
    hold = _hold_seconds(c) if c.concurrent is not None else 0.0
    is_voice = c.concurrent is not None
    answer = min(1.0, max(0.0, c.answer_share)) if is_voice else 1.0
    final_ok = c.ring_to_answer_seconds if is_voice else c.send_seconds
    final_no = c.unanswered_seconds
    queue: list[_Batch] = []
    order = 0
    if c.queued_ahead:
        queue.append(_Batch(0.0, order, c.queued_ahead / scale, 1, False))
        order += 1
    queue.append(_Batch(0.0, order, c.recipients / scale, 1, True))
    order += 1
    finals: list[tuple[float, float]] = []
    base, position = 0.0, 0.0  # the channel's clock restarts when it went idle
    while queue:
        batch = heapq.heappop(queue)
        if batch.ready > base + _start_after(position, rate, slots, hold):
            base, position = batch.ready, 0.0  # idle until this batch: every channel free again
        remaining = batch.weight
        while remaining > 1e-9:
            step = min(1.0, remaining)
            start = offset + base + _start_after(position, rate, slots, hold)
            position += step
            remaining -= step
            if not batch.counted:
                continue
            finals.append((start + final_ok, step * scale * answer))
            missed = step * (1 - answer)
            if missed <= 1e-12:
                continue
            if batch.attempt >= max_attempts:
                finals.append((start + final_no, missed * scale))
            else:
                wait = retry_waits[min(batch.attempt, len(retry_waits)) - 1] if retry_waits else 0.0
                ready = start - offset + final_no + wait
                heapq.heappush(queue, _Batch(ready, order, missed, batch.attempt + 1, True))
                order += 1
    finals.sort()
    return finals


def _milestones(finals: Sequence[tuple[float, float]], total: float) -> dict[int, float | None]:
    found: dict[int, float | None] = dict.fromkeys(MILESTONES)
    if total <= 0 or not finals:
        return found
    done = 0.0
    pending = list(MILESTONES)
    for moment, weight in finals:
        done += weight
        while pending and done + 1e-6 >= total * pending[0] / 100:
            found[pending.pop(0)] = moment
    for pct in pending:  # rounding left the last sliver: it is the last moment
        found[pct] = finals[-1][0]
    return found


def _basis(c: ChannelInputs) -> str:
    if c.concurrent is None:
        return f"{c.per_second:g}/s rate"
    hold = _hold_seconds(c)
    bound = "trunk" if hold > 0 and c.concurrent / hold < c.per_second else "call rate"
    source = "measured" if c.measured else "assumed"
    return (
        f"{c.concurrent} trunk channels, {c.per_second:g} calls/s, {bound}-bound; "
        f"{c.answer_share:.0%} of calls answered after {c.ring_to_answer_seconds:.1f} s, "
        f"{c.talk_seconds:.0f} s talk ({source})"
    )


def estimate(inputs: EstimateInputs) -> Estimate:
    """The expected time to 50/90/100 % handled, per channel and for the whole broadcast."""
    channels: list[ChannelEstimate] = []
    everything: list[tuple[float, float]] = []
    for c in inputs.channels:
        offset = max(inputs.fan_out_seconds, c.held_seconds)
        finals = _channel_curve(c, max(1, inputs.max_attempts), inputs.retry_waits, offset)
        everything += finals
        held_until = inputs.now + timedelta(seconds=c.held_seconds) if c.held_seconds > 0 else None
        channels.append(
            ChannelEstimate(
                channel=c.channel,
                recipients=c.recipients,
                queued_ahead=c.queued_ahead,
                seconds_to=_milestones(finals, c.recipients),
                throughput_per_second=throughput(c),
                held_until=held_until,
                basis=_basis(c),
            )
        )
    everything.sort()
    recipients = sum(c.recipients for c in inputs.channels)
    return Estimate(tuple(channels), _milestones(everything, recipients), recipients, inputs.now)


# --- gathering the inputs ----------------------------------------------------------------------
def priority_of(action_type: str, urgency: str | None, kind: str = "alert") -> int:
    """The queue priority a broadcast of this action gets (as ``broadcasting.store``)."""
    level = PRIORITY_OF_URGENCY.get(urgency or urgency_implied_by(ActionType(action_type).value), 2)
    return min(level + 1, 2) if kind == "result" else level


def queued_ahead(session: Session, priority: int, exclude_broadcast: int | None = None) -> dict[str, int]:
    """Deliveries of other broadcasts still queued or sending at ``priority`` or above, per
    channel (those held by the night rules until later do not count: they are not ahead)."""
    now = datetime.now(UTC)
    query = (
        select(Delivery.channel, func.count())
        .join(Broadcast, Broadcast.id == Delivery.broadcast_id)
        .where(
            Broadcast.status.in_(("pending", "running")),
            Broadcast.priority <= priority,
            Delivery.status.in_(("queued", "sending")),
            (Delivery.not_before.is_(None)) | (Delivery.not_before <= now),
        )
        .group_by(Delivery.channel)
    )
    if exclude_broadcast is not None:
        query = query.where(Broadcast.id != exclude_broadcast)
    return {channel: int(number) for channel, number in session.execute(query)}


@dataclass(frozen=True)
class Measured:
    """What past broadcasts showed; None where nothing was measured."""

    answer_share: float | None = None
    ring_to_answer_seconds: float | None = None
    unanswered_seconds: float | None = None
    send_seconds: Mapping[str, float] = field(default_factory=dict)


def _seconds_between(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    if later.tzinfo is None:
        later = later.replace(tzinfo=UTC)
    if earlier.tzinfo is None:
        earlier = earlier.replace(tzinfo=UTC)
    return max(0.0, (later - earlier).total_seconds())


def measure(session: Session, max_attempts: int) -> Measured:
    """Answer share of alert calls (from ``action_channel_facts``: reached after every attempt,
    up to ``max_attempts`` calls a person, turned into a share per attempt) and the times of
    the last finished deliveries."""
    rows = session.execute(
        select(ActionChannelFact.recipients, ActionChannelFact.delivered)
        .where(ActionChannelFact.channel == Channel.VOICE.value, ActionChannelFact.kind == "alert")
        .where(ActionChannelFact.recipients > 0)
        .order_by(ActionChannelFact.updated_at.desc())
        .limit(MEASURE_ACTIONS)
    ).all()
    answer_share = None
    recipients = sum(r for r, _ in rows)
    if recipients:
        reached = min(0.999, sum(d for _, d in rows) / recipients)
        # Reached after up to max_attempts tries: 1 - (1 - a)^m = reached.
        answer_share = max(0.05, 1 - (1 - reached) ** (1 / max(1, max_attempts)))
    times: dict[str, dict[str, list[float]]] = {}
    for channel in Channel:
        for status, sending_at, finished_at in session.execute(
            select(Delivery.status, Delivery.sending_at, Delivery.finished_at)
            .where(
                Delivery.channel == channel.value,
                Delivery.finished_at.is_not(None),
                Delivery.sending_at.is_not(None),
            )
            .order_by(Delivery.id.desc())
            .limit(MEASURE_DELIVERIES)
        ):
            seconds = _seconds_between(finished_at, sending_at)
            if seconds is not None:
                times.setdefault(channel.value, {}).setdefault(status, []).append(seconds)
    voice = times.get(Channel.VOICE.value, {})
    answered = voice.get("answered", []) + voice.get("machine", [])
    unanswered = voice.get("no_answer", []) + voice.get("busy", [])
    send_seconds = {
        channel: float(np.median(found))
        for channel, by_status in times.items()
        if channel != Channel.VOICE.value
        and (found := by_status.get("sent", []) + by_status.get("delivered", []))
    }
    return Measured(
        answer_share=answer_share,
        ring_to_answer_seconds=float(np.median(answered)) if answered else None,
        unanswered_seconds=float(np.median(unanswered)) if unanswered else None,
        send_seconds=send_seconds,
    )


def _rate_of(settings: Settings, channel: Channel) -> float:
    b = settings.broadcast
    return {
        Channel.VOICE: b.voice_calls_per_second,
        Channel.SMS: b.sms_per_second,
        Channel.EMAIL: b.email_per_second,
        Channel.PUSH: settings.push.pushes_per_second,
    }[channel]


def gather_inputs(
    session: Session,
    settings: Settings,
    *,
    recipients: Mapping[str, int],
    priority: int,
    held_until: Mapping[str, datetime] | None = None,
    exclude_broadcast: int | None = None,
    talk_seconds: float | None = None,
    now: datetime | None = None,
) -> EstimateInputs:
    """The estimator's inputs for ``recipients`` per channel at ``priority``, from the settings,
    the queue and what was measured. ``held_until``: channels the night rules hold, until when."""
    now = now or datetime.now(UTC)
    b = settings.broadcast
    unanswered = current_policies(session, b).no_answer
    measured = measure(session, unanswered.attempts)
    ahead = queued_ahead(session, priority, exclude_broadcast)
    total = sum(recipients.values())
    channels: list[ChannelInputs] = []
    for name, count in recipients.items():
        channel = Channel(name)
        held = (held_until or {}).get(name)
        held_seconds = max(0.0, (held - now).total_seconds()) if held is not None else 0.0
        common = {
            "channel": name,
            "recipients": int(count),
            "per_second": _rate_of(settings, channel),
            "queued_ahead": ahead.get(name, 0),
            "held_seconds": held_seconds,
        }
        if channel is Channel.VOICE and b.voice_provider == "asterisk":
            channels.append(
                ChannelInputs(
                    **common,  # type: ignore[arg-type]
                    concurrent=settings.voice_channels(),
                    answer_share=measured.answer_share or DEFAULT_ANSWER_SHARE,
                    ring_to_answer_seconds=(
                        measured.ring_to_answer_seconds
                        if measured.ring_to_answer_seconds is not None
                        else DEFAULT_RING_TO_ANSWER_SECONDS
                    ),
                    talk_seconds=talk_seconds if talk_seconds is not None else DEFAULT_TALK_SECONDS,
                    unanswered_seconds=(
                        measured.unanswered_seconds
                        if measured.unanswered_seconds is not None
                        else float(b.voice_ring_seconds)
                    ),
                    measured=measured.answer_share is not None or measured.ring_to_answer_seconds is not None,
                )
            )
        elif channel is Channel.VOICE:  # Twilio Voice: its own capacity; the call rate paces it
            channels.append(
                ChannelInputs(
                    **common,  # type: ignore[arg-type]
                    send_seconds=measured.send_seconds.get(name, DEFAULT_RING_TO_ANSWER_SECONDS),
                )
            )
        else:
            channels.append(
                ChannelInputs(
                    **common,  # type: ignore[arg-type]
                    send_seconds=measured.send_seconds.get(name, DEFAULT_SEND_SECONDS.get(channel, 0.3)),
                    measured=name in measured.send_seconds,
                )
            )
    return EstimateInputs(
        channels=tuple(channels),
        max_attempts=unanswered.attempts,
        retry_waits=tuple(unanswered.wait_after(call) for call in range(1, unanswered.attempts)),
        fan_out_seconds=FAN_OUT_BASE_SECONDS + FAN_OUT_SECONDS_PER_DELIVERY * total,
        now=now,
    )


# --- recipients of an action not yet fanned out -------------------------------------------------
def _box_filter(area: Area) -> list[object]:
    if isinstance(area, CircleArea):
        dlat = math.degrees(area.radius_m / EARTH_RADIUS_M) * 1.001 + 1e-7
        coslat = max(0.01, math.cos(math.radians(area.centre.lat)))
        dlon = dlat / coslat
        return [
            Participant.lat.between(area.centre.lat - dlat, area.centre.lat + dlat),
            Participant.lon.between(area.centre.lon - dlon, area.centre.lon + dlon),
        ]
    if isinstance(area, PolygonArea):
        lon_min, lat_min, lon_max, lat_max = shapely.bounds(area.geometry)
        return [Participant.lat.between(lat_min, lat_max), Participant.lon.between(lon_min, lon_max)]
    if isinstance(area, PostcodeArea):
        return [func.substr(Participant.postcode, 1, 4).in_(sorted(area.postcodes))]
    return []


def _inside(area: Area, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    if isinstance(area, CircleArea):
        phi1, phi2 = math.radians(area.centre.lat), np.radians(lat)
        dlmb = np.radians(lon - area.centre.lon)
        h = np.sin((phi2 - phi1) / 2) ** 2 + math.cos(phi1) * np.cos(phi2) * np.sin(dlmb / 2) ** 2
        return np.asarray(2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(h))) <= area.radius_m)
    if isinstance(area, PolygonArea):
        shapely.prepare(area.geometry)
        return np.asarray(shapely.intersects_xy(area.geometry, lon, lat))
    return np.ones(len(lat), dtype=bool)


def count_recipients(session: Session, area: Area, channels: Sequence[str]) -> dict[str, int]:
    """People inside ``area`` per channel they chose (not opted out), and push subscriptions —
    the counts the fan-out would make, for an action not fanned out yet."""
    wanted = set(channels)
    counts: dict[str, int] = {}
    person_channels = [c for c in (Channel.VOICE, Channel.SMS, Channel.EMAIL) if c.value in wanted]
    flag = {
        Channel.VOICE: Participant.channel_voice,
        Channel.SMS: Participant.channel_sms,
        Channel.EMAIL: Participant.channel_email,
    }
    if person_channels and isinstance(area, NationalArea | PostcodeArea):
        # No exact test to make: the database counts (a national alert reads millions of rows).
        sums = session.execute(
            select(*(func.count().filter(flag[c].is_(True)) for c in person_channels)).where(
                Participant.opted_out.is_(False),
                *_box_filter(area),  # type: ignore[arg-type]
            )
        ).one()
        counts.update({c.value: int(n) for c, n in zip(person_channels, sums, strict=True) if n})
    elif person_channels:
        rows = session.execute(
            select(
                Participant.lat,
                Participant.lon,
                Participant.channel_voice,
                Participant.channel_sms,
                Participant.channel_email,
            ).where(Participant.opted_out.is_(False), *_box_filter(area))  # type: ignore[arg-type]
        ).all()
        if rows:
            table = np.array(rows, dtype=float)
            inside = _inside(area, table[:, 0], table[:, 1])
            column = {Channel.VOICE: 2, Channel.SMS: 3, Channel.EMAIL: 4}
            for channel in person_channels:
                number = int(np.count_nonzero(inside & (table[:, column[channel]] > 0)))
                if number:
                    counts[channel.value] = number
    if Channel.PUSH.value in wanted:
        number = len(select_for_area(session, area))
        if number:
            counts[Channel.PUSH.value] = number
    return counts


def _recipients_of(session: Session, action: Action) -> dict[str, int]:
    """The action's alert recipients per channel: its deliveries once fanned out, else counted."""
    alert = session.scalar(
        select(Broadcast.id)
        .where(Broadcast.action_id == action.id, Broadcast.kind == "alert", Broadcast.total > 0)
        .order_by(Broadcast.id)
        .limit(1)
    )
    if alert is not None:
        return {
            channel: int(number)
            for channel, number in session.execute(
                select(Delivery.channel, func.count())
                .where(Delivery.broadcast_id == alert)
                .group_by(Delivery.channel)
            )
        }
    return count_recipients(session, stored_area(action), action.channels.split(","))


def estimate_for_action(
    session: Session,
    action_id: int,
    settings: Settings,
    *,
    recipients: Mapping[str, int] | None = None,
    now: datetime | None = None,
) -> Estimate | None:
    """The ETA of an action's alert if it were started ``now`` (default: now); None when there
    is no such action.

    Recipients per channel: ``recipients`` when the caller counted them already (the panel's
    preview does), else the alert's deliveries when it was fanned out, else counted from the
    action's area and channels. The night rules apply as they would at ``now``: a held channel
    starts when the quiet window ends (``ChannelEstimate.held_until``). The figure for an
    approval request is ``Estimate.seconds_to[100]`` (``longest_seconds``).

    Stable signature (other features call it): ``estimate_for_action(session, action_id,
    settings)`` with the keyword-only extras above.
    """
    now = now or datetime.now(UTC)
    action = session.get(Action, action_id)
    if action is None:
        return None
    counted = dict(recipients) if recipients is not None else _recipients_of(session, action)
    chosen = set(action.channels.split(","))
    counted = {channel: n for channel, n in counted.items() if channel in chosen and n > 0}
    return estimate(
        gather_inputs(
            session,
            settings,
            recipients=counted,
            priority=priority_of(action.action_type, action.urgency),
            held_until=night_hold(settings, action.action_type, action.urgency, "alert", now, counted),
            now=now,
        )
    )


def night_hold(
    settings: Settings,
    action_type: str,
    urgency: str | None,
    kind: str,
    now: datetime,
    channels: Mapping[str, int] | Sequence[str],
) -> dict[str, datetime]:
    """Channels the night rules hold for a broadcast starting ``now``, and until when.

    (Participants who opted in to night alerts are not held; the estimate treats the channel
    as held for everyone, which is what most of them are.)"""
    hold = hold_for(
        settings.broadcast.quiet_window(),
        action_type=action_type,
        urgency=urgency,
        kind=kind,
        hold_sms=settings.broadcast.quiet_hold_sms,
        now=now,
        channels=[Channel(c) for c in channels],
    )
    if hold is None:
        return {}
    return {channel.value: hold.until for channel in hold.channels}


__all__ = [
    "ChannelEstimate",
    "ChannelInputs",
    "Estimate",
    "EstimateInputs",
    "Measured",
    "count_recipients",
    "estimate",
    "estimate_for_action",
    "estimate_from_json",
    "gather_inputs",
    "measure",
    "night_hold",
    "priority_of",
    "queued_ahead",
    "throughput",
]
