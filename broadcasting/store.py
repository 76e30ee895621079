"""Broadcasts and deliveries in the database: the durable record of who must get what.

The queue (Redis Streams) only carries delivery ids; the truth about each delivery lives here.
Every step is a conditional update, so that any number of workers — and a worker that died
halfway — can never send one delivery twice:

* ``claim`` moves a delivery ``queued → sending`` only if it is still queued (one winner);
* ``finish`` moves it out of ``sending`` only if it is still sending;
* a delivery found ``sending`` by another worker is *in doubt* and is reconciled with the
  provider, never blindly sent again.

Statuses: ``queued`` (waiting, also between retries) → ``sending`` → ``sent`` (accepted by the
provider; SMS may later become ``delivered`` / ``undelivered``), ``answered``, ``machine`` (a
message left on an answering machine), ``busy``, ``no_answer``, ``failed``; ``cancelled`` when
the action closed first. A voice delivery that did not reach its participant may be followed by
an SMS delivery (``fallback_of``), made in the transaction that records its outcome.

A broadcast belongs to an action (its alert, updates and result) or to a neighbourhood
inquiry (the e-mail with each resident's personal link, and follow-ups); both take the same
way through the queue, the rate limits, the retries and this record.

Longer than most modules on purpose: it is the one place that knows the conditional steps of
a delivery's life, and they only make sense read together.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np
from sqlalchemy import (
    Column,
    CursorResult,
    DateTime,
    Integer,
    MetaData,
    Table,
    and_,
    func,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from burgernet import night_rules, push_subscriptions
from burgernet.alert_policies import sms_capable
from burgernet.closing_word import CALLER_LANGUAGE
from burgernet.domain import ActionType, Channel, outcome_words
from burgernet.models import (
    Action,
    Broadcast,
    Delivery,
    Participant,
    PushSubscription,
    Region,
    urgency_implied_by,
)

# Where a delivery may end up; "sent" is final for e-mail and provisional for SMS.
FINAL_STATUSES = frozenset(
    {"sent", "delivered", "answered", "machine", "busy", "no_answer", "failed", "undelivered", "cancelled"}
)
# The participant got the message on this channel: they are told the result the same way.
REACHED_STATUSES = ("sent", "delivered", "answered", "machine")

PRIORITY_AMBER, PRIORITY_URGENT, PRIORITY_INFORMATION = 0, 1, 2

# Provider status callbacks may only move a delivery forward, never back.
_CALLBACK_MAY_REPLACE = {
    "sent": {"sending", "sent"},
    "delivered": {"sending", "sent"},
    "undelivered": {"sending", "sent"},
    "failed": {"sending", "sent"},
    "answered": {"sending", "sent"},
    "busy": {"sending", "sent"},
    "no_answer": {"sending", "sent"},
}


_PRIORITY_OF_URGENCY = {
    "amber": PRIORITY_AMBER,
    "urgent": PRIORITY_URGENT,
    "information": PRIORITY_INFORMATION,
}


def priority_for(action_type: str, kind: str, urgency: str | None = None) -> int:
    """The action's urgency (amber above urgent above information) is its broadcasts' priority;
    a result message is one level lower, so it waits behind new alerts. Without an urgency the
    action type's own applies (what an action of that type gets by default)."""
    level = _PRIORITY_OF_URGENCY[urgency or urgency_implied_by(ActionType(action_type).value)]
    if kind == "result":
        return min(level + 1, PRIORITY_INFORMATION)
    return level


class Claim(enum.Enum):
    CLAIMED = "claimed"  # this worker sends it now
    IN_DOUBT = "in_doubt"  # another worker took it and went silent; this one now reconciles it
    BUSY = "busy"  # another worker is sending it right now, or already reconciling it
    SKIP = "skip"  # already done or cancelled: nothing to do


@dataclass(frozen=True)
class DeliveryJob:
    """Everything a worker needs to send one delivery, read in one query."""

    delivery_id: int
    broadcast_id: int
    # Whose broadcast it is: an action's (alert, update, result) or an inquiry's (its e-mails).
    for_action: int | None
    for_inquiry: int | None
    kind: str  # alert | update | result | inquiry | inquiry_update
    channel: Channel
    attempt: int
    participant_id: int | None  # None: a caller told the closing word (burgernet.closing_word)
    phone_e164: str
    email: str | None
    language: str
    message: str
    action_type: str
    action_title: str
    action_description: str
    action_outcome: str
    action_result_message: str
    region_name: str
    sending_at: datetime | None
    status: str  # as read with the job (after a claim: "sending")

    @property
    def action_id(self) -> int:
        """The action this delivery is about; calls and texts only ever carry an action's."""
        if self.for_action is None:
            raise ValueError(f"delivery {self.delivery_id} is an inquiry's e-mail, not about an action")
        return self.for_action

    @property
    def participant(self) -> int:
        """The participant it goes to; an inquiry's e-mail and an alert always have one."""
        if self.participant_id is None:
            raise ValueError(f"delivery {self.delivery_id} goes to a caller, not a participant")
        return self.participant_id


