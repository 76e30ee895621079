"""How well alert calls tell answering machines from people: Asterisk's AMD() on real calls.

A small labelled set (:mod:`testbed.voices`: 12 voicemail greetings with their beep, 12 people
answering "hallo?", "met Piet?"..., Dutch and English, different speeds; ``--quick``: 4 + 4)
is played by SIPp phones that answer alert calls placed by AMI Originate into the real
Asterisk's ``[burgernet-alert]`` context, exactly as the voice sender places them. The
dialplan's verdict (its UserEvent: status, cause, analysis time) is what is counted.

Compared in the same run:

* ``no_detection``: today's behaviour before AMD, every answer is a person (no calls needed:
  it follows from the labels; no delay);
* ``asterisk_defaults``: AMD() with Asterisk's own defaults (amd.conf as shipped);
* ``tuned``: AMD() with Burgernet's defaults (settings ``[amd]``).

Both AMD profiles hear the same calls, each on an Asterisk rendered with that profile's
values (an Originate cannot carry AMD()'s comma-separated arguments: AMI splits a Variable
header at commas). Figures per profile: accuracy, the false-machine rate (people
taken for a machine: they miss the menu, the worse mistake), the machine-detection rate, and
the delay AMD adds before a person hears the alert (median and p90, ms).

    python benchmarks/amd_accuracy.py [--quick]   (calls one at a time)

Prints one JSON line last. Needs the Asterisk sandbox, SIPp, espeak-ng and sox; run it under
the machine lock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from asterisk_conf.instance import prepare
from asterisk_conf.render import AsteriskPlan, amd_arguments
from broadcasting.channels.voice_asterisk import machine_text
from burgernet import channel_vars as cv
from burgernet.secrets import create_missing_secrets
from burgernet.settings import AmdSettings, Settings, load_settings
from ivr.ami import AmiClient
from recordings.catalogue import alert_message_sound
from testbed.ports import port_block
from testbed.sipp import Sipp
from testbed.sipp_voice import voice_phone
from testbed.voices import MACHINES, PEOPLE, VoiceFiles, make

# amd.conf as Asterisk ships it (and app_amd.c's built-in defaults), in AMD()'s argument order.
ASTERISK_DEFAULTS = (2500, 1500, 800, 5000, 100, 50, 2, 256, 5000)


@dataclass(frozen=True)
class Verdict:
    voice: str
    machine: bool  # the label
    status: str  # AMDSTATUS, or "NONE" when no verdict came
    cause: str
    analysis_ms: int | None

    @property
    def said_machine(self) -> bool:
        return self.status == cv.AMD_MACHINE


def percentile(values: Sequence[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


def figures(verdicts: Sequence[Verdict]) -> dict[str, object]:
    machines = [v for v in verdicts if v.machine]
    people = [v for v in verdicts if not v.machine]
    right = sum(v.said_machine == v.machine for v in verdicts)
    people_ms = [float(v.analysis_ms) for v in people if v.analysis_ms is not None]
    machine_ms = [float(v.analysis_ms) for v in machines if v.analysis_ms is not None]
    return {
        "calls": len(verdicts),
        "accuracy": round(right / len(verdicts), 3) if verdicts else None,
        "false_machine_rate": round(sum(v.said_machine for v in people) / len(people), 3) if people else None,
        "machine_detection_rate": (
            round(sum(v.said_machine for v in machines) / len(machines), 3) if machines else None
        ),
        "notsure": sum(v.status == "NOTSURE" for v in verdicts),
        "no_verdict": sum(v.status == "NONE" for v in verdicts),
        "person_delay_ms_median": statistics.median(people_ms) if people_ms else None,
        "person_delay_ms_p90": percentile(people_ms, 0.9),
        "machine_delay_ms_median": statistics.median(machine_ms) if machine_ms else None,
        "wrong": [f"{v.voice}:{v.status}:{v.cause}" for v in verdicts if v.said_machine != v.machine],
    }


def no_detection(voices: Sequence[VoiceFiles]) -> dict[str, object]:
    """Before AMD every answer was a person: the verdicts follow from the labels alone."""
    return figures([Verdict(f.voice.name, f.voice.machine, "HUMAN", "none", 0) for f in voices])


class Bench:
    def __init__(self, settings: Settings, ami: AmiClient, sipp: Sipp, sounds: Mapping[str, str]) -> None:
        self.settings = settings
        self.ami = ami
        self.sipp = sipp
        self.sounds = sounds
        self.verdicts: dict[str, asyncio.Future[Mapping[str, object]]] = {}
        self.calls = 0

    async def on_user_event(self, event: Mapping[str, object]) -> None:
        if str(event.get("UserEvent", "")) != cv.AMD_EVENT:
            return
        future = self.verdicts.get(str(event.get("Uniqueid", "")))
        if future is not None and not future.done():
            future.set_result(dict(event))

    async def call(self, files: VoiceFiles, amd_args: Sequence[int]) -> Verdict:
        self.calls += 1
        unique_id = f"bench-amd-{self.calls}-{int(time.time())}"
        name = f"voice-{self.calls}"
        # The trunk's own address: the AMI client refuses any other dial string, so the calls
        # go one at a time to one phone on the trunk port.
        port = self.settings.asterisk.trunk_port
        # The phone hangs up itself once any verdict is surely in (AMD's longest analysis).
        hold_ms = files.voice.lead_ms + amd_args[3] + 2000
        process = voice_phone(self.sipp, name, port, port_block(), files.alaw, ring_ms=100, hold_ms=hold_ms)
        await asyncio.sleep(0.3)  # SIPp binds its port
        verdict = asyncio.get_running_loop().create_future()
        self.verdicts[unique_id] = verdict
        try:
            answer = await self.ami.send_action(
                {
                    "Action": "Originate",
                    "Channel": "PJSIP/0612345678@trunk",
                    "Context": cv.CTX_ALERT,
                    "Exten": "s",
                    "Priority": "1",
                    "Timeout": "10000",
                    "Async": "true",
                    "ChannelId": unique_id,
                    "ActionID": unique_id,
                    "Variable": [
                        "CHANNEL(language)=nl",
                        f"{cv.VAR_ALERT_SOUND}={self.sounds['alert']}",
                        f"{cv.VAR_MACHINE_SOUND}={self.sounds['machine']}",
                        f"{cv.VAR_ACTION_ID}=1",
                        f"{cv.VAR_DELIVERY_ID}={self.calls}",
                        f"{cv.VAR_CALL_KIND}={cv.CALL_KIND_ALERT}",
                    ],
                },
                timeout=10,
                as_list=False,
            )
            if str(answer.get("Response", "")).lower() != "success":
                raise RuntimeError(f"Originate refused: {answer}")
            try:
                event = await asyncio.wait_for(verdict, amd_args[3] / 1000 + 10)
            except TimeoutError:
                event = {}
        finally:
            self.verdicts.pop(unique_id, None)
            try:
                await asyncio.wait_for(asyncio.to_thread(process.wait), hold_ms / 1000 + 20)
            except TimeoutError:
                process.terminate()
        ms = str(event.get(cv.AMD_FIELD_MS, ""))
        return Verdict(
            files.voice.name,
            files.voice.machine,
            str(event.get(cv.AMD_FIELD_STATUS, "NONE")),
            str(event.get(cv.AMD_FIELD_CAUSE, "")),
            int(ms) if ms.isdigit() else None,
        )

    async def run(
        self, voices: Sequence[VoiceFiles], amd_args: Sequence[int], parallel: int
    ) -> list[Verdict]:
        gate = asyncio.Semaphore(parallel)

        async def one(files: VoiceFiles) -> Verdict:
            async with gate:
                return await self.call(files, amd_args)

        return list(await asyncio.gather(*(one(files) for files in voices)))


async def measure(
    settings: Settings, voices: Sequence[VoiceFiles], parallel: int, profile: str
) -> dict[str, object]:
    a = settings.asterisk
    texts = {
        "alert": "Dit is Burgernet. Een test van de detectie van antwoordapparaten.",
        "machine": machine_text("nl", "Vermist kind Eindhoven", "4821", a.free_number),
    }
    # Kept with a stand-in action (1) in the scratch data folder.
    sounds = {key: alert_message_sound(1, "nl", text, settings=settings) for key, text in texts.items()}
    ami = AmiClient(a.ami_host, a.ami_port, a.ami_username, a.ami_secret)
    sipp = Sipp(a.sip_port)
    bench = Bench(settings, ami, sipp, sounds)
    ami.on("UserEvent", bench.on_user_event)
    await ami.connect(wait=20)
    try:
        amd_args = amd_arguments(settings.amd)
        began = time.monotonic()
        verdicts = await bench.run(voices, amd_args, parallel)
        results: dict[str, object] = {
            "amd_args": ",".join(map(str, amd_args)),
            **figures(verdicts),
            "seconds": round(time.monotonic() - began, 1),
        }
        for verdict in verdicts:
            print(
                f"{profile:18} {verdict.voice:16} {'machine' if verdict.machine else 'person':8}"
                f"→ {verdict.status:8} {verdict.cause:28} {verdict.analysis_ms} ms",
                file=sys.stderr,
            )
        return results
    finally:
        await ami.close()
        sipp.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="4 machines and 4 people instead of 12 + 12")
    args = parser.parse_args()
    machines, people = (MACHINES[:4], PEOPLE[:4]) if args.quick else (MACHINES, PEOPLE)
    with tempfile.TemporaryDirectory(prefix="bn-amd-bench-") as scratch:
        work = Path(scratch)
        voices = [make(voice, work / "voices") for voice in (*machines, *people)]
        create_missing_secrets(work / "data")
        results: dict[str, object] = {"no_detection": no_detection(voices)}
        keys = ("initial_silence_ms", "greeting_ms", "after_greeting_silence_ms", "total_analysis_ms",
                "min_word_length_ms", "between_words_silence_ms", "max_words", "silence_threshold",
                "max_word_length_ms")  # fmt: skip
        for profile, amd in (
            ("asterisk_defaults", dict(zip(keys, ASTERISK_DEFAULTS, strict=True))),
            ("tuned", {}),
        ):
            settings = load_settings(
                data_dir=work / "data",
                log_level="WARNING",
                amd=amd,
                asterisk={
                    "sip_port": port_block(),
                    "ami_port": port_block(),
                    "agi_port": port_block(),
                    "trunk_port": port_block(),
                    "instance_name": f"bench-amd-{port_block()}",
                },
            )
            asterisk = prepare(
                settings, AsteriskPlan((), "MN"), log=lambda line: print(line, file=sys.stderr)
            )
            asterisk.instance.start()
            try:
                results[profile] = asyncio.run(measure(settings, voices, 1, profile))
            finally:
                asterisk.instance.remove()
    tuned, default = results["tuned"], results["asterisk_defaults"]
    assert isinstance(tuned, dict) and isinstance(default, dict)
    print(
        json.dumps(
            {
                "benchmark": "amd_accuracy",
                "quick": args.quick,
                "machines": len(machines),
                "people": len(people),
                "tuned_defaults": AmdSettings().model_dump(),
                **results,
                # The comparison: the tuned profile against AMD as Asterisk ships it.
                "accuracy_gain_vs_asterisk_defaults": (
                    round(float(tuned["accuracy"]) - float(default["accuracy"]), 3)
                    if tuned["accuracy"] is not None and default["accuracy"] is not None
                    else None
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
