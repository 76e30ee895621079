"""The free number never dead-ends: with FastAGI down, real SIP calls still reach a person.

SIPp plays the trunk (a caller from trunk_host dialling the free number) and the
centralists' phones; nothing listens on the FastAGI port, so the dialplan's own failure
path has to carry the call: ring the fallback region's pool, else record a tip.
"""

from __future__ import annotations

import socket
import time
import wave
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from asterisk_conf.render import AsteriskPlan
from asterisk_conf.sandbox import AsteriskInstall
from burgernet.settings import Settings
from testbed.ports import free_port
from testbed.sipp import Sipp
from tests.asterisk.conftest import StartAsterisk, asterisk_settings, centralist

pytestmark = pytest.mark.asterisk

CALLER = "0612345678"


@pytest.fixture
def sipp(tmp_path: Path) -> Iterator[Sipp]:
    runner = Sipp(asterisk_port=0, workdir=tmp_path / "sipp")
    runner.workdir.mkdir()
    yield runner
    runner.cleanup()


def console_once(asterisk: Any, marker: str, timeout: float = 5.0) -> str:
    """Asterisk's console log once ``marker`` is in it: the hang-up handler that writes the
    outcome runs after the caller's side has already ended."""
    deadline = time.monotonic() + timeout
    console: str = asterisk.instance.log_text("console.log")
    while marker not in console and time.monotonic() < deadline:
        time.sleep(0.1)
        console = asterisk.instance.log_text("console.log")
    return console


def test_fastagi_down_the_call_reaches_the_fallback_pool(
    tmp_path: Path, asterisk_install: AsteriskInstall, start_asterisk: StartAsterisk, sipp: Sipp
) -> None:
    ports = {"c-mn-1": free_port(), "c-mn-2": free_port()}
    plan = AsteriskPlan(
        (
            centralist("c-mn-1", port=ports["c-mn-1"]),
            centralist("c-mn-2", port=ports["c-mn-2"]),
            centralist("c-am-1", region="AM", port=free_port()),  # another region: never rung
        ),
        "MN",
    )
    settings = asterisk_settings(tmp_path / "data", asterisk_install)
    asterisk = start_asterisk(plan, settings=settings)
    sipp.asterisk_port = settings.asterisk.sip_port
    # The pool rings both at once: one is busy on another call, the other answers.
    sipp.phone("c-mn-1", ports["c-mn-1"], free_port(), "answer", ring_ms=300, calls=1)
    sipp.phone("c-mn-2", ports["c-mn-2"], free_port(), "busy", calls=1)

    call = sipp.call(
        CALLER, settings.asterisk.free_number, local_port=free_port(), media_port=free_port(), hold_ms=3000
    )

    assert (call.successful, call.failed) == (1, 0), call.output
    answered = sipp.phone_result("c-mn-1")
    assert (answered.returncode, answered.successful) == (0, 1), answered.output
    busy = sipp.phone_result("c-mn-2")
    assert (busy.returncode, busy.successful) == (0, 1), busy.output  # it was rung and said busy
    console = asterisk.instance.log_text("console.log")
    assert "failure path, AGISTATUS=FAILURE" in console
    assert "BN_ANSWERED_BY=c-mn-1" in console
    assert "BN_OUTCOME=connected" in console


def test_fastagi_down_and_nobody_on_duty_the_caller_leaves_a_tip(
    tmp_path: Path, asterisk_install: AsteriskInstall, start_asterisk: StartAsterisk, sipp: Sipp
) -> None:
    plan = AsteriskPlan((centralist("c-mn-1", on_duty=False), centralist("c-am-1", region="AM")), "MN")
    settings = asterisk_settings(tmp_path / "data", asterisk_install)
    asterisk = start_asterisk(plan, settings=settings)
    sipp.asterisk_port = settings.asterisk.sip_port

    # The caller speaks (a G.711 recording that ships with SIPp) and hangs up after 10 s.
    call = sipp.call(
        CALLER,
        settings.asterisk.free_number,
        local_port=free_port(),
        media_port=free_port(),
        hold_ms=10_000,
        speak_at_ms=1000,
    )

    assert (call.successful, call.failed) == (1, 0), call.output
    # Hung up while speaking, FastAGI down: the dialplan itself marks the tip as left. The h
    # extension runs once Record() has closed the file, so the recording is whole from here on
    # (SIPp may have returned before Asterisk finished writing it).
    outcome = console_once(asterisk, "BN_OUTCOME=")
    tips = sorted((settings.data_dir.resolve() / "recordings" / "tips" / "unassigned").glob("*.wav"))
    assert len(tips) == 1, tips
    with wave.open(str(tips[0])) as recording:
        assert (recording.getframerate(), recording.getnchannels(), recording.getsampwidth()) == (8000, 1, 2)
        seconds = recording.getnframes() / 8000
        samples = array("h", recording.readframes(recording.getnframes()))
    assert seconds > 3, seconds
    loudest = max(abs(sample) for sample in samples)
    assert loudest > 1000, "the tip is silent: the caller's audio was not recorded"
    assert "BN_OUTCOME=tip_left" in outcome