@dataclass(frozen=True)
class FanOut:
    broadcast_id: int
    created: int  # deliveries made now (an interrupted fan-out resumed makes fewer)
    queued: dict[Channel, list[int]]  # delivery ids still queued, per channel, to enqueue
    # Held by the night rules: per channel, (not before, delivery ids) to put in the delayed set.
    held: dict[Channel, list[tuple[datetime, list[int]]]] = field(default_factory=dict)


@dataclass(frozen=True)
class BroadcastCounts:
    broadcast_id: int
    action_id: int | None
    inquiry_id: int | None
    kind: str
    status: str
    priority: int
    total: int
    by_status: dict[str, int]
    by_channel: dict[str, dict[str, int]]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def handled(self) -> int:
        return sum(n for status, n in self.by_status.items() if status in FINAL_STATUSES)


def _rowcount(result: object) -> int:
    """Rows an UPDATE changed (the only way to know whether a conditional update won)."""
    return int(cast(CursorResult[Any], result).rowcount or 0)


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime | None) -> datetime | None:
    # SQLite returns naive datetimes for timezone=True columns; they were stored as UTC.
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


# --- creating broadcasts ------------------------------------------------------------------------------
def new_broadcast(session: Session, *, action: Action, kind: str, message: str) -> Broadcast:
    broadcast = Broadcast(
        action_id=action.id,
        kind=kind,
        message=message,
        status="pending",
        priority=priority_for(action.action_type, kind, action.urgency),
        total=0,
        created_at=_now(),
    )
    session.add(broadcast)
    session.flush()
    return broadcast


def start_fan_out(session: Session, broadcast_id: int) -> Broadcast | None:
    """Mark a pending (or interrupted running) broadcast as running; None when it is over."""
    broadcast = session.get(Broadcast, broadcast_id, with_for_update=True)
    if broadcast is None or broadcast.status in ("done", "cancelled"):
        return None
    if broadcast.status == "pending":
        broadcast.status = "running"
        broadcast.started_at = _now()
    return broadcast


