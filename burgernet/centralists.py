"""Centralists (control-room operators) and their SIP endpoints, audited.

Their endpoints feed the Asterisk configuration (``burgernet asterisk reload``) and the
routing snapshot (invalidated here on every change).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from burgernet.db import session_scope
from burgernet.models import Centralist, Region
from burgernet.repositories import record_audit


class CentralistError(ValueError):
    pass


@dataclass(frozen=True)
class CentralistView:
    endpoint: str
    name: str
    region_code: str
    on_duty: bool
    contact: str | None


class CentralistService:
    def __init__(
        self, sessions: sessionmaker[Session], on_change: Callable[[], object] = lambda: None
    ) -> None:
        self._sessions = sessions
        self._on_change = on_change

    def add(
        self,
        *,
        endpoint: str,
        name: str,
        region_code: str,
        password: str | None,
        contact: str | None,
        actor: str,
        source: str = "cli",
    ) -> CentralistView:
        if password is not None and len(password) < 8:
            raise CentralistError("a SIP password needs at least 8 characters")
        if contact is not None and not contact.startswith("sip:"):
            raise CentralistError("a contact is a SIP URI, e.g. sip:c-mn-4@10.0.0.12:5060")
        with session_scope(self._sessions) as session:
            region_id = session.scalar(select(Region.id).where(Region.code == region_code))
            if region_id is None:
                raise CentralistError(f"unknown region {region_code!r}")
            if session.scalar(select(Centralist.id).where(Centralist.sip_endpoint == endpoint)) is not None:
                raise CentralistError(f"endpoint {endpoint!r} already exists")
            try:
                centralist = Centralist(
                    name=name,
                    sip_endpoint=endpoint,
                    sip_password=password,
                    sip_contact=contact,
                    region_id=region_id,
                    on_duty=True,
                )
            except ValueError as exc:
                raise CentralistError(str(exc)) from None
            session.add(centralist)
            session.flush()
            record_audit(
                session,
                actor=actor,
                verb="create",
                entity="centralist",
                entity_id=endpoint,
                detail={"name": name, "region": region_code, "contact": contact},
                source=source,
            )
        self._on_change()
        return CentralistView(endpoint, name, region_code, True, contact)

    def set_on_duty(self, endpoint: str, on_duty: bool, *, actor: str, source: str = "cli") -> None:
        with session_scope(self._sessions) as session:
            centralist = session.scalar(select(Centralist).where(Centralist.sip_endpoint == endpoint))
            if centralist is None:
                raise CentralistError(f"no centralist with endpoint {endpoint!r}")
            centralist.on_duty = on_duty
            record_audit(
                session,
                actor=actor,
                verb="on-duty" if on_duty else "off-duty",
                entity="centralist",
                entity_id=endpoint,
                source=source,
            )
        self._on_change()

    def list_all(self) -> list[CentralistView]:
        with session_scope(self._sessions) as session:
            rows = session.execute(
                select(
                    Centralist.sip_endpoint,
                    Centralist.name,
                    Region.code,
                    Centralist.on_duty,
                    Centralist.sip_contact,
                )
                .join(Region, Region.id == Centralist.region_id)
                .order_by(Region.code, Centralist.sip_endpoint)
            )
            return [CentralistView(*row) for row in rows]
