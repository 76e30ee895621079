"""The call card, end to end: a SIPp caller, the real Asterisk and FastAGI, a SIPp phone as c-mn-1,
and c-mn-1's own browser (Chromium). Here rather than in tests/e2e/ so that it shares the session's
one phone system with the other telephony tests (a second one would clash with it).

The phone rings for 2.2 seconds before it answers. While it rings, the logged-in c-mn-1 sees the
card (the action, the caller's number, known participant, the route reason); the INVITE the phone
got names the action as the caller's name (From and P-Asserted-Identity) and carries
``X-Burgernet-Action``. When the call ends, the card closes into a link to the call's record.
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import select, update

from asterisk_conf.sipp import SDP
from burgernet.actions import AreaSpec
from burgernet.db import session_scope
from burgernet.domain import AreaKind
from burgernet.models import Call, Centralist, User
from callback_api import app as panel_app
from callback_api import live_events
from callback_api.auth.services import create_user
from testbed.browser import PanelServer, offline_context
from testbed.ports import free_port, port_block
from testbed.sipp import SIPP, SippResult
from tests.e2e.conftest import PASSWORD, browser, playwright  # noqa: F401 (fixtures)
from tests.e2e.test_accessibility import AXE, axe_violations, blocking
from tests.telephony.conftest import PhoneSystem

pytestmark = pytest.mark.asterisk

UTRECHT = (5.1214, 52.0907)
PHONE = "c-mn-1"
RING_MS = 2200  # below the test system's 3 s owner ring time (asterisk.owner_ring_seconds)

# c-mn-1's phone: checks the INVITE (SIPp fails the call when an <ereg check_it> finds nothing),
# rings RING_MS, answers, and waits for the caller's BYE.
_PHONE_SCENARIO = f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="desk phone">
  <recv request="INVITE">
    <action>
      <ereg regexp="X-Burgernet-Action: [0-9]+" search_in="msg" check_it="true" assign_to="header"/>
      <ereg regexp="&quot;BN[0-9]+ [^&quot;]+&quot;" search_in="hdr" header="From:"
            check_it="true" assign_to="name"/>
      <ereg regexp="&quot;BN[0-9]+ [^&quot;]+&quot;" search_in="hdr" header="P-Asserted-Identity:"
            check_it="true" assign_to="pai"/>
      <log message="INVITE header=[$header] from=[$name] pai=[$pai]"/>
    </action>
  </recv>
  <send><![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Length: 0

]]></send>
  <pause milliseconds="{RING_MS}"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Type: application/sdp
Content-Length: [len]

{SDP}]]></send>
  <recv request="ACK"/>
  <recv request="BYE"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
</scenario>
"""


