"""The free number end to end: SIPp callers → Asterisk → our FastAGI → SIPp centralist phones.

Every assertion reads the callback log the system itself wrote (FastAGI + AMI tracker).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from burgernet import channel_vars as cv
from burgernet.actions import AreaSpec
from burgernet.domain import AreaKind
from tests.telephony.conftest import PhoneSystem

pytestmark = pytest.mark.asterisk

UTRECHT = (5.1214, 52.0907)
AMSTERDAM = (4.8952, 52.3702)


def e164(national: str) -> str:
    return "+31" + national[1:]


def test_known_caller_reaches_the_owning_centralist(phones: PhoneSystem) -> None:
    caller = phones.participant(*UTRECHT)
    action = phones.action(
        "Vermist meisje", AreaSpec(AreaKind.CIRCLE, centre=UTRECHT, radius_m=2000), ["c-mn-1", "c-mn-2"]
    )
    phones.phones({})
    result = phones.call(caller, hold_ms=7000)
    assert result.successful == 1, result.output
    call = phones.logged_call(e164(caller))
    assert (call.action_id, call.centralist, call.outcome) == (action, "c-mn-1", cv.OUTCOME_CONNECTED)
    assert call.answered_at is not None and call.kind == cv.CALL_KIND_INBOUND
    # Our generated prompt really played through Asterisk while the phone rang (the music-on-hold
    # class of musiconhold.conf plays it; a file it cannot open is logged "Unable to open file"),
    # and no prompt was missing.
    console = phones.asterisk.instance.log_text("console.log")
    assert "Started music on hold, class 'burgernet-connecting-nl'" in console
    assert "Unable to open" not in console and "File does not exist" not in console


def test_busy_owner_passes_the_call_to_the_second(phones: PhoneSystem) -> None:
    caller = phones.participant(*UTRECHT)
    action = phones.action(
        "Vermiste man", AreaSpec(AreaKind.CIRCLE, centre=UTRECHT, radius_m=2000), ["c-mn-1", "c-mn-2"]
    )
    phones.phones({"c-mn-1": "busy"})
    assert phones.call(caller, hold_ms=7000).successful == 1
    call = phones.logged_call(e164(caller))
    assert (call.action_id, call.centralist, call.outcome) == (action, "c-mn-2", cv.OUTCOME_CONNECTED)


def test_unanswered_owners_overflow_to_the_region_pool(phones: PhoneSystem) -> None:
    caller = phones.participant(*UTRECHT)
    action = phones.action(
        "Verdachte", AreaSpec(AreaKind.CIRCLE, centre=UTRECHT, radius_m=2000), ["c-mn-1", "c-mn-2"]
    )
    phones.phones({"c-mn-1": "no-answer", "c-mn-2": "no-answer"})
    assert phones.call(caller, hold_ms=14_000).successful == 1  # 3 s + 3 s of ringing first
    call = phones.logged_call(e164(caller))
    assert (call.action_id, call.centralist, call.outcome) == (action, "c-mn-3", cv.OUTCOME_OVERFLOWED)


def test_everyone_busy_records_a_tip_and_a_call_back_request(phones: PhoneSystem) -> None:
    caller = phones.participant(*UTRECHT)
    action = phones.action(
        "Gestolen auto",
        AreaSpec(AreaKind.CIRCLE, centre=UTRECHT, radius_m=2000),
        ["c-mn-1"],
        action_type="vehicle",
    )
    phones.phones({"c-mn-1": "busy", "c-mn-2": "busy", "c-mn-3": "busy"})
    # Speak once the beep has gone (after "connecting", "all busy" and the instructions), then #.
    result = phones.call(caller, speak_at_ms=16_000, digits=[(8000, "#")], hold_ms=30_000)
    assert result.successful == 1, result.output  # Asterisk thanked the caller and hung up
    call = phones.logged_call(e164(caller))
    assert (call.action_id, call.outcome) == (action, cv.OUTCOME_TIP_LEFT)
    tips = phones.service.service.services.calls.tips(action)  # type: ignore[union-attr]
    assert len(tips) == 1 and tips[0].callback_number == e164(caller)
    recording = Path(tips[0].recording_path)
    assert recording.is_file() and recording.stat().st_size > 8000  # seconds of real audio, not a header
    assert recording.parent.name == str(action)


def test_unknown_caller_keys_in_a_postcode(phones: PhoneSystem) -> None:
    action = phones.action("Inbraak", AreaSpec(AreaKind.POSTCODES, postcodes=("3511",)), ["c-mn-2"])
    phones.phones({})
    caller = "0201234567"  # a landline nobody registered
    result = phones.call(caller, digits=[(5500, "3"), (150, "5"), (150, "1"), (150, "1")], hold_ms=13_000)
    assert result.successful == 1, result.output
    call = phones.logged_call(e164(caller))
    assert (call.action_id, call.centralist, call.outcome) == (action, "c-mn-2", cv.OUTCOME_CONNECTED)
    assert call.participant_id is None


def test_two_actions_offer_a_menu_and_the_key_chooses(phones: PhoneSystem) -> None:
    caller = phones.participant(*UTRECHT)
    first = phones.action(
        "Vermist kind",
        AreaSpec(AreaKind.CIRCLE, centre=UTRECHT, radius_m=2000),
        ["c-mn-1"],
        action_type="missing_child",
    )
    second = phones.action(
        "Getuigen gezocht",
        AreaSpec(AreaKind.CIRCLE, centre=UTRECHT, radius_m=5000),
        ["c-mn-3"],
        action_type="information",
    )
    assert first != second
    phones.phones({})
    # The menu lists the missing child first (more urgent); key 2 picks the witness appeal.
    result = phones.call(caller, digits=[(6500, "2")], hold_ms=13_000)
    assert result.successful == 1, result.output
    call = phones.logged_call(e164(caller))
    assert (call.action_id, call.centralist) == (second, "c-mn-3")


def test_no_action_gets_a_clear_message(phones: PhoneSystem) -> None:
    caller = phones.participant(*AMSTERDAM, postcode="1012AB")
    phones.action("Elders", AreaSpec(AreaKind.CIRCLE, centre=UTRECHT, radius_m=2000), ["c-mn-1"])
    phones.phones({})
    result = phones.call(caller, hold_ms=40_000)  # Asterisk hangs up after the message
    assert result.successful == 1, result.output
    call = phones.logged_call(e164(caller))
    assert call.outcome == cv.OUTCOME_NO_ACTION and call.action_id is None and call.centralist is None


def test_with_fastagi_down_the_call_still_reaches_the_pool(phones: PhoneSystem) -> None:
    caller = phones.participant(*UTRECHT)
    phones.action("Vermiste vrouw", AreaSpec(AreaKind.CIRCLE, centre=UTRECHT, radius_m=2000), ["c-am-1"])
    phones.phones({})
    phones.service.stop_fastagi()
    try:
        result = phones.call(caller, hold_ms=12_000)
    finally:
        phones.service.restart_fastagi()
    assert result.successful == 1, result.output
    call = phones.logged_call(e164(caller))  # logged by the AMI tracker alone
    assert call.centralist in {"c-mn-1", "c-mn-2", "c-mn-3"}  # the fallback region's pool
    assert call.outcome == cv.OUTCOME_CONNECTED and call.action_id is None


def test_a_new_centralist_reaches_asterisk_on_reload(phones: PhoneSystem) -> None:
    from asterisk_conf.instance import prepare
    from asterisk_conf.plan import plan_from_database
    from burgernet.db import session_scope

    phones.context.centralists.add(
        endpoint="c-mn-9",
        name="Nieuw",
        region_code="MN",
        contact=None,
        actor="test",
    )
    try:
        with session_scope(phones.context.sessions) as session:
            plan = plan_from_database(session, phones.settings)
        prepare(phones.settings, plan)  # renders into the running instance's folder
        phones.asterisk.instance.rx("core reload")
        deadline = time.monotonic() + 10
        while (
            "c-mn-9" not in phones.asterisk.instance.rx("pjsip show endpoints")
            and time.monotonic() < deadline
        ):
            time.sleep(0.2)
        assert "c-mn-9" in phones.asterisk.instance.rx("pjsip show endpoint c-mn-9")
    finally:
        phones.context.centralists.set_on_duty("c-mn-9", False, actor="test")
