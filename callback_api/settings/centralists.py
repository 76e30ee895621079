"""Centralists in the panel: the list per region, and changes through the core service.

Every change goes through :class:`burgernet.centralists.CentralistService` (validation, audit,
routing snapshot), then asks the telephony service to render the Asterisk configuration again
and reload it (:func:`asterisk_conf.reload.request_reload`): a new or renamed endpoint can
register at once, a deactivated one no longer can.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from asterisk_conf.reload import request_reload
from burgernet.centralists import CentralistError, CentralistService
from burgernet.db import session_scope
from burgernet.models import Centralist, Region
from burgernet.services import Services

__all__ = [
    "CentralistError",
    "CentralistRow",
    "ReloadOutcome",
    "add",
    "edit",
    "get",
    "list_centralists",
    "set_active",
    "set_on_duty",
]


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
class ReloadOutcome:
    """How many telephony services heard the reload request (0: run `burgernet asterisk reload`)."""

    listeners: int


def list_centralists(sessions: sessionmaker[Session], region_code: str | None = None) -> list[CentralistRow]:
    with session_scope(sessions) as session:
        query = (
            select(
                Centralist.id,
                Centralist.sip_endpoint,
                Centralist.name,
                Region.code,
                Centralist.on_duty,
                Centralist.active,
                Centralist.sip_contact,
            )
            .join(Region, Region.id == Centralist.region_id)
            .order_by(Region.code, Centralist.active.desc(), Centralist.sip_endpoint)
        )
        if region_code:
            query = query.where(Region.code == region_code)
        return [CentralistRow(*row) for row in session.execute(query)]


def get(sessions: sessionmaker[Session], centralist_id: int) -> CentralistRow | None:
    with session_scope(sessions) as session:
        row = session.execute(
            select(
                Centralist.id,
                Centralist.sip_endpoint,
                Centralist.name,
                Region.code,
                Centralist.on_duty,
                Centralist.active,
                Centralist.sip_contact,
            )
            .join(Region, Region.id == Centralist.region_id)
            .where(Centralist.id == centralist_id)
        ).first()
        return CentralistRow(*row) if row else None


def _reload(context: Services, reason: str, actor: str) -> ReloadOutcome:
    return ReloadOutcome(request_reload(context.live, reason=reason, actor=actor))


def _service(context: Services) -> CentralistService:
    return context.centralists


def add(
    context: Services,
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
    _service(context).add(
        endpoint=endpoint,
        name=name,
        region_code=region_code,
        password=password or None,
        contact=(contact or "").strip() or None,
        actor=actor,
        source=source,
    )
    with session_scope(context.sessions) as session:
        new_id = session.scalar(select(Centralist.id).where(Centralist.sip_endpoint == endpoint))
    row = get(context.sessions, int(new_id or 0))
    assert row is not None
    return row, _reload(context, f"centralist {endpoint} added", actor)


def edit(
    context: Services,
    centralist_id: int,
    *,
    name: str,
    endpoint: str,
    region_code: str,
    on_duty: bool,
    actor: str,
    source: str,
) -> tuple[CentralistRow, ReloadOutcome]:
    current = get(context.sessions, centralist_id)
    if current is None:
        raise CentralistError(f"no centralist {centralist_id}")
    _service(context).update(
        current.endpoint,
        name=" ".join(name.split()),
        new_endpoint=endpoint.strip(),
        region_code=region_code,
        on_duty=on_duty,
        actor=actor,
        source=source,
    )
    row = get(context.sessions, centralist_id)
    assert row is not None
    return row, _reload(context, f"centralist {row.endpoint} changed", actor)


def set_on_duty(
    context: Services, centralist_id: int, on_duty: bool, *, actor: str, source: str
) -> ReloadOutcome:
    current = get(context.sessions, centralist_id)
    if current is None:
        raise CentralistError(f"no centralist {centralist_id}")
    _service(context).set_on_duty(current.endpoint, on_duty, actor=actor, source=source)
    # The dialplan's fallback pool lists the fallback region's centralists on duty.
    return _reload(context, f"centralist {current.endpoint} {'on' if on_duty else 'off'} duty", actor)


def set_active(
    context: Services, centralist_id: int, active: bool, *, actor: str, source: str
) -> ReloadOutcome:
    current = get(context.sessions, centralist_id)
    if current is None:
        raise CentralistError(f"no centralist {centralist_id}")
    _service(context).set_active(current.endpoint, active, actor=actor, source=source)
    verb = "reactivated" if active else "deactivated"
    return _reload(context, f"centralist {current.endpoint} {verb}", actor)
