"""Demo history: a year of closed actions with their lasting figures and calls, so the Reports
page of a fresh ``./scripts/run`` shows true-looking charts from the first start.

What is written is what the running system would have left after retention: closed actions
with an outcome kind, their ``action_facts`` and ``action_channel_facts`` (reach, delivery
speed, calls, tips), the action teams, and the calls table without any caller number or
recording. No participant, delivery or tip row: the history holds no personal data.

The outcome distribution follows Burgernet's public figures: about 10 % of actions solved
through a Burgernet tip, 14 % of those about missing persons. Numbers are scaled down from the
product brief's ~4,000 actions a month nationally (``per_month``; 60 by default keeps the
start-up fast: ~720 actions and ~10,000 calls in about a second on SQLite).

Idempotent: history actions are marked ``created_by = "demo-history"``; when any exists,
nothing is added.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from burgernet import call_hours
from burgernet.domain import ActionType, OutcomeKind
from burgernet.models import Action, ActionCentralist, ActionChannelFact, ActionFact, Call, Centralist, Region
from burgernet.reports import MISSING_TYPES

HISTORY_MARK = "demo-history"
DEFAULT_MONTHS = 12
# What ./scripts/run seeds at its first start (a second or so), and what
# `burgernet demo seed --history N` seeds unless --history-per-month says otherwise: the
# national volume of the product brief (a year: ~48,000 actions, ~1.4 million calls, minutes).
DEFAULT_PER_MONTH = 60
NATIONAL_PER_MONTH = 4000

# Share of the actions per type, and of the calls per region (roughly by population).
_TYPE_WEIGHTS = {
    ActionType.MISSING_PERSON.value: 0.30,
    ActionType.MISSING_CHILD.value: 0.15,
    ActionType.AMBER_ALERT.value: 0.01,
    ActionType.SUSPECT.value: 0.25,
    ActionType.VEHICLE.value: 0.20,
    ActionType.INFORMATION.value: 0.09,
}
_REGION_WEIGHTS = {
    "NN": 0.10,
    "ON": 0.13,
    "MN": 0.12,
    "NH": 0.11,
    "AM": 0.10,
    "DH": 0.11,
    "RO": 0.12,
    "ZWB": 0.07,
    "OB": 0.09,
    "LB": 0.05,
}
# Outcome kinds: missing persons are solved through a tip in 14 % of the closed actions, the
# others in 7 %; with ~46 % missing-person actions that makes the public ~10 % overall.
_OUTCOMES_MISSING = {
    OutcomeKind.SOLVED_BY_TIP.value: 0.14,
    OutcomeKind.FOUND_OTHERWISE.value: 0.70,
    OutcomeKind.NOT_FOUND.value: 0.06,
    OutcomeKind.CANCELLED.value: 0.08,
    OutcomeKind.OTHER.value: 0.02,
}
_OUTCOMES_OTHER = {
    OutcomeKind.SOLVED_BY_TIP.value: 0.07,
    OutcomeKind.FOUND_OTHERWISE.value: 0.28,
    OutcomeKind.NOT_FOUND.value: 0.50,
    OutcomeKind.CANCELLED.value: 0.10,
    OutcomeKind.OTHER.value: 0.05,
}
_TITLES = {
    "missing_person": "Vermiste man, 78 jaar, dementerend",
    "missing_child": "Vermist kind, 9 jaar, blauwe jas",
    "amber_alert": "AMBER Alert: ontvoerd meisje",
    "suspect": "Verdachte na woninginbraak",
    "vehicle": "Gestolen auto na overval",
    "information": "Getuigen gezocht",
}
# Channels of an alert: (typical recipients, delivered share, median seconds to 50/90/100 %).
_CHANNELS = {
    "voice": (350.0, 0.86, (18.0, 55.0, 140.0)),
    "sms": (800.0, 0.97, (3.0, 9.0, 30.0)),
    "email": (300.0, 0.95, (6.0, 16.0, 45.0)),
}
# Inbound call outcomes for calls about an action, and their shares.
_CALL_OUTCOMES = {
    "connected": 0.70,
    "overflowed": 0.08,
    "tip_left": 0.10,
    "abandoned": 0.09,
    "failed": 0.02,
    "unobserved": 0.01,
}
# Hour-of-day profile of the calls (Europe/Amsterdam hours, roughly; busiest in the evening).
_HOUR_PROFILE = np.array(
    [
        1,
        0.6,
        0.4,
        0.3,
        0.3,
        0.5,
        1.2,
        2.2,
        3.0,
        3.4,
        3.6,
        3.8,
        3.9,
        3.8,
        3.7,
        3.8,
        4.2,
        4.8,
        5.2,
        5.0,
        4.4,
        3.4,
        2.4,
        1.6,
    ]
)


@dataclass(frozen=True)
class HistorySeeded:
    actions: int
    calls: int


def _choice(rng: np.random.Generator, weights: dict[str, float]) -> str:
    keys = list(weights)
    p = np.array([weights[k] for k in keys], dtype=float)
    return str(keys[int(rng.choice(len(keys), p=p / p.sum()))])


def _moment(rng: np.random.Generator, first_day: datetime, days: int) -> datetime:
    """A moment on one of ``days`` days from ``first_day`` (UTC midnight), at an hour drawn
    from the profile (Amsterdam is UTC+1 or +2: the hour is shifted back by one)."""
    hour = int(rng.choice(24, p=_HOUR_PROFILE / _HOUR_PROFILE.sum()))
    day = int(rng.integers(0, max(1, days)))
    return first_day + timedelta(days=day, hours=hour - 1, minutes=float(rng.uniform(0, 60)))


def history_present(session: Session) -> bool:
    return bool(
        session.scalar(select(func.count()).select_from(Action).where(Action.created_by == HISTORY_MARK))
    )


def seed_history(
    session: Session,
    rng: np.random.Generator,
    *,
    months: int = DEFAULT_MONTHS,
    per_month: int = DEFAULT_PER_MONTH,
    now: datetime | None = None,
) -> HistorySeeded:
    """``months`` of closed actions before ``now`` (about ``per_month`` a month, nationally),
    with their facts and calls; nothing when a history is present or ``months`` is 0."""
    if months <= 0 or per_month <= 0 or history_present(session):
        return HistorySeeded(0, 0)
    now = now or datetime.now(UTC)
    # In code order: the same seed gives the same history on SQLite and PostgreSQL.
    regions = {
        code: rid for code, rid in session.execute(select(Region.code, Region.id).order_by(Region.code))
    }
    if not regions:
        raise RuntimeError("no regions: seed the regions first")
    centralists: dict[str, list[int]] = {}
    for cid, code in session.execute(
        select(Centralist.id, Region.code)
        .join(Region, Region.id == Centralist.region_id)
        .order_by(Centralist.id)
    ):
        centralists.setdefault(str(code), []).append(int(cid))
    region_weights = {code: _REGION_WEIGHTS.get(code, 0.08) for code in regions}
    start = now - timedelta(days=round(months * 30.44))

    plans = []
    first_day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    for month in range(months):
        # A little seasonality: more actions in summer and around the holidays.
        month_start = first_day + timedelta(days=round(month * 30.44))
        season = 1.0 + 0.15 * math.sin(2 * math.pi * (month_start.month - 4) / 12)
        for _ in range(int(rng.poisson(per_month * season))):
            started = _moment(rng, month_start, 30)
            if started >= now - timedelta(hours=12):
                continue
            plans.append((started, _choice(rng, _TYPE_WEIGHTS), _choice(rng, region_weights)))
    plans.sort()

    action_rows = []
    for started, action_type, region in plans:
        outcome = _choice(rng, _OUTCOMES_MISSING if action_type in MISSING_TYPES else _OUTCOMES_OTHER)
        closed = min(started + timedelta(hours=float(rng.lognormal(1.2, 0.8))), now - timedelta(minutes=5))
        action_rows.append(
            {
                "action_type": action_type,
                "title": _TITLES[action_type],
                "description": "",
                "region_id": regions[region],
                "area_kind": "national" if action_type == "amber_alert" else "postcodes",
                "postcodes": None if action_type == "amber_alert" else "3511",
                "status": "closed",
                "created_at": started - timedelta(minutes=4),
                "started_at": started,
                "closed_at": closed,
                "outcome": "demo history",
                "outcome_kind": outcome,
                "result_message": "Dank voor uw hulp.",
                "created_by": HISTORY_MARK,
            }
        )
    if not action_rows:
        return HistorySeeded(0, 0)
    ids = list(
        session.scalars(insert(Action).returning(Action.id, sort_by_parameter_order=True), action_rows)
    )

    team_rows: list[dict[str, object]] = []
    fact_rows: list[dict[str, object]] = []
    channel_rows: list[dict[str, object]] = []
    call_rows: list[dict[str, object]] = []
    call_number = 0
    for action_id, row, (started, action_type, region) in zip(ids, action_rows, plans, strict=True):
        staff = centralists.get(region, [])
        team = [staff[i] for i in rng.permutation(len(staff))[: int(rng.integers(1, 3))]] if staff else []
        team_rows.extend(
            {"action_id": action_id, "centralist_id": cid, "position": n} for n, cid in enumerate(team)
        )
        scale = 12.0 if action_type == "amber_alert" else float(rng.lognormal(0.0, 0.5))
        delivered_total = 0
        first_alert = started + timedelta(seconds=float(rng.uniform(2, 8)))
        for channel, (typical, share, (t50, t90, t100)) in _CHANNELS.items():
            if channel == "email" and rng.random() < 0.3:
                continue
            recipients = max(1, int(typical * scale * rng.uniform(0.6, 1.4)))
            opted_out = int(recipients * rng.uniform(0.0, 0.01))
            delivered = int((recipients - opted_out) * min(0.995, share * rng.uniform(0.97, 1.03)))
            jitter = float(rng.lognormal(0.0, 0.35)) * (1 + 0.2 * math.log10(max(recipients, 10)) - 0.2)
            channel_rows.append(
                {
                    "action_id": action_id,
                    "channel": channel,
                    "kind": "alert",
                    "recipients": recipients,
                    "delivered": delivered,
                    "failed": recipients - opted_out - delivered,
                    "opted_out": opted_out,
                    "t50_s": round(t50 * jitter, 1),
                    "t90_s": round(t90 * jitter, 1),
                    "t100_s": round(t100 * jitter, 1),
                    "updated_at": row["closed_at"],
                }
            )
            delivered_total += delivered

        # Calls: about 15 per 1,000 reached, most in the first hours after the alert.
        counts = dict.fromkeys(_CALL_OUTCOMES, 0)
        waits: list[float] = []
        first_call: datetime | None = None
        for _ in range(int(rng.poisson(max(delivered_total, 1) * 0.015))):
            at = first_alert + timedelta(minutes=float(rng.exponential(50)))
            outcome = _choice(rng, _CALL_OUTCOMES)
            counts[outcome] += 1
            answered_by: int | None = None
            if outcome == "connected" and team:
                answered_by = team[0] if rng.random() < 0.8 or len(team) == 1 else team[1]
            elif outcome == "overflowed" and staff:
                others = [cid for cid in staff if cid not in team] or staff
                answered_by = others[int(rng.integers(len(others)))]
            wait = float(rng.gamma(2.0, 5.0))
            if answered_by is not None:
                waits.append(wait)
            first_call = at if first_call is None or at < first_call else first_call
            call_number += 1
            call_rows.append(
                {
                    "unique_id": f"{HISTORY_MARK}-{action_id}-{call_number}",
                    "kind": "inbound",
                    "action_id": action_id,
                    "centralist_id": answered_by,
                    "region_code": region,
                    "started_at": at,
                    "answered_at": at + timedelta(seconds=wait) if answered_by else None,
                    "ended_at": at + timedelta(seconds=wait + float(rng.uniform(30, 240))),
                    "outcome": outcome,
                    "route_reason": "demo history",
                }
            )
        calls = sum(counts.values())
        tips = counts["tip_left"]
        fact_rows.append(
            {
                "action_id": action_id,
                "action_type": action_type,
                "region_code": region,
                "urgency": "amber"
                if action_type == "amber_alert"
                else ("urgent" if action_type in MISSING_TYPES else "information"),
                "started_at": started,
                "closed_at": row["closed_at"],
                "outcome_kind": row["outcome_kind"],
                "first_alert_at": first_alert,
                "first_call_at": first_call,
                "calls_total": calls,
                "calls_connected": counts["connected"] + counts["overflowed"],
                "calls_tip_left": tips,
                "calls_abandoned": counts["abandoned"],
                "calls_failed": counts["failed"],
                "calls_no_action": 0,
                "calls_unobserved": counts["unobserved"],
                "calls_answered_within_20s": sum(1 for w in waits if w <= 20),
                "longest_wait_s": round(max(waits), 1) if waits else None,
                "tips": tips,
                "callbacks_done": int(rng.binomial(tips, 0.9)) if tips else 0,
                "sightings": int(rng.poisson(1.2)),
                "result_deliveries": delivered_total,
                "updated_at": row["closed_at"],
                # As after retention: the personal rows these were counted from are gone, so
                # the facts sweep keeps these figures rather than recount them from nothing.
                "sources_purged_at": row["closed_at"],
            }
        )

    # Calls that no action covered: a quarter as many again, spread over the year.
    for _ in range(len(call_rows) // 4):
        at = _moment(rng, first_day, (now - first_day).days - 1)
        region = _choice(rng, region_weights)
        staff = centralists.get(region, [])
        answered = bool(staff) and rng.random() < 0.3  # put through to the region's pool
        call_number += 1
        call_rows.append(
            {
                "unique_id": f"{HISTORY_MARK}-none-{call_number}",
                "kind": "inbound",
                "action_id": None,
                "centralist_id": staff[int(rng.integers(len(staff)))] if answered else None,
                "region_code": region,
                "started_at": at,
                "answered_at": at + timedelta(seconds=8) if answered else None,
                "ended_at": at + timedelta(seconds=float(rng.uniform(20, 120))),
                "outcome": "connected" if answered else "no_action",
                "route_reason": "demo history",
            }
        )

    if team_rows:
        session.execute(insert(ActionCentralist), team_rows)
    session.execute(insert(ActionFact), fact_rows)
    if channel_rows:
        session.execute(insert(ActionChannelFact), channel_rows)
    if call_rows:
        session.execute(insert(Call), call_rows)
    # The calls per hour the reports read (the worker's refresh would fill them within a minute).
    call_hours.refresh_in(session)
    return HistorySeeded(len(ids), len(call_rows))