def test_a_caller_who_gives_up_while_the_pool_rings_is_abandoned(
    tmp_path: Path, asterisk_install: AsteriskInstall, start_asterisk: StartAsterisk, sipp: Sipp
) -> None:
    port = free_port()
    settings = asterisk_settings(tmp_path / "data", asterisk_install, pool_ring_seconds=20)
    asterisk = start_asterisk(AsteriskPlan((centralist("c-mn-1", port=port),), "MN"), settings=settings)
    sipp.asterisk_port = settings.asterisk.sip_port
    sipp.phone("c-mn-1", port, free_port(), "no-answer", calls=1)

    call = sipp.call(
        CALLER, settings.asterisk.free_number, local_port=free_port(), media_port=free_port(), hold_ms=2000
    )

    assert (call.successful, call.failed) == (1, 0), call.output
    rang = sipp.phone_result("c-mn-1")
    assert (rang.returncode, rang.successful) == (0, 1), rang.output  # rang, then was cancelled
    console = console_once(asterisk, "BN_OUTCOME=")
    assert "BN_OUTCOME=abandoned" in console
    assert "BN_ANSWERED_BY=" not in console


def test_an_alert_call_without_a_key_plays_twice_then_says_goodbye(
    tmp_path: Path, asterisk_install: AsteriskInstall, start_asterisk: StartAsterisk, sipp: Sipp
) -> None:
    settings = asterisk_settings(tmp_path / "data", asterisk_install)
    asterisk = start_asterisk(AsteriskPlan((), "MN"), settings=settings)
    # The participant's phone, reached over the trunk the way broadcasting's Originate goes.
    sipp.phone("participant", settings.asterisk.trunk_port, free_port(), "answer", calls=1)

    # Through AMI, as broadcasting does it: the rendered AMI user may log in and originate.
    response = _ami_originate(
        settings,
        Channel="PJSIP/0612345678@trunk",
        Context="burgernet-alert",
        Exten="s",
        Priority="1",
        CallerID=f'"{settings.asterisk.alert_caller_name}" <{settings.asterisk.alert_caller_id}>',
        Variable="BN_ALERT_SOUND=beep,BN_ACTION_ID=7,BN_DELIVERY_ID=70",
        Async="true",
    )
    assert "Response: Success" in response, response

    answered = sipp.phone_result("participant", timeout_s=40)
    assert (answered.returncode, answered.successful) == (0, 1), answered.output  # Asterisk hung up
    console = asterisk.instance.log_text("console.log")
    assert console.count("WaitExten(") == 2  # the message and menu, played twice
    assert "burgernet/goodbye" in console
    assert "alert call, action 7, delivery 70" in console


def _ami_originate(settings: Settings, **fields: str) -> str:
    """Log in as the rendered AMI user and send one Originate; the answer to it."""
    a = settings.asterisk
    with socket.create_connection((a.ami_host, a.ami_port), timeout=10) as connection:
        stream = connection.makefile("rwb")

        def send(action: str, **values: str) -> str:
            lines = [f"Action: {action}", *(f"{key}: {value}" for key, value in values.items())]
            stream.write(("\r\n".join(lines) + "\r\n\r\n").encode())
            stream.flush()
            while True:  # skip events until the block that answers us
                block = []
                while (line := stream.readline().decode().rstrip("\r\n")) != "":
                    block.append(line)
                if block and block[0].startswith("Response:"):
                    return "\n".join(block)

        stream.readline()  # the banner: Asterisk Call Manager/...
        login = send("Login", Username=a.ami_username, Secret=a.ami_secret, Events="off")
        assert "Response: Success" in login, login
        return send("Originate", **fields)
