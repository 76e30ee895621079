"""The voice sender and answering-machine detection, without servers: an answered call is
reported with the dialplan's AMD verdict (its UserEvent), a machine as "machine" and never
retried, and the Originate tells the dialplan whether to run AMD at all.

The stand-in AMI of test_voice_nodes answers the Originate; the verdict is played in by hand,
as Asterisk would send it. The real thing: tests/telephony/test_amd.py."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import cast

from broadcasting.channels.base import Outcome
from broadcasting.channels.voice_asterisk import AsteriskVoiceSender
from broadcasting.ratelimit import SharedRate, SharedSlots
from burgernet import channel_vars as cv
from burgernet.settings import load_settings
from tests.broadcasting.test_voice_nodes import MESSAGE, FakeAmi, MemorySlots, NoRate, job


class RecordingAmi(FakeAmi):
    """Also keeps each Originate's channel variables."""

    def __init__(self) -> None:
        super().__init__("n1")
        self.variables: list[str] = []

    async def send_action(
        self, action: Mapping[str, object], timeout: float = 10.0, as_list: bool | None = None
    ) -> object:
        if action["Action"] == "Originate":
            self.variables = [str(variable) for variable in cast(list[object], action["Variable"])]
        return await super().send_action(action, timeout, as_list)


def sender(tmp_path: Path, *, await_amd: bool) -> tuple[AsteriskVoiceSender, RecordingAmi]:
    ami = RecordingAmi()
    made = AsteriskVoiceSender(
        load_settings(data_dir=tmp_path),
        ami,
        cast(SharedSlots, MemorySlots(2)),
        cast(SharedRate, NoRate()),
        lambda _job, _message: "alert-sound",
        machine_sound_for=lambda _job: "/sounds/machine-nl",
        await_amd=await_amd,
    )
    return made, ami


async def _send_with_verdict(tmp_path: Path, **verdict: object) -> tuple[Outcome, RecordingAmi]:
    voice, ami = sender(tmp_path, await_amd=True)
    permit = await voice.acquire()
    sending = asyncio.create_task(voice.send(job(7), MESSAGE, permit))
    await asyncio.sleep(0.05)  # the Originate is answered
    assert not sending.done()  # answered, but the verdict is not in yet
    await ami.emit("UserEvent", UserEvent="SomethingElse", Uniqueid="bn-d7-a1")  # an admin's own
    await ami.emit("UserEvent", UserEvent=cv.AMD_EVENT, Uniqueid="bn-d7-a1", **verdict)
    outcome = await asyncio.wait_for(sending, 2)
    await voice.close()
    return outcome, ami


async def test_a_machine_ends_machine_with_its_cause_and_delay_and_is_not_retried(tmp_path: Path) -> None:
    outcome, ami = await _send_with_verdict(
        tmp_path, AmdStatus="MACHINE", AmdCause="LONGGREETING-2000-2000", AmdMs="2391"
    )
    assert (outcome.status, outcome.retry, outcome.provider_ref) == ("machine", False, "bn-d7-a1")
    assert outcome.error == "answering machine: AMD LONGGREETING-2000-2000 in 2391 ms"
    assert f"{cv.VAR_MACHINE_SOUND}=/sounds/machine-nl" in ami.variables
    assert f"{cv.GLOBAL_AMD}=yes" in ami.variables


async def test_a_person_or_a_doubt_is_answered(tmp_path: Path) -> None:
    for status in ("HUMAN", "NOTSURE"):
        outcome, _ = await _send_with_verdict(tmp_path / status, AmdStatus=status, AmdCause="x", AmdMs="1500")
        assert (outcome.status, outcome.error) == ("answered", None)


async def test_a_hang_up_during_the_analysis_is_answered_at_once(tmp_path: Path) -> None:
    voice, ami = sender(tmp_path, await_amd=True)
    sending = asyncio.create_task(voice.send(job(8), MESSAGE, await voice.acquire()))
    await asyncio.sleep(0.05)
    await ami.emit("Hangup", Uniqueid="bn-d8-a1", Cause="16")
    outcome = await asyncio.wait_for(sending, 2)
    assert outcome.status == "answered"
    await voice.close()


async def test_without_amd_the_answer_is_reported_at_once_and_the_dialplan_told_so(tmp_path: Path) -> None:
    voice, ami = sender(tmp_path, await_amd=False)
    outcome = await asyncio.wait_for(voice.send(job(9), MESSAGE, await voice.acquire()), 2)
    assert outcome.status == "answered"
    assert f"{cv.GLOBAL_AMD}=no" in ami.variables
    await voice.close()
