"""A real Asterisk node behind the edge: the carrier's call goes through Kamailio to the node, and the
node reaches the centralist's phone, which registered at Kamailio, through Kamailio again.

The node's configuration is asterisk_conf's, unchanged: its trunk is "whoever sends from
asterisk.trunk_host" (127.0.0.1 here, which is where Kamailio sends from), and the centralist's
contact is Kamailio's address. FastAGI is down on purpose: the dialplan's failure path rings the
region's pool, so the call needs nothing but the node and the edge.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from asterisk_conf.render import AsteriskPlan
from asterisk_conf.sandbox import AsteriskInstall
from kamailio_conf.process import KamailioProcess
from kamailio_conf.render import render
from testbed.ports import port_block
from testbed.sipp_edge import EdgeSipp, call_scenario, register_scenario
from tests.asterisk.conftest import StartAsterisk, asterisk_settings, centralist

from .conftest import (
    EDGE_HOST,
    FREE_NUMBER,
    PHONE_HOST,
    TRUNK_HOST,
    edge_plan,
    edge_settings,
    kamcmd,
    sip_password,
)

pytestmark = pytest.mark.asterisk


def test_a_call_crosses_the_edge_to_an_asterisk_node_and_back_to_a_registered_phone(
    tmp_path: Path, asterisk_install: AsteriskInstall, start_asterisk: StartAsterisk
) -> None:
    edge_port = port_block()
    # The node: the centralist's contact is the edge, where the phone registers.
    node_settings = asterisk_settings(tmp_path / "node", asterisk_install, free_number=FREE_NUMBER)
    plan = AsteriskPlan((centralist("c-mn-1", port=edge_port),), "MN")
    start_asterisk(plan, node_settings)
    node_port = node_settings.asterisk.sip_port

    settings = edge_settings(tmp_path, edge_port, (node_port,))
    edge = render(tmp_path / "edge", settings, edge_plan())
    kamailio = KamailioProcess(edge, tmp_path / "edge" / "kamailio.log")
    sipp = EdgeSipp(EDGE_HOST, edge_port)
    kamailio.start()
    try:
        phone_port = port_block()
        sipp.answerer("phone", PHONE_HOST, phone_port, port_block())
        registered = sipp.run(
            "register",
            register_scenario("c-mn-1", sip_password("c-mn-1"), f"sip:c-mn-1@{PHONE_HOST}:{phone_port}", 200),
            host=PHONE_HOST,
            port=port_block(),
            media_port=port_block(),
        )
        assert registered.ok, registered.output

        # The real node answers the edge's OPTIONS probes: it stays active.
        deadline = time.monotonic() + 5
        while "FLAGS: AP" not in kamcmd(kamailio, "dispatcher.list") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "FLAGS: AP" in kamcmd(kamailio, "dispatcher.list"), kamailio.log_tail()

        call = sipp.run(
            "carrier",
            call_scenario(hold_ms=6000),
            host=TRUNK_HOST,
            port=port_block(),
            media_port=port_block(),
            service=FREE_NUMBER,
            timeout_s=30,
        )
        assert call.ok, call.output + kamailio.log_tail()
        # The node rang the centralist through the edge: the phone got the INVITE from Kamailio,
        # with Kamailio's Record-Route, for the endpoint the node dialled.
        deadline = time.monotonic() + 5
        while "INVITE sip:c-mn-1@" not in sipp.messages("phone") and time.monotonic() < deadline:
            time.sleep(0.2)
        phone_side = sipp.messages("phone")
        assert "INVITE sip:c-mn-1@" in phone_side, kamailio.log_tail()
        assert f"Record-Route: <sip:{EDGE_HOST}:{edge_port};lr>" in phone_side
    finally:
        sipp.cleanup()
        kamailio.stop()
