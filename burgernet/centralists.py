"""Centralists (control-room operators) and their SIP endpoints, audited.

Their endpoints feed the Asterisk configuration (``burgernet asterisk reload``) and the
routing snapshot (invalidated here on every change).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from burgernet.db import session_scope
from burgernet.errors import DomainError, NotFoundError
from burgernet.models import Centralist, Region
from burgernet.repositories import record_audit


class CentralistError(DomainError):
    """The change cannot be made; the message says why and nothing was changed."""

    code: ClassVar[str] = "centralist.invalid"


class CentralistNotFound(CentralistError, NotFoundError):
    code: ClassVar[str] = "centralist.not_found"


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
                raise CentralistNotFound(f"no centralist with endpoint {endpoint!r}")
            if on_duty and not centralist.active:
                raise CentralistError(f"centralist {endpoint!r} is deactivated")
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

    def update(
        self,
        endpoint: str,
        *,
        name: str,
        new_endpoint: str,
        region_code: str,
        on_duty: bool,
        actor: str,
        source: str = "cli",
    ) -> CentralistView:
        """Change name, endpoint (a new SIP account), region and duty; audited with what changed."""
        name = name.strip()
        if not name or len(name) > 120:
            raise CentralistError("a name of 1 to 120 characters is required")
        with session_scope(self._sessions) as session:
            centralist = session.scalar(select(Centralist).where(Centralist.sip_endpoint == endpoint))
            if centralist is None:
                raise CentralistNotFound(f"no centralist with endpoint {endpoint!r}")
            if not centralist.active:
                raise CentralistError(f"centralist {endpoint!r} is deactivated; reactivate first")
            region = session.scalar(select(Region).where(Region.code == region_code))
            if region is None:
                raise CentralistError(f"unknown region {region_code!r}")
            if new_endpoint != endpoint and session.scalar(
                select(Centralist.id).where(Centralist.sip_endpoint == new_endpoint)
            ):
                raise CentralistError(f"endpoint {new_endpoint!r} already exists")
            before = {
                "name": centralist.name,
                "endpoint": centralist.sip_endpoint,
                "region": centralist.region.code,
                "on_duty": centralist.on_duty,
            }
            try:
                centralist.sip_endpoint = new_endpoint
            except ValueError as exc:
                raise CentralistError(str(exc)) from None
            centralist.name = name
            centralist.region_id = region.id
            centralist.on_duty = on_duty
            after = {"name": name, "endpoint": new_endpoint, "region": region_code, "on_duty": on_duty}
            changed: dict[str, object] = {
                key: [before[key], value] for key, value in after.items() if before[key] != value
            }
            record_audit(
                session,
                actor=actor,
                verb="edit",
                entity="centralist",
                entity_id=centralist.id,
                detail=changed,
                source=source,
            )
            view = CentralistView(new_endpoint, name, region_code, on_duty, centralist.sip_contact)
        self._on_change()
        return view

    def set_active(self, endpoint: str, active: bool, *, actor: str, source: str = "cli") -> None:
        """Deactivate (off duty, no SIP account, out of the routing) or reactivate (off duty)."""
        with session_scope(self._sessions) as session:
            centralist = session.scalar(select(Centralist).where(Centralist.sip_endpoint == endpoint))
            if centralist is None:
                raise CentralistNotFound(f"no centralist with endpoint {endpoint!r}")
            if centralist.active == active:
                return
            centralist.active = active
            centralist.on_duty = False  # back on duty is a separate, deliberate step
            record_audit(
                session,
                actor=actor,
                verb="activate" if active else "deactivate",
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