def _chunks(ids: np.ndarray | Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield [int(i) for i in ids[start : start + size]]


_FAN_OUT_IDS = Table(
    "fan_out_ids",
    MetaData(),
    Column("participant_id", Integer, primary_key=True),
    prefixes=["TEMPORARY"],
)


def _insert_ignoring_duplicates(session: Session) -> Any:
    """INSERT … ON CONFLICT DO NOTHING in the dialect at hand (SQLite and PostgreSQL both)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql_insert(Delivery)
    return sqlite_insert(Delivery)


def add_deliveries(
    session: Session,
    broadcast: Broadcast,
    recipients: Mapping[Channel, np.ndarray | Sequence[int]],
    hold: night_rules.Hold | None = None,
) -> FanOut:
    """Create one delivery per person per channel — skipping those that already exist.

    Resuming a fan-out a dead worker left half done creates only the missing rows (the unique
    key (broadcast, participant, channel) decides), then returns every delivery still queued:
    those due now in ``queued``, those the night rules hold (``deliveries.not_before`` in the
    future) in ``held``. ``hold``: the night rules' hold on this broadcast; its channels'
    deliveries wait until ``hold.until``, except for participants who opted in to night alerts.

    Set-based, because an alert may reach hundreds of thousands: the participant ids go into a
    temporary table with a plain executemany of integers, then one INSERT … SELECT per channel
    makes the deliveries inside the database.
    """
    now = _now()
    connection = session.connection()
    _FAN_OUT_IDS.create(connection, checkfirst=True)
    created = 0
    for channel, ids in recipients.items():
        connection.execute(_FAN_OUT_IDS.delete())
        raw = connection.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        try:
            for chunk in _chunks(ids, 50_000):
                cursor.executemany(
                    "INSERT INTO fan_out_ids (participant_id) VALUES (%s)"
                    if connection.dialect.name == "postgresql"
                    else "INSERT INTO fan_out_ids (participant_id) VALUES (?)",
                    [(pid,) for pid in chunk],
                )
        finally:
            cursor.close()
        rows = select(
            literal(broadcast.id),
            _FAN_OUT_IDS.c.participant_id,
            literal(channel.value),
            literal("queued"),
            literal(0),
            literal(now, DateTime(timezone=True)),
        ).where(true())  # SQLite needs a WHERE to parse INSERT … SELECT … ON CONFLICT
        # Push recipients are subscriptions, the others participants (the same temporary ids).
        recipient = "push_subscription_id" if channel is Channel.PUSH else "participant_id"
        statement = (
            _insert_ignoring_duplicates(session)
            .from_select(["broadcast_id", recipient, "channel", "status", "attempts", "updated_at"], rows)
            .on_conflict_do_nothing()
        )
        created += _rowcount(connection.execute(statement))
    connection.execute(_FAN_OUT_IDS.delete())
    if hold is not None:
        _hold_deliveries(session, broadcast.id, hold)
    broadcast.total = int(
        session.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.broadcast_id == broadcast.id)
        )
        or 0
    )
    queued: dict[Channel, list[int]] = {}
    held: dict[Channel, dict[datetime, list[int]]] = {}
    for delivery_id, channel_value, not_before in connection.execute(
        select(Delivery.id, Delivery.channel, Delivery.not_before)
        .where(Delivery.broadcast_id == broadcast.id, Delivery.status == "queued")
        .order_by(Delivery.id)
    ):
        due = _aware(not_before)
        if due is not None and due > now:
            held.setdefault(Channel(channel_value), {}).setdefault(due, []).append(delivery_id)
        else:
            queued.setdefault(Channel(channel_value), []).append(delivery_id)
    return FanOut(
        broadcast.id,
        created,
        queued,
        {channel: sorted(by_due.items()) for channel, by_due in held.items()},
    )


def _hold_deliveries(
    session: Session, broadcast_id: int, hold: night_rules.Hold, *, only: int | None = None
) -> int:
    """Night rules: this broadcast's queued deliveries on the held channels wait until
    ``hold.until`` — not those of participants who opted in to night alerts. A caller who is no
    participant (the closing word) never opted in: held too. Only rows without a later time
    already: a resumed fan-out never moves a hold. ``only``: just this delivery (a retry, a
    fallback made inside the window)."""
    opted_in = select(Participant.id).where(Participant.night_alerts.is_(True))
    which = [Delivery.broadcast_id == broadcast_id]
    if only is not None:
        which.append(Delivery.id == only)
    return _rowcount(
        session.execute(
            update(Delivery)
            .where(
                *which,
                Delivery.channel.in_(sorted(channel.value for channel in hold.channels)),
                Delivery.status == "queued",
                or_(Delivery.not_before.is_(None), Delivery.not_before < hold.until),
                or_(
                    Delivery.caller_e164.is_not(None),
                    and_(Delivery.participant_id.is_not(None), Delivery.participant_id.not_in(opted_in)),
                ),
            )
            .values(not_before=hold.until)
            .execution_options(synchronize_session=False)
        )
    )


def add_caller_deliveries(
    session: Session, broadcast: Broadcast, callers: Mapping[Channel, Sequence[str]]
) -> int:
    """The closing word's deliveries to callers who are no participant (E.164 numbers, one
    channel each), before :func:`add_deliveries` counts and queues the broadcast's rows. A
    resumed fan-out adds nobody twice (``uq_deliveries_caller_once``). Returns how many are new."""
    rows = [
        {
            "broadcast_id": broadcast.id,
            "caller_e164": number,
            "channel": channel.value,
            "status": "queued",
            "attempts": 0,
            "updated_at": _now(),
        }
        for channel, numbers in callers.items()
        for number in numbers
    ]
    if not rows:
        return 0
    return _rowcount(
        session.execute(_insert_ignoring_duplicates(session).values(rows).on_conflict_do_nothing())
    )


def reached_participants(session: Session, action_id: int) -> dict[Channel, list[int]]:
    """Who got this action's alert or updates, per channel that reached them (for push: the
    subscriptions the alert was pushed to that still exist; the device decides whether it
    shows an update, it showed the alert or not)."""
    rows = session.execute(
        select(Delivery.channel, func.coalesce(Delivery.participant_id, Delivery.push_subscription_id))
        .join(Broadcast, Broadcast.id == Delivery.broadcast_id)
        .where(
            Broadcast.action_id == action_id,
            Broadcast.kind.in_(("alert", "update")),
            Delivery.status.in_(REACHED_STATUSES),
            or_(Delivery.participant_id.is_not(None), Delivery.push_subscription_id.is_not(None)),
        )
        .distinct()
    )
    reached: dict[Channel, set[int]] = {}
    for channel_value, participant_id in rows:
        reached.setdefault(Channel(channel_value), set()).add(participant_id)
    return {channel: sorted(ids) for channel, ids in reached.items()}


def cancel_pending(session: Session, action_id: int) -> int:
    """The action closed: deliveries not yet handed to a provider are cancelled, not sent."""
    broadcast_ids = list(
        session.scalars(
            select(Broadcast.id).where(
                Broadcast.action_id == action_id,
                Broadcast.kind.in_(("alert", "update")),
                Broadcast.status.in_(("pending", "running")),
            )
        )
    )
    if not broadcast_ids:
        return 0
    now = _now()
    cancelled = _rowcount(
        session.execute(
            update(Delivery)
            .where(Delivery.broadcast_id.in_(broadcast_ids), Delivery.status == "queued")
            .values(status="cancelled", finished_at=now, updated_at=now, last_error="action closed")
        )
    )
    session.execute(
        update(Broadcast).where(Broadcast.id.in_(broadcast_ids)).values(status="cancelled", finished_at=now)
    )
    return cancelled


def cancel_for_participant(session: Session, participant_id: int, channel: Channel) -> int:
    """SMS STOP or opt-out: nothing still queued for this person on this channel is sent."""
    now = _now()
    result = session.execute(
        update(Delivery)
        .where(
            Delivery.participant_id == participant_id,
            Delivery.channel == channel.value,
            Delivery.status == "queued",
        )
        .values(status="cancelled", finished_at=now, updated_at=now, last_error="participant opted out")
    )
    return _rowcount(result)


# --- working on one delivery ----------------------------------------------------------------------------
def claim(
    session: Session, delivery_id: int, in_doubt_before: datetime | None = None
) -> tuple[Claim, DeliveryJob | None]:
    """Take a queued delivery for sending (atomically), or say why not.

    A delivery another worker left ``sending`` before ``in_doubt_before`` is in doubt. Taking
    it over is a claim of its own: ``sending_at`` moves to now only where it still holds the
    stale time, so when two workers find the same delivery in doubt (the start-up rebuild
    queues it again while the stream's own takeover hands over the old entry), exactly one
    reconciles it and the other sees it ``BUSY``. The job keeps the old ``sending_at``: the
    reconciliation asks the provider about that attempt.
    """
    now = _now()
    taken = _rowcount(
        session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.status == "queued")
            .values(status="sending", attempts=Delivery.attempts + 1, sending_at=now, updated_at=now)
        )
    )
    job = load_job(session, delivery_id)
    if job is None:
        return Claim.SKIP, None
    if taken:
        return Claim.CLAIMED, job
    if job.status != "sending":
        return Claim.SKIP, job
    if in_doubt_before is None or job.sending_at is None or job.sending_at >= in_doubt_before:
        return Claim.BUSY, job
    taken_over = _rowcount(
        session.execute(
            update(Delivery)
            .where(
                Delivery.id == delivery_id,
                Delivery.status == "sending",
                Delivery.sending_at < in_doubt_before,
            )
            .values(sending_at=now, updated_at=now)
        )
    )
    return (Claim.IN_DOUBT, job) if taken_over else (Claim.BUSY, job)


def load_job(session: Session, delivery_id: int) -> DeliveryJob | None:
    row = session.execute(
        select(
            Delivery.id,
            Delivery.broadcast_id,
            Broadcast.action_id,
            Broadcast.inquiry_id,
            Broadcast.kind,
            Delivery.channel,
            Delivery.attempts,
            Participant.id,
            # A caller who is no participant: their number, in the control room's language.
            func.coalesce(Participant.phone_e164, Delivery.caller_e164),
            Participant.email,
            func.coalesce(Participant.language, CALLER_LANGUAGE),
            Broadcast.message,
            Action.action_type,
            Action.title,
            Delivery.sending_at,
            Action.description,
            # The public outcome is the kind's words; the free-text note is internal.
            Action.outcome_kind,
            Action.result_message,
            Region.name,
            Delivery.status,
        )
        .join(Broadcast, Broadcast.id == Delivery.broadcast_id)
        # An inquiry's broadcast has no action: its e-mails are composed from the inquiry.
        .outerjoin(Action, Action.id == Broadcast.action_id)
        .outerjoin(Region, Region.id == Action.region_id)
        .outerjoin(Participant, Participant.id == Delivery.participant_id)
        # A participant's or a caller's; a push delivery is claimed in batches (claim_push).
        .where(
            Delivery.id == delivery_id, or_(Participant.id.is_not(None), Delivery.caller_e164.is_not(None))
        )
    ).one_or_none()
    if row is None:
        return None
    return DeliveryJob(
        delivery_id=row[0],
        broadcast_id=row[1],
        for_action=row[2],
        for_inquiry=row[3],
        kind=row[4],
        channel=Channel(row[5]),
        attempt=row[6],
        participant_id=row[7],
        phone_e164=row[8],
        email=row[9],
        language=row[10],
        message=row[11],
        action_type=row[12] or "",
        action_title=row[13] or "",
        sending_at=_aware(row[14]),
        action_description=row[15] or "",
        action_outcome=outcome_words(row[16], row[10]),
        action_result_message=row[17] or "",
        region_name=row[18] or "",
        status=row[19],
    )


def finish(
    session: Session,
    delivery_id: int,
    status: str,
    *,
    provider_ref: str | None = None,
    error: str | None = None,
) -> bool:
    """Record the outcome of the attempt in progress; False when it was not ours to record."""
    if status not in FINAL_STATUSES:
        raise ValueError(f"{status!r} is not a final delivery status")
    now = _now()
    values: dict[str, object] = {"status": status, "updated_at": now, "finished_at": now}
    if provider_ref is not None:
        values["provider_ref"] = provider_ref
    if error is not None:
        values["last_error"] = error[:300]
    changed = _rowcount(
        session.execute(
            update(Delivery).where(Delivery.id == delivery_id, Delivery.status == "sending").values(**values)
        )
    )
    if changed:
        return True
    if provider_ref is None:
        return False
    # The provider's status callback may beat the worker to the database (it names the
    # delivery in its URL): the attempt is then finished already, by this very send.
    early = session.scalar(
        select(Delivery.id).where(
            Delivery.id == delivery_id,
            Delivery.provider_ref == provider_ref,
            Delivery.status.in_(tuple(_CALLBACK_MAY_REPLACE)),
        )
    )
    return early is not None


def requeue(session: Session, delivery_id: int, *, error: str) -> bool:
    """This attempt failed in a way worth retrying: back to queued (the attempt count stays)."""
    changed = _rowcount(
        session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.status == "sending")
            .values(status="queued", last_error=error[:300], updated_at=_now(), sending_at=None)
        )
    )
    return bool(changed)


def hold_one(
    session: Session, broadcast_id: int, delivery_id: int, hold: night_rules.Hold | None
) -> datetime | None:
    """Night rules for one queued delivery whose next try would fall inside the quiet window (a
    retry, a fallback): when it may go instead (``hold.until``, kept in ``not_before`` so a
    rebuilt queue still waits), or None when it need not wait (another channel, a participant
    who opted in to night alerts, no hold)."""
    if hold is None:
        return None
    return hold.until if _hold_deliveries(session, broadcast_id, hold, only=delivery_id) else None


# --- falling back to the next channel (burgernet.alert_policies) ----------------------------------------
# A voice delivery that ended like this did not reach the participant; the worker's policy
# decides whether it falls back (FallBack), and these are what a lost enqueue is repaired from.
NOT_REACHED_STATUSES = ("busy", "no_answer", "failed", "machine")


@dataclass(frozen=True)
class Fallback:
    """The delivery made to replace one that did not reach its participant; to enqueue."""

    delivery_id: int
    channel: Channel
    priority: int
    # The night rules' hold: not before this moment (UTC); None: at once.
    not_before: datetime | None = None


def add_fallback(
    session: Session, delivery_id: int, channel: Channel, hold: night_rules.Hold | None = None
) -> Fallback | None:
    """Make the ``channel`` delivery that replaces ``delivery_id`` (which the caller just
    finished, in this same transaction), and count it in its broadcast's total.

    Only for a participant of a running action broadcast who allows ``channel`` (SMS: has a
    mobile number), has not opted out, and has no ``channel`` delivery in this broadcast yet
    (the unique key decides, also against a resumed fan-out). None when nobody is made.
    ``hold``: the night rules' hold on the broadcast now; the fallback waits for its end like
    the broadcast's own deliveries on that channel would.
    """
    row = session.execute(
        select(Delivery.broadcast_id, Participant.id, Participant.phone_e164, Participant.opted_out)
        .join(Participant, Participant.id == Delivery.participant_id)
        .where(Delivery.id == delivery_id)
    ).one_or_none()
    if row is None:  # a caller's closing word, an inquiry's resident: no fallback
        return None
    broadcast_id, participant_id, phone_e164, opted_out = row
    # Locked: the action's close (cancel_pending) and a resumed fan-out wait for this transaction.
    broadcast = session.get(Broadcast, broadcast_id, with_for_update=True)
    if broadcast is None or broadcast.status != "running" or broadcast.action_id is None:
        return None
    allowed = {Channel.SMS: Participant.channel_sms, Channel.EMAIL: Participant.channel_email}.get(channel)
    if (
        allowed is None
        or opted_out
        or not session.scalar(select(allowed).where(Participant.id == participant_id))
    ):
        return None
    if channel is Channel.SMS and not sms_capable(phone_e164):
        return None
    made = session.execute(
        _insert_ignoring_duplicates(session)
        .values(
            broadcast_id=broadcast_id,
            participant_id=participant_id,
            channel=channel.value,
            status="queued",
            attempts=0,
            updated_at=_now(),
            fallback_of=delivery_id,
        )
        .on_conflict_do_nothing()
        .returning(Delivery.id)
    ).first()
    if made is None:  # they had (or were just given) a delivery on that channel
        return None
    session.execute(update(Broadcast).where(Broadcast.id == broadcast_id).values(total=Broadcast.total + 1))
    made_id = int(made[0])
    return Fallback(made_id, channel, broadcast.priority, hold_one(session, broadcast_id, made_id, hold))


def unqueued_fallbacks(session: Session, delivery_id: int) -> list[Fallback]:
    """The fallback of ``delivery_id`` still waiting for its first try: its enqueue may have
    been lost (Redis went away between the commit and the XADD), so it is queued again. A
    second entry for one delivery is harmless: the claim lets one of them through."""
    rows = session.execute(
        select(Delivery.id, Delivery.channel, Broadcast.priority, Delivery.not_before)
        .join(Broadcast, Broadcast.id == Delivery.broadcast_id)
        .where(Delivery.fallback_of == delivery_id, Delivery.status == "queued", Delivery.attempts == 0)
    )
    return [
        Fallback(int(i), Channel(channel), int(priority), _aware(not_before))
        for i, channel, priority, not_before in rows
    ]


def apply_provider_status(
    session: Session,
    *,
    provider_ref: str,
    status: str,
    error: str | None = None,
    delivery_id: int | None = None,
) -> bool:
    """A provider's status callback (e.g. Twilio's) for the delivery it knows as ``provider_ref``.

    Only moves forward (``sent`` → ``delivered``, never ``delivered`` → ``sent``); False when
    nothing changed. A callback that arrives before the worker stored the provider's answer
    names the delivery itself (``delivery_id``, from the signed callback URL): it is applied to
    that delivery while it is still ``sending`` without a reference, and the worker's
    :func:`finish` then finds the attempt done. Exactly-once handling of repeated callbacks is
    the caller's job (the ``provider_events`` key in the same transaction).
    """
    allowed_from = _CALLBACK_MAY_REPLACE.get(status)
    if allowed_from is None:
        raise ValueError(f"unknown delivery status {status!r}")
    now = _now()
    values: dict[str, object] = {"status": status, "updated_at": now}
    if error:
        values["last_error"] = error[:300]
    delivery = session.scalars(
        select(Delivery).where(Delivery.provider_ref == provider_ref).with_for_update()
    ).first()
    if delivery is None and delivery_id is not None:
        delivery = session.scalars(
            select(Delivery)
            .where(Delivery.id == delivery_id, Delivery.status == "sending", Delivery.provider_ref.is_(None))
            .with_for_update()
        ).first()
        if delivery is not None:
            values["provider_ref"] = provider_ref
    if delivery is None or delivery.status not in allowed_from:
        return False
    if delivery.status == status:
        return False
    if delivery.finished_at is None:
        values["finished_at"] = now
    session.execute(update(Delivery).where(Delivery.id == delivery.id).values(**values))
    return True


def finish_broadcast_if_done(session: Session, broadcast_id: int) -> bool:
    """Mark a running broadcast done once no delivery is queued or sending any more."""
    open_count = session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(Delivery.broadcast_id == broadcast_id, Delivery.status.in_(("queued", "sending")))
    )
    if open_count:
        return False
    changed = _rowcount(
        session.execute(
            update(Broadcast)
            .where(Broadcast.id == broadcast_id, Broadcast.status == "running")
            .values(status="done", finished_at=_now())
        )
    )
    return bool(changed)


# --- reading ------------------------------------------------------------------------------------------------
def counts(session: Session, broadcast_id: int) -> BroadcastCounts | None:
    broadcast = session.get(Broadcast, broadcast_id)
    if broadcast is None:
        return None
    by_status: dict[str, int] = {}
    by_channel: dict[str, dict[str, int]] = {}
    for channel_value, status, number in session.execute(
        select(Delivery.channel, Delivery.status, func.count())
        .where(Delivery.broadcast_id == broadcast_id)
        .group_by(Delivery.channel, Delivery.status)
    ):
        by_status[status] = by_status.get(status, 0) + number
        by_channel.setdefault(channel_value, {})[status] = number
    return BroadcastCounts(
        broadcast_id=broadcast.id,
        action_id=broadcast.action_id,
        inquiry_id=broadcast.inquiry_id,
        kind=broadcast.kind,
        status=broadcast.status,
        priority=broadcast.priority,
        total=broadcast.total,
        by_status=by_status,
        by_channel=by_channel,
        created_at=_aware(broadcast.created_at) or _now(),
        started_at=_aware(broadcast.started_at),
        finished_at=_aware(broadcast.finished_at),
    )


def broadcasts_of_action(session: Session, action_id: int) -> list[int]:
    return list(
        session.scalars(select(Broadcast.id).where(Broadcast.action_id == action_id).order_by(Broadcast.id))
    )


# --- push: claimed and recorded in batches -------------------------------------------------------------
@dataclass(frozen=True)
class PushTarget:
    """One push delivery as the sender needs it, read with the batch's claim."""

    delivery_id: int
    broadcast_id: int
    action_id: int
    kind: str  # alert | update | result | reply
    attempt: int
    subscription_id: int | None  # None: the device unsubscribed since the fan-out
    endpoint: str
    p256dh: str
    auth: str
    lang: str
    sighting_id: int | None
    resent: bool  # in doubt (its worker vanished): sent again, the push Topic drops a duplicate


