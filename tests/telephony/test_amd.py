"""Answering machines on alert calls, end to end: the worker places the call through the real
Asterisk's trunk, a SIPp phone answers and speaks (a voicemail greeting with its beep, or a
person saying "hallo?"), Asterisk's AMD() decides, and the delivery ends "machine" or
"answered". The machine gets the short message only after its beep; the person keeps the menu."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from burgernet.actions import AreaSpec
from burgernet.domain import AreaKind
from testbed.ports import port_block
from testbed.sipp_voice import voice_phone
from testbed.voices import MACHINES, PEOPLE, make
from tests.telephony.conftest import PhoneSystem
from tests.telephony.test_alert_calls import AlertCalls, alert_call_worker

_STAMP = r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})\]"


@pytest.fixture
def amd_calls(phones: PhoneSystem) -> Iterator[AlertCalls]:
    """The alert-call worker of test_alert_calls, with answering-machine detection on (the
    default; the shared phone system has it off for the tests written before it)."""
    settings = phones.settings.model_copy(
        update={
            "broadcast": phones.settings.broadcast.model_copy(
                update={"voice_ring_seconds": 5, "retry_base_seconds": 0.5, "max_attempts": 2}
            ),
            "amd": phones.settings.amd.model_copy(update={"enabled": True}),
        }
    )
    with alert_call_worker(phones, settings) as calls:
        yield calls


def _logged_at(console: str, marker: str) -> datetime:
    for line in console.splitlines():
        stamp = re.match(_STAMP, line)
        if stamp and marker in line:
            return datetime.fromisoformat(stamp.group(1))
    raise AssertionError(f"{marker!r} is not in Asterisk's log")


def _console_once(phones: PhoneSystem, marker: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    console: str = phones.asterisk.instance.log_text("console.log")
    while marker not in console and time.monotonic() < deadline:
        time.sleep(0.2)
        console = phones.asterisk.instance.log_text("console.log")
    return console


def test_a_voicemail_is_detected_and_gets_the_short_message_after_its_beep(
    amd_calls: AlertCalls, tmp_path: Path
) -> None:
    phones = amd_calls.phones
    greeting = make(MACHINES[0], tmp_path)  # "Hallo, u spreekt met de voicemail van Jan de Vries..."
    amd_calls.participant()
    voice_phone(
        phones.sipp, "trunk", phones.settings.asterisk.trunk_port, port_block(), greeting.alaw, hold_ms=45_000
    )

    action_id = amd_calls.start_action()
    delivery = amd_calls.delivery(action_id, lambda d: d.status not in ("queued", "sending"))
    # Never called again: the message is on the machine.
    assert (delivery.status, delivery.attempts) == ("machine", 1), delivery.last_error
    detail = delivery.last_error or ""
    assert re.fullmatch(r"answering machine: AMD \w+-\S* in \d+ ms", detail), detail

    # Asterisk hangs up once the machine message is played.
    answered = phones.sipp.phone_result("trunk", timeout_s=60)
    assert (answered.returncode, answered.successful) == (0, 1), answered.output
    channel = delivery.provider_ref
    console = _console_once(phones, "PLAYBACKSTATUS=")
    assert "AMD on PJSIP/trunk-" in console and f"delivery {delivery.id}: MACHINE" in console
    # The greeting and its beep were over (the silence came, not the time-out) before the message.
    assert "machine message on PJSIP/trunk-" in console
    assert f"delivery {delivery.id} after WAITSTATUS=SILENCE" in console
    assert "PLAYBACKSTATUS=SUCCESS" in console
    answered_at = _logged_at(console, f"alert call, action {action_id}, delivery {delivery.id}")
    message_at = _logged_at(console, f"delivery {delivery.id} after WAITSTATUS=SILENCE")
    beep_over_s = (greeting.voice.lead_ms + greeting.speech_ms) / 1000
    assert (message_at - answered_at).total_seconds() >= beep_over_s
    # The machine heard the short message, not the alert and its menu.
    assert "/nl/burgernet/alert-menu" not in console.split(f"delivery {delivery.id}: MACHINE", 1)[1]
    assert channel == f"bn-d{delivery.id}-a1"


def test_a_person_saying_hallo_is_human_and_key_1_still_puts_them_through(
    amd_calls: AlertCalls, tmp_path: Path
) -> None:
    phones = amd_calls.phones
    phones.phones({})  # the centralists' phones answer
    person = make(PEOPLE[0], tmp_path)  # "hallo?"
    _, number = amd_calls.participant()
    # Key 1 once the verdict is in and the message plays (AMD needs the words plus 0.8 s of silence).
    voice_phone(
        phones.sipp,
        "trunk",
        phones.settings.asterisk.trunk_port,
        port_block(),
        person.alaw,
        hold_ms=14_000,
        key=(4000, "1"),
    )
    view = amd_calls.context.actions.create(
        action_type="missing_child",
        title="Vermist kind, AMD en sleutel 1",
        description="Jongen met blauwe pet",
        region_code="AM",
        area=AreaSpec(AreaKind.CIRCLE, centre=amd_calls.spot, radius_m=300),
        team=["c-am-1"],
        actor="test",
    )
    amd_calls.context.actions.start(view.id, actor="test")

    delivery = amd_calls.delivery(view.id, lambda d: d.status not in ("queued", "sending"))
    assert delivery.status == "answered", delivery.last_error
    result = phones.sipp.phone_result("trunk", timeout_s=60)
    assert (result.returncode, result.successful) == (0, 1), result.output
    call = phones.logged_call(number)
    assert (call.kind, call.action_id, call.centralist, call.outcome) == (
        "transfer",
        view.id,
        "c-am-1",
        "connected",
    )
    console = phones.asterisk.instance.log_text("console.log")
    assert f"delivery {delivery.id}: HUMAN" in console
    assert f"delivery {delivery.id} after WAITSTATUS" not in console  # no machine message
