"""Recipient selection agrees with a brute-force check of every participant."""

from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import box
from sqlalchemy import select

from broadcasting.recipients import select_recipients
from burgernet import demo
from burgernet.context import Context
from burgernet.db import session_scope
from burgernet.domain import Channel
from burgernet.models import Participant
from routing import (
    Area,
    Caller,
    CallerKind,
    CircleArea,
    LinearScanIndex,
    Location,
    NationalArea,
    PolygonArea,
    PostcodeArea,
)
from routing.model import ActiveAction

AREAS: list[Area] = [
    CircleArea(Location(5.1214, 52.0907), 15_000),
    PolygonArea(box(4.7, 52.2, 5.0, 52.45)),
    PostcodeArea(frozenset({"3511", "3512", "1011AB"})),
    NationalArea(),
]


@pytest.mark.parametrize("area", AREAS, ids=["circle", "polygon", "postcodes", "national"])
def test_selection_matches_brute_force(bn_context: Context, area: Area) -> None:
    with session_scope(bn_context.sessions) as session:
        demo.seed_participants(session, 20_000, np.random.default_rng(2))
        rows = session.execute(
            select(
                Participant.id,
                Participant.lon,
                Participant.lat,
                Participant.postcode,
                Participant.opted_out,
                Participant.channel_sms,
            )
        ).all()
        recipients = select_recipients(session, area)
    scan = LinearScanIndex([ActiveAction(1, "x", "information", 1, "MN", area, ())])
    expected_sms = sorted(
        pid
        for pid, lon, lat, postcode, opted_out, sms in rows
        if sms
        and not opted_out
        and scan.covering(Caller(kind=CallerKind.KNOWN, location=Location(lon, lat), postcode=postcode))
    )
    assert sorted(recipients.by_channel[Channel.SMS].tolist()) == expected_sms
    assert len(expected_sms) > 0
    assert recipients.people() >= len(expected_sms)
