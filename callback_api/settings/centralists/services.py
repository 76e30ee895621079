"""Centralists in the panel: the list per region, and changes through the core service.

Every change goes through :class:`burgernet.centralists.CentralistService` (validation, audit,
routing snapshot), then asks the telephony service to render the Asterisk configuration again
and reload it (:func:`callback_api.settings.services.reload_asterisk`): a new or renamed
endpoint can register at once, a deactivated one no longer can.
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
        password: str | None,
        contact: str | None,
        actor: str,
        source: str,
    ) -> tuple[CentralistRow, ReloadOutcome]:
        endpoint = endpoint.strip()
        name = " ".join(name.split())
        if not name or len(name) > 120:
            raise CentralistError("a name of 1 to 120 characters is required")
        self._services.centralists.add(
            endpoint=endpoint,
            name=name,
            region_code=region_code,
            password=password or None,
            contact=(contact or "").strip() or None,
            actor=actor,
            source=source,
        )
        with session_scope(self._sessions) as session:
            new_id = session.scalar(select(Centralist.id).where(Centralist.sip_endpoint == endpoint))
        row = self.get(int(new_id or 0))
        return row, self._reload(f"centralist {endpoint} added", actor)

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
    ) -> tuple[CentralistRow, ReloadOutcome]:
        current = self.get(centralist_id)
        self._services.centralists.update(
            current.endpoint,
            name=" ".join(name.split()),
            new_endpoint=endpoint.strip(),
            region_code=region_code,
            on_duty=on_duty,
            actor=actor,
            source=source,
        )
        row = self.get(centralist_id)
        return row, self._reload(f"centralist {row.endpoint} changed", actor)

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
