"""The edge's plan from the database: each active centralist's SIP account and digest (HA1)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from burgernet.models import Centralist
from kamailio_conf.render import CentralistCredential, KamailioPlan


def plan_from_database(session: Session) -> KamailioPlan:
    # A deactivated centralist has no SIP account any more; one without a password yet
    # (no digest) cannot register, so it is left out rather than given a usable entry.
    rows = session.execute(
        select(Centralist.sip_endpoint, Centralist.sip_md5_cred)
        .where(Centralist.active, Centralist.sip_md5_cred.is_not(None))
        .order_by(Centralist.sip_endpoint)
    )
    return KamailioPlan(tuple(CentralistCredential(endpoint, ha1) for endpoint, ha1 in rows if ha1))
