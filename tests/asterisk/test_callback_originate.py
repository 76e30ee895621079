"""Click-to-call against the real Asterisk: the worklist's call-back (burgernet/callbacks.py +
ivr/callback_dial.py) rings the centralist's SIPp phone first and, only once it answered, the
citizen's SIPp phone over the trunk, shown the alert calls' fixed caller ID."""

from __future__ import annotations

import re
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from asterisk_conf.render import AsteriskPlan
from asterisk_conf.sandbox import AsteriskInstall
from burgernet import channel_vars as cv
from burgernet.actions import AreaSpec
from burgernet.callbacks import CallbackDialFailed, CallbackService, WorklistScope
from burgernet.calls import CallLog
from burgernet.db import session_scope
from burgernet.domain import AreaKind
from burgernet.models import Call, Centralist
from composition.context import Context
from ivr.callback_dial import AmiCallbackDialer
from testbed.ports import free_port, port_block
from testbed.sipp import SIPP
from testbed.sipp_phone import phone_scenario
from tests.asterisk.conftest import StartAsterisk, asterisk_settings, centralist
from tests.asterisk.test_dialplan_contract import _context_body

CITIZEN = "+31612345670"
# SIPp's -trace_msg log: a line of dashes with the time, then the message.
_STAMP = re.compile(r"^-{20,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)", re.MULTILINE)


def test_the_callback_context_dials_the_trunk_with_the_alert_caller_id_globals() -> None:
    body = _context_body(cv.CTX_CALLBACK)
    for name in (
        cv.GLOBAL_ALERT_CALLER_NAME,
        cv.GLOBAL_ALERT_CALLER_ID,
        cv.VAR_CALLBACK_ITEM,
        cv.VAR_ACTION_ID,
    ):
        assert "${" + name + "}" in body, name
    assert "@trunk" in body and cv.GLOBAL_ALERT_CALLER_ID in cv.GLOBALS and cv.CTX_CALLBACK in cv.CONTEXTS