def start_desk_phone(system: PhoneSystem, workdir: Path) -> subprocess.Popen[bytes]:
    scenario = workdir / "desk-phone.xml"
    scenario.write_text(_PHONE_SCENARIO)
    process = subprocess.Popen(
        [
            SIPP,
            "-m",
            "1",
            "-sf",
            str(scenario),
            "-i",
            "127.0.0.1",
            "-p",
            str(system.phone_ports[PHONE]),
            "-mp",
            str(port_block()),
            "-nostdin",
            "-trace_err",
            "-error_file",
            str(workdir / "desk-phone.err"),
            "-trace_logs",
            "-log_file",
            str(workdir / "desk-phone.log"),
            "-trace_stat",
            "-stf",
            str(workdir / "desk-phone.csv"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=workdir,
    )
    system.sipp.processes.append(process)
    return process


@pytest.fixture
def desk_panel(phones: PhoneSystem, monkeypatch: pytest.MonkeyPatch) -> Iterator[PanelServer]:
    """The panel on the phone system's database and Redis; user c-mn-1 linked to centralist c-mn-1."""
    monkeypatch.setattr(live_events, "HEARTBEAT_SECONDS", 0.5)
    context = phones.context
    with session_scope(context.sessions) as session:
        centralist = session.scalar(select(Centralist.id).where(Centralist.sip_endpoint == PHONE))
    with session_scope(context.sessions) as session:
        exists = session.scalar(select(User.id).where(User.username == PHONE))
    if exists is None:
        create_user(
            context.sessions,
            username=PHONE,
            role="centralist",
            password=PASSWORD,
            actor="test",
            source="test",
        )
    with session_scope(context.sessions) as session:
        session.execute(update(User).where(User.username == PHONE).values(centralist_id=centralist))
    app = panel_app.create_app(context.settings, context=context)
    with PanelServer(app, free_port()) as server:
        yield server


def test_the_card_pops_up_before_the_phone_answers_and_the_phone_knows_the_action(
    phones: PhoneSystem,
    desk_panel: PanelServer,
    browser: Browser,  # noqa: F811
    tmp_path: Path,
) -> None:
    caller = phones.participant(*UTRECHT, postcode="3511AB")
    action = phones.action(
        "Vermist meisje, 8 jaar", AreaSpec(AreaKind.CIRCLE, centre=UTRECHT, radius_m=2000), [PHONE]
    )
    phone = start_desk_phone(phones, tmp_path)

    context, _refused = offline_context(browser, desk_panel.url)
    context.set_default_timeout(10_000)
    context.add_init_script(path=str(AXE))
    page = context.new_page()
    try:
        page.goto("/login")
        page.get_by_label("Username").fill(PHONE)
        page.get_by_label("Password").fill(PASSWORD)
        # The desk reads the calls on its phone when its live stream opens: then it is open.
        with page.expect_response(lambda response: response.url.endswith("/desk/current.json")):
            page.get_by_role("button", name="Log in").click()
        # A centralist lands on the desk.
        expect(page.get_by_role("heading", name="Desk", exact=True)).to_be_visible()
        expect(page.locator("#desk-status")).to_contain_text(PHONE)

        results: list[SippResult] = []
        calling = threading.Thread(target=lambda: results.append(phones.call(caller, hold_ms=9000)))
        calling.start()

        card = page.locator("article.call-card")
        expect(card).to_be_visible(timeout=10_000)
        # The phone has not answered yet: nobody answered the call in the call log.
        with session_scope(phones.context.sessions) as session:
            answered = session.scalar(
                select(Call.answered_at).where(Call.caller_number == "+31" + caller[1:])
            )
        assert answered is None
        expect(card).to_have_attribute("data-state", "ringing")
        expect(card.locator(".title")).to_have_text(f"BN{action} Vermist meisje, 8 jaar")
        expect(card.locator(".caller")).to_have_text("+31" + caller[1:])
        expect(card.locator(".participant")).to_have_text(
            "Known participant, postcode 3511AB, inside the area"
        )
        expect(card.locator(".reason")).not_to_be_empty()
        expect(card).to_have_attribute("data-loaded", "yes")
        expect(card.locator(".card-map path.leaflet-interactive")).to_be_visible()  # the circle
        assert blocking(axe_violations(page)) == []  # the card is accessible too

        # Answered: the card stays up while the call lasts.
        expect(card).to_have_attribute("data-state", "answered", timeout=RING_MS + 3000)
        calling.join(30)
        assert results and results[0].successful == 1, results
        # Ended: the card closes into the call's record.
        record = page.locator("#records a.record").first
        expect(record).to_be_visible(timeout=10_000)
        expect(card).to_have_count(0)
        expect(record).to_have_attribute("href", re.compile(rf"/actions/{action}#calls-title$"))
        expect(record).to_contain_text("connected")
    finally:
        context.close()
        # For whoever reads a failure: what Asterisk did with the call.
        (tmp_path / "asterisk-console.log").write_text(phones.asterisk.instance.log_text("console.log"))

    phone.wait(timeout=15)
    log = (tmp_path / "desk-phone.log").read_text()
    assert f"header=X-Burgernet-Action: {action}" in log, log
    label = f'"BN{action} Vermist meisje 8 jaar"'  # the comma is not allowed on the phone
    assert f"from={label}" in log and f"pai={label}" in log, log