@dataclass(frozen=True)
class PushRecord:
    """What became of one push: a final status, or a retry; ``gone`` deletes the subscription."""

    target: PushTarget
    status: str
    error: str | None = None
    retry: bool = False
    retry_after: float | None = None  # the push service asked for this wait (seconds)
    gone: bool = False


def claim_push(
    session: Session, delivery_ids: Sequence[int], in_doubt_before: datetime
) -> tuple[list[PushTarget], list[int]]:
    """Take a batch of push deliveries for sending in one statement; returns the targets and
    the ids with nothing to do (already final, cancelled, or being sent by a live worker).

    A delivery another worker left ``sending`` before ``in_doubt_before`` is in doubt; push
    services cannot be asked whether a push arrived, so it is taken and sent again (the
    worker's journal is checked first, see :meth:`BroadcastWorker._push_batch`).
    """
    now = _now()
    wanted = [int(i) for i in delivery_ids]
    claimed: dict[int, bool] = {}
    # Core statements on the session's connection (its transaction): no ORM objects are
    # involved, and the ORM's execution path costs more than the statements for 250 rows.
    connection = session.connection()
    in_doubt = list(
        connection.scalars(
            select(Delivery.id).where(
                Delivery.id.in_(wanted),
                Delivery.status == "sending",
                Delivery.sending_at < in_doubt_before,
            )
        )
    )
    for rows, resent in (
        (
            connection.execute(
                update(Delivery)
                .where(Delivery.id.in_(wanted), Delivery.channel == Channel.PUSH.value)
                .where(Delivery.status == "queued")
                .values(status="sending", attempts=Delivery.attempts + 1, sending_at=now, updated_at=now)
                .returning(Delivery.id)
            ),
            False,
        ),
        (
            connection.execute(
                update(Delivery)
                # Stale still: another worker that took these over meanwhile moved sending_at.
                .where(
                    Delivery.id.in_(in_doubt),
                    Delivery.status == "sending",
                    Delivery.sending_at < in_doubt_before,
                )
                .values(attempts=Delivery.attempts + 1, sending_at=now, updated_at=now)
                .returning(Delivery.id)
            )
            if in_doubt
            else None,
            True,
        ),
    ):
        if rows is not None:
            claimed.update((row[0], resent) for row in rows)
    targets: list[PushTarget] = []
    if claimed:
        for row in connection.execute(
            select(
                Delivery.id,
                Delivery.broadcast_id,
                Broadcast.action_id,
                Broadcast.kind,
                Delivery.attempts,
                PushSubscription.id,
                PushSubscription.endpoint,
                PushSubscription.p256dh,
                PushSubscription.auth,
                PushSubscription.lang,
                Delivery.sighting_id,
            )
            .join(Broadcast, Broadcast.id == Delivery.broadcast_id)
            .outerjoin(PushSubscription, PushSubscription.id == Delivery.push_subscription_id)
            .where(Delivery.id.in_(list(claimed)))
            .order_by(Delivery.id)
        ):
            targets.append(
                PushTarget(
                    delivery_id=row[0],
                    broadcast_id=row[1],
                    action_id=row[2] or 0,  # push is only ever about an action
                    kind=row[3],
                    attempt=row[4],
                    subscription_id=row[5],
                    endpoint=row[6] or "",
                    p256dh=row[7] or "",
                    auth=row[8] or "",
                    lang=row[9] or "nl",
                    sighting_id=row[10],
                    resent=claimed[row[0]],
                )
            )
    skipped = [i for i in wanted if i not in claimed]
    return targets, skipped


