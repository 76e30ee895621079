"""The call card as the panel serves it: need-to-know, the audit, the map feature.

Who may read a card (:mod:`callback_api.access`): the user linked to a centralist whose phone
the call rang (the routing gave them the call: that is their need to know, whatever the
action's region), and otherwise whoever may read the action's personal data. Every card
read is audited (``read`` of the ``call``): it shows a caller's number.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import select

from burgernet.db import session_scope
from burgernet.desk import CallCardService, DeskStore, card_as_dict, ringing_event
from burgernet.models import Action, Centralist
from burgernet.services import Services
from callback_api.access import NeedToKnowService, Reader
from callback_api.areas import action_feature
from callback_api.errors import NotFound


class CallNotFound(NotFound):
    code: ClassVar[str] = "desk.call_not_found"


class DeskService:
    def __init__(self, context: Services) -> None:
        self._sessions = context.sessions
        self._store = DeskStore(context.live)
        self._cards = CallCardService(context.sessions)
        self._need_to_know = NeedToKnowService(context.sessions)

    def endpoint_of(self, reader: Reader) -> str | None:
        """The SIP endpoint of the centralist the reader's account is linked to."""
        if reader.centralist_id is None:
            return None
        with session_scope(self._sessions) as session:
            return session.scalar(
                select(Centralist.sip_endpoint).where(Centralist.id == reader.centralist_id)
            )

    def card(self, reader: Reader, unique_id: str) -> dict[str, Any]:
        """The card of call ``unique_id`` for ``reader``; NeedToKnow (403) or CallNotFound (404)."""
        call = self._store.remembered(unique_id) or self._cards.logged_call(unique_id)
        if call is None:
            raise CallNotFound(f"no call {unique_id!r} is known")
        endpoint = self.endpoint_of(reader)
        rang_them = endpoint is not None and endpoint in self._store.rung(unique_id)
        if not (reader.sees_personal_data and rang_them):
            self._need_to_know.require(reader, call.action_id)
        card = card_as_dict(self._cards.card(call))
        card["area"] = self._area(call.action_id)
        card["rang_you"] = rang_them
        self._need_to_know.audit_read(reader, "call", unique_id, {"action_id": call.action_id, "card": True})
        return card

    def current(self, reader: Reader) -> list[dict[str, Any]]:
        """The calls ringing or answered on the reader's own phone now, as the events announced
        them (a desk page that (re)connects shows them again). Only their own phone: their need
        to know is that the call rings it."""
        endpoint = self.endpoint_of(reader)
        if endpoint is None or not reader.sees_personal_data:
            return []
        return [
            {**ringing_event(call, endpoint), "at": call.decided_at, "state": state}
            for call, state in self._store.at(endpoint)
        ]

    def _area(self, action_id: int | None) -> dict[str, Any] | None:
        if action_id is None:
            return None
        with session_scope(self._sessions) as session:
            action = session.get(Action, action_id)
            return action_feature(session, action) if action is not None else None