def _traced_phone(workdir: Path, name: str, port: int, behaviour: str) -> subprocess.Popen[bytes]:
    """A SIPp phone that takes one call and logs every SIP message it sees, with times."""
    scenario = workdir / f"{name}.xml"
    scenario.write_text(phone_scenario(behaviour, 300))
    return subprocess.Popen(
        [SIPP, "-m", "1", "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(port),
         "-mp", str(port_block()), "-nostdin", "-trace_msg",
         "-message_file", str(workdir / f"{name}.msg")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=workdir,
    )  # fmt: skip


def _first_invite(log: Path) -> tuple[datetime, str]:
    """When the phone received its INVITE, and the INVITE's text."""
    text = log.read_text(errors="replace")
    for match in _STAMP.finditer(text):
        message = text[match.end() : text.find("-----", match.end() + 1)]
        if "\nINVITE sip:" in message or message.lstrip().startswith("INVITE sip:"):
            return datetime.fromisoformat(match.group(1)), message
    raise AssertionError(f"no INVITE in {log.name}:\n{text[:2000]}")


@pytest.fixture
def world(bn_context: Context) -> tuple[Context, int, int]:
    """An active action in MN with a tip from CITIZEN on the worklist; c-mn-1's id."""
    view = bn_context.actions.create(
        action_type="missing_child",
        title="Vermist meisje",
        region_code="MN",
        area=AreaSpec(AreaKind.CIRCLE, centre=(5.1214, 52.0907), radius_m=2000),
        team=["c-mn-1"],
        actor="test",
    )
    bn_context.actions.start(view.id, actor="test")
    log = CallLog(bn_context.sessions)
    log.open_call("cb.1", caller_number=CITIZEN, action_id=view.id, region_code="MN", reason="test")
    log.register_tip("cb.1", action_id=view.id, recording_path="/nonexistent.wav", callback_number=CITIZEN)
    with session_scope(bn_context.sessions) as session:
        centralist_id = session.scalar(select(Centralist.id).where(Centralist.sip_endpoint == "c-mn-1"))
    assert centralist_id is not None
    return bn_context, view.id, int(centralist_id)


def test_click_to_call_rings_the_centralist_first_then_the_citizen_with_the_alert_caller_id(
    start_asterisk: StartAsterisk,
    asterisk_install: AsteriskInstall,
    tmp_path: Path,
    world: tuple[Context, int, int],
) -> None:
    context, action_id, centralist_id = world
    phone_port = free_port()
    settings = asterisk_settings(
        tmp_path / "asterisk", asterisk_install, alert_caller_id="0881234567", alert_caller_name="Burgernet"
    )
    asterisk = start_asterisk(AsteriskPlan((centralist("c-mn-1", port=phone_port),), "MN"), settings)
    centralist_phone = _traced_phone(tmp_path, "centralist", phone_port, "answer")
    # The citizen answers, talks two seconds and hangs up; Asterisk then ends the centralist's leg.
    citizen_phone = _traced_phone(tmp_path, "citizen", settings.asterisk.trunk_port, "answer-hangup-2000")
    time.sleep(0.3)
    service = CallbackService(
        context.sessions,
        context.live,
        AmiCallbackDialer(settings),
        claim_minutes=10,
        call_horizon_hours=72,
    )
    mine = WorklistScope(False, centralist_id)
    [item] = service.worklist(mine)
    service.claim(item.id, mine, actor="centralist", source="test")
    try:
        unique_id = service.call(
            item.id, mine, centralist_id=centralist_id, actor="centralist", source="test"
        )
        assert citizen_phone.wait(30) == 0
        assert centralist_phone.wait(15) == 0
    finally:
        for process in (centralist_phone, citizen_phone):
            if process.poll() is None:
                process.kill()
    rang_centralist, to_centralist = _first_invite(tmp_path / "centralist.msg")
    rang_citizen, to_citizen = _first_invite(tmp_path / "citizen.msg")
    # Order: the citizen's phone rings only after the centralist's answered (300 ms of ringing).
    assert (rang_citizen - rang_centralist).total_seconds() >= 0.3
    assert "INVITE sip:c-mn-1@" in to_centralist
    # The centralist sees what the call is and whom it calls; the citizen sees Burgernet's number.
    assert re.search(rf'^From: "BN{action_id} terugbellen" <sip:0612345670@', to_centralist, re.MULTILINE)
    assert "INVITE sip:0612345670@" in to_citizen
    assert re.search(r'^From: "Burgernet" <sip:0881234567@', to_citizen, re.MULTILINE), to_citizen
    with session_scope(context.sessions) as session:
        call = session.scalar(select(Call).where(Call.unique_id == unique_id))
        assert call is not None
        assert (call.kind, call.action_id, call.centralist_id) == ("callback", action_id, centralist_id)
    # The item and the action reached the dialplan through the variables the Originate set.
    assert f"call-back {item.id} of action {action_id} to 0612345670" in asterisk.instance.log_text(
        "console.log"
    )
    # The result ends the item.
    done = service.finish(item.id, mine, result="reached", actor="centralist", source="test")
    assert done.result == "reached"


def test_an_unreachable_asterisk_is_a_clear_error_and_the_call_is_logged_failed(
    tmp_path: Path, asterisk_install: AsteriskInstall, world: tuple[Context, int, int]
) -> None:
    context, _action_id, centralist_id = world
    nobody = asterisk_settings(tmp_path / "nobody", asterisk_install)  # nothing listens on its AMI port
    service = CallbackService(
        context.sessions,
        context.live,
        AmiCallbackDialer(nobody, connect_timeout=1.0),
        claim_minutes=10,
        call_horizon_hours=72,
    )
    mine = WorklistScope(False, centralist_id)
    [item] = service.worklist(mine)
    service.claim(item.id, mine, actor="centralist", source="test")
    with pytest.raises(CallbackDialFailed, match="no AMI connection"):
        service.call(item.id, mine, centralist_id=centralist_id, actor="centralist", source="test")
    with session_scope(context.sessions) as session:
        outcome = session.scalar(select(Call.outcome).where(Call.kind == "callback"))
    assert outcome == "failed"
    assert service.item(item.id, mine).claimed_by == "centralist"  # still theirs to try again