def record_push(
    session: Session, records: Sequence[PushRecord], max_attempts: int
) -> tuple[dict[int, int], list[PushRecord]]:
    """Write a batch's outcomes: final ones, retries (back to ``queued``), and the subscriptions'
    side (last success, failures; 404/410 deletes the subscription — its deliveries keep their
    outcome). Returns the final outcomes counted per broadcast, and the records to retry."""
    now = _now()
    connection = session.connection()  # Core statements, as in claim_push
    # One UPDATE per outcome and broadcast (a batch is mostly one of each), counted by its
    # rowcount: no row comes back, so SQLite runs each statement in one step instead of one
    # step per row (each step releases and takes back Python's lock, which the worker's event
    # loop is busy with).
    finals: dict[tuple[str, str | None, int], list[int]] = {}
    retries: list[PushRecord] = []
    per_broadcast: dict[int, int] = {}
    for record in records:
        if record.retry and record.target.attempt < max_attempts:
            retries.append(record)
            continue
        outcome = (record.status, (record.error or "")[:300] or None, record.target.broadcast_id)
        finals.setdefault(outcome, []).append(record.target.delivery_id)
    for (status, error, broadcast_id), ids in finals.items():
        values: dict[str, object] = {"status": status, "updated_at": now, "finished_at": now}
        if error is not None:
            values["last_error"] = error
        for chunk in _chunks(ids, 500):
            changed = connection.execute(
                update(Delivery).where(Delivery.id.in_(chunk), Delivery.status == "sending").values(**values)
            ).rowcount
            if changed:
                per_broadcast[broadcast_id] = per_broadcast.get(broadcast_id, 0) + changed
    for chunk in _chunks([r.target.delivery_id for r in retries], 500):
        connection.execute(
            update(Delivery)
            .where(Delivery.id.in_(chunk), Delivery.status == "sending")
            .values(status="queued", updated_at=now, sending_at=None, last_error="push service busy")
        )
    with_subscription = [r for r in records if r.target.subscription_id is not None]
    push_subscriptions.record_outcomes(
        session,
        [r.target.subscription_id for r in with_subscription if r.status == "sent"],  # type: ignore[misc]
        [
            r.target.subscription_id  # type: ignore[misc]
            for r in with_subscription
            if r.status != "sent" and not r.gone
        ],
    )
    push_subscriptions.delete_gone(
        session,
        [r.target.subscription_id for r in with_subscription if r.gone],  # type: ignore[misc]
    )
    return per_broadcast, retries


def new_reply(
    session: Session, *, action: Action, sighting_id: int, subscription_id: int, question: str
) -> int:
    """A pending broadcast of kind ``reply`` with its one push delivery; returns its id."""
    broadcast = new_broadcast(session, action=action, kind="reply", message=question)
    session.add(
        Delivery(
            broadcast_id=broadcast.id,
            push_subscription_id=subscription_id,
            sighting_id=sighting_id,
            channel=Channel.PUSH.value,
            status="queued",
            attempts=0,
            updated_at=_now(),
        )
    )
    broadcast.total = 1
    session.flush()
    return broadcast.id
