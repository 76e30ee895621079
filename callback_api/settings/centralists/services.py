"""Centralists in the panel: the list per region, and changes through the core service.

Every change goes through :class:`burgernet.centralists.CentralistService` (validation, audit,
routing snapshot), then asks the telephony service to render the Asterisk configuration again
and reload it (:func:`callback_api.settings.services.reload_asterisk`): a new or renamed
endpoint can register at once, a deactivated one no longer can.

A SIP password is made by the core (on add, on rename, on request) and handed back here once
(:class:`NewPassword`), for the page that shows it; it is stored nowhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from burgernet.centralists import CentralistError, CentralistNotFound
from burgernet.db import session_scope
from burgernet.models import Centralist, Region
from burgernet.services import Services
from callback_api.settings.services import ReloadOutcome, reload_asterisk


@dataclass(frozen=True)
class CentralistRow:
    id: int
    endpoint: str
    name: str
    region_code: str
    on_duty: bool
    active: bool
    contact: str | None


@dataclass(frozen=True)
class NewPassword:
    endpoint: str
    password: str


_COLUMNS = (
    Centralist.id,
    Centralist.sip_endpoint,
    Centralist.name,
    Region.code,
    Centralist.on_duty,
    Centralist.active,
    Centralist.sip_contact,
)


class CentralistAdminService:
    def __init__(self, services: Services) -> None:
        self._services = services
        self._sessions = services.sessions

    def list_all(self, region_code: str | None = None) -> list[CentralistRow]:
        with session_scope(self._sessions) as session:
            query = (
                select(*_COLUMNS)
                .join(Region, Region.id == Centralist.region_id)
                .order_by(Region.code, Centralist.active.desc(), Centralist.sip_endpoint)
            )
            if region_code:
                query = query.where(Region.code == region_code)
            return [CentralistRow(*row) for row in session.execute(query)]

    def get(self, centralist_id: int) -> CentralistRow:
        with session_scope(self._sessions) as session:
            row = session.execute(
                select(*_COLUMNS)
                .join(Region, Region.id == Centralist.region_id)
                .where(Centralist.id == centralist_id)
            ).first()
        if row is None:
            raise CentralistNotFound(f"no centralist {centralist_id}")
        return CentralistRow(*row)

    def add(
        self,
        *,
        endpoint: str,
        name: str,
        region_code: str,
        contact: str | None,
        actor: str,
        source: str,
    ) -> tuple[CentralistRow, NewPassword, ReloadOutcome]:
        endpoint = endpoint.strip()
        name = " ".join(name.split())
        view = self._services.centralists.add(
            endpoint=endpoint,
            name=name,
            region_code=region_code,
            contact=(contact or "").strip() or None,
            actor=actor,
            source=source,
        )
        assert view.password is not None  # a new account always gets one
        with session_scope(self._sessions) as session:
            new_id = session.scalar(select(Centralist.id).where(Centralist.sip_endpoint == endpoint))
        row = self.get(int(new_id or 0))
        return row, NewPassword(endpoint, view.password), self._reload(f"centralist {endpoint} added", actor)

    def edit(
        self,
        centralist_id: int,
        *,
        name: str,
        endpoint: str,
        region_code: str,
        on_duty: bool,
        actor: str,
        source: str,
    ) -> tuple[CentralistRow, NewPassword | None, ReloadOutcome]:
        """Save the form; a renamed endpoint comes back with its new password."""
        current = self.get(centralist_id)
        view = self._services.centralists.update(
            current.endpoint,
            name=" ".join(name.split()),
            new_endpoint=endpoint.strip(),
            region_code=region_code,
            on_duty=on_duty,
            actor=actor,
            source=source,
        )
        row = self.get(centralist_id)
        password = NewPassword(row.endpoint, view.password) if view.password else None
        return row, password, self._reload(f"centralist {row.endpoint} changed", actor)

    def new_password(
        self, centralist_id: int, *, actor: str, source: str
    ) -> tuple[NewPassword, ReloadOutcome]:
        current = self.get(centralist_id)
        if not current.active:
            raise CentralistError(f"centralist {current.endpoint!r} is deactivated; reactivate first")
        password = self._services.centralists.rotate_password(current.endpoint, actor=actor, source=source)
        outcome = self._reload(f"centralist {current.endpoint} has a new password", actor)
        return NewPassword(current.endpoint, password), outcome

    def set_on_duty(self, centralist_id: int, on_duty: bool, *, actor: str, source: str) -> ReloadOutcome:
        current = self.get(centralist_id)
        self._services.centralists.set_on_duty(current.endpoint, on_duty, actor=actor, source=source)
        # The dialplan's fallback pool lists the fallback region's centralists on duty.
        return self._reload(f"centralist {current.endpoint} {'on' if on_duty else 'off'} duty", actor)

    def set_active(self, centralist_id: int, active: bool, *, actor: str, source: str) -> ReloadOutcome:
        current = self.get(centralist_id)
        self._services.centralists.set_active(current.endpoint, active, actor=actor, source=source)
        verb = "reactivated" if active else "deactivated"
        return self._reload(f"centralist {current.endpoint} {verb}", actor)

    def _reload(self, reason: str, actor: str) -> ReloadOutcome:
        return reload_asterisk(self._services, reason=reason, actor=actor)
