"""Action codes end to end: a SIPp caller dials the free number and keys a code with RFC 4733
DTMF during the welcome, the way a phone dials ``tel:08000011,2468`` (a ~2 s pause after the
answer, then the digits as RTP telephone events); the real Asterisk hands them to our FastAGI and
the SIPp phone of that action's centralist rings. Every assertion reads the callback log."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import update

from asterisk_conf.sipp import caller_scenario
from burgernet import channel_vars as cv
from burgernet.actions import AreaSpec
from burgernet.db import session_scope
from burgernet.domain import AreaKind
from burgernet.models import Action
from testbed.ports import port_block
from testbed.sipp import SIPP, SippResult, _counts
from tests.telephony.conftest import PhoneSystem

pytestmark = pytest.mark.asterisk

UTRECHT = (5.1214, 52.0907)
AMSTERDAM = (4.8952, 52.3702)
PCAPS = Path("/usr/share/sip-tester")
# The pcaps SIPp ships carry RTP timestamps that rise with the digit (1 < 0 < 2 < ... < 9), and
# Asterisk drops an event whose timestamp is not newer than the last one's end (a duplicate end
# packet): so the test codes have rising digits, as any code would with real phones' own clocks.
CODE = "2468"
WRONG = "1357"
APP_PAUSE_MS = 2000  # the "," in tel:08000011,2468
KEY_GAP_MS = 300  # one pcap is 140 ms of events; SIPp stops a playback the next one starts


def e164(national: str) -> str:
    return "+31" + national[1:]


def rfc4733_keys(digits: str, first_after_ms: int) -> str:
    """SIPp actions that send ``digits`` as RFC 4733 events (payload type 101 of the offer)."""
    steps = []
    for n, digit in enumerate(digits):
        steps.append(f'\n  <pause milliseconds="{first_after_ms if n == 0 else KEY_GAP_MS}"/>')
        steps.append(
            f'\n  <nop><action><exec play_pcap_audio="{PCAPS / f"dtmf_2833_{digit}.pcap"}"/></action></nop>'
        )
    return "".join(steps)


def call_keying(phones: PhoneSystem, caller: str, digits: str, *, hold_ms: int) -> SippResult:
    """One call from ``caller`` that keys ``digits`` APP_PAUSE_MS after the answer."""
    scenario = caller_scenario(phones.settings.asterisk.free_number, caller, (), hold_ms, None)
    anchor = '\n  <recv request="BYE"'
    assert scenario.count(anchor) == 1
    scenario = scenario.replace(anchor, rfc4733_keys(digits, APP_PAUSE_MS) + anchor)
    local_port, media_port = port_block(), port_block()
    path = phones.sipp.workdir / f"uac-code-{local_port}.xml"
    path.write_text(scenario)
    stats = phones.sipp.workdir / f"uac-code-{local_port}.csv"
    command: Sequence[str] = [
        SIPP,
        f"127.0.0.1:{phones.settings.asterisk.sip_port}",
        "-sf", str(path), "-i", "127.0.0.1", "-p", str(local_port), "-mp", str(media_port),
        "-m", "1", "-l", "1", "-nostdin", "-timeout", "60s", "-timeout_error",
        "-trace_stat", "-stf", str(stats), "-recv_timeout", "30000",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, cwd=phones.sipp.workdir)
    successful, failed = _counts(stats)
    return SippResult(done.returncode, successful, failed, done.stdout[-2000:] + done.stderr[-2000:])


def console(phones: PhoneSystem) -> str:
    return phones.asterisk.instance.log_text("console.log")


def with_code(phones: PhoneSystem, action_id: int, code: str) -> None:
    """Give an action a known code (the service draws a random one), and tell routing."""
    with session_scope(phones.context.sessions) as session:
        session.execute(update(Action).where(Action.id == action_id).values(action_code=code))
    phones.context.live.invalidate_actions()


@pytest.fixture
def two_actions(phones: PhoneSystem) -> Iterator[tuple[str, int, int]]:
    """A caller registered in Amsterdam, an action around them (team c-am-1) and one in Utrecht
    (team c-mn-1) that they know by its code.

    The caller is placed already, so by default they would be put through without the welcome;
    these calls ask for it for every caller (routing.action_code_welcome = "always"; the service
    reads the setting per call)."""
    routing = phones.settings.routing
    routing.action_code_welcome = "always"
    caller = phones.participant(*AMSTERDAM, postcode="1012AB")
    around = AreaSpec(AreaKind.CIRCLE, centre=AMSTERDAM, radius_m=2000)
    here = phones.action("Witte bestelbus", around, ["c-am-1"], region="AM", action_type="vehicle")
    far = AreaSpec(AreaKind.CIRCLE, centre=UTRECHT, radius_m=2000)
    there = phones.action("Vermist meisje", far, ["c-mn-1"], action_type="missing_child")
    with_code(phones, here, "3579")
    with_code(phones, there, CODE)
    phones.phones({})
    yield caller, here, there
    routing.action_code_welcome = "when_needed"


def test_a_code_keyed_during_the_welcome_rings_that_actions_centralist(
    phones: PhoneSystem, two_actions: tuple[str, int, int]
) -> None:
    caller, _, there = two_actions
    seen = len(console(phones))
    result = call_keying(phones, caller, CODE, hold_ms=9000)
    assert result.successful == 1, result.output
    call = phones.logged_call(e164(caller))
    # The Utrecht action's own centralist answered, though the caller is in Amsterdam.
    assert (call.action_id, call.centralist, call.outcome) == (there, "c-mn-1", cv.OUTCOME_CONNECTED)
    assert call.route_reason is not None and f"keyed action code {CODE}" in call.route_reason
    # [burgernet-route] logs BN_ACTION_CODE, and the welcome played (the prompt file was there).
    logged = console(phones)[seen:]
    assert f"chosen by action code {CODE}" in logged and "code-welcome" in logged


def test_a_wrong_code_gets_the_message_and_the_usual_route(
    phones: PhoneSystem, two_actions: tuple[str, int, int]
) -> None:
    caller, here, _ = two_actions
    seen = len(console(phones))
    result = call_keying(phones, caller, WRONG, hold_ms=14_000)
    assert result.successful == 1, result.output
    call = phones.logged_call(e164(caller))
    assert (call.action_id, call.centralist, call.outcome) == (here, "c-am-1", cv.OUTCOME_CONNECTED)
    assert call.route_reason is not None and "code" not in call.route_reason
    logged = console(phones)[seen:]
    assert "code-unknown" in logged and "Unable to open" not in logged
    assert not re.search(r"chosen by action code \d", logged)


def test_a_caller_without_a_code_is_routed_after_the_welcome(
    phones: PhoneSystem, two_actions: tuple[str, int, int]
) -> None:
    caller, here, _ = two_actions
    seen = len(console(phones))
    result = phones.call(caller, hold_ms=9000)
    assert result.successful == 1, result.output
    call = phones.logged_call(e164(caller))
    assert (call.action_id, call.centralist) == (here, "c-am-1")
    # It heard the welcome (and nothing about a code) before the ringing.
    logged = console(phones)[seen:]
    assert "code-welcome" in logged and "code-unknown" not in logged
