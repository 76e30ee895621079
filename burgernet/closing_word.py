"""The closing word: who phoned the free number about an action and left a number to tell.

When an action closes, its result message goes to everyone its alert reached
(:mod:`broadcasting.recipients`) and also to everyone who *phoned about it and left a number*:

* a call to the free number routed to the action, or a transfer from an alert call (key 1),
  with the caller ID it came with (``calls.caller_number``; a centralist's call-back is our own
  call, not theirs, and does not count);
* a spoken tip filed against the action, with its call-back number (``tips.callback_number``);
* an entry of the call-back worklist filed against the action (its number is its tip's or its
  call's).

Only a number we would dial ourselves counts: a real caller ID (not withheld, anonymous or
garbage), in E.164, and a Dutch fixed or mobile line (:func:`burgernet.phone.dialable_national`:
never a foreign, premium, service or short number). Each number counts once, however often it
called. A sighting sent from the app is not a call: the app's push subscriptions get the
result the way the alert reached them.

A caller who is not a participant is told on one channel: an SMS to a mobile number, a short
voice call (the message read out) to a fixed line (:func:`channel_for_caller`). The number is
used for that delivery only and goes with the delivery row (retention, ``deliveries``).
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import PhoneNumberType
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from burgernet import channel_vars as cv
from burgernet.domain import Channel, Language
from burgernet.models import Call, CallbackItem, Tip
from burgernet.phone import DEFAULT_REGION, caller_id_to_e164, is_dialable

# A caller who is not a participant has chosen no language: the control room's.
CALLER_LANGUAGE = Language.NL.value
# Calls the citizen made (to the free number, or key 1 in an alert call); not our call-backs.
_CITIZENS_CALLS = (cv.CALL_KIND_INBOUND, cv.CALL_KIND_TRANSFER)


def callable_number(raw: str | None) -> str | None:
    """``raw`` (a caller ID or call-back number) in E.164 when it is a Dutch fixed or mobile
    line we would dial; ``None`` for a withheld, anonymous, garbage, foreign or service number."""
    e164 = caller_id_to_e164(raw)
    if e164 is None or not is_dialable(e164):
        return None
    return e164


def is_mobile(e164: str) -> bool:
    try:
        parsed = phonenumbers.parse(e164, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.number_type(parsed) == PhoneNumberType.MOBILE


def channel_for_caller(e164: str) -> Channel:
    """A caller who is not a participant: an SMS to a mobile, else a voice call reading it out."""
    return Channel.SMS if is_mobile(e164) else Channel.VOICE


def caller_numbers(session: Session, action_id: int) -> list[str]:
    """Every distinct number (E.164, ascending) that phoned about ``action_id`` and may be told."""
    raw: set[str | None] = set()
    raw.update(
        session.scalars(
            select(Call.caller_number).where(
                Call.action_id == action_id,
                Call.kind.in_(_CITIZENS_CALLS),
                Call.caller_number.is_not(None),
            )
        )
    )
    raw.update(
        session.scalars(
            select(Tip.callback_number)
            .outerjoin(Call, Call.id == Tip.call_id)
            .where(
                # The tip's own action, else its call's (as the worklist files it); indexed both.
                or_(Tip.action_id == action_id, and_(Tip.action_id.is_(None), Call.action_id == action_id)),
                Tip.callback_number.is_not(None),
            )
        )
    )
    raw.update(
        session.scalars(
            select(func.coalesce(Tip.callback_number, Call.caller_number))
            .select_from(CallbackItem)
            .outerjoin(Tip, Tip.id == CallbackItem.tip_id)
            .outerjoin(Call, Call.id == CallbackItem.call_id)
            .where(CallbackItem.action_id == action_id)
        )
    )
    numbers = {callable_number(number) for number in raw}
    return sorted(number for number in numbers if number is not None)
