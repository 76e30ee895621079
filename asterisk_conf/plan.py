"""The Asterisk plan from the database: every centralist endpoint, and the fallback pool."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from asterisk_conf.render import AsteriskPlan, CentralistEndpoint
from burgernet.models import Centralist, Region
from burgernet.settings import Settings


def plan_from_database(session: Session, settings: Settings) -> AsteriskPlan:
    rows = session.execute(
        select(
            Centralist.sip_endpoint,
            Centralist.sip_md5_cred,
            Region.code,
            Centralist.name,
            Centralist.on_duty,
            Centralist.sip_contact,
        )
        .join(Region, Region.id == Centralist.region_id)
        .where(Centralist.active)  # a deactivated centralist has no SIP account any more
        .order_by(Centralist.sip_endpoint)
    )
    return AsteriskPlan(
        tuple(
            CentralistEndpoint(endpoint, md5_cred, region, name, bool(on_duty), contact)
            for endpoint, md5_cred, region, name, on_duty, contact in rows
        ),
        settings.asterisk.fallback_region,
    )
