"""Test audio for answering-machine detection: voicemail greetings and people who answer.

Each :class:`Voice` is spoken by espeak-ng and shaped by sox into what a phone line carries:
8 kHz mono, a moment of silence before the first word, a machine's greeting followed by its
beep (a 1 kHz tone from ``sox synth``), then silence for as long as the line stays open (a
real phone keeps sending audio; AMD counts that silence). Two files per voice, made once and
cached by content: a 16-bit ``.wav`` to listen to, and the same audio as raw A-law (``.alaw``)
for SIPp's ``rtp_stream`` (payload type 8), which sends a file's bytes as they are.

The labelled set (:data:`MACHINES`, :data:`PEOPLE`) has Dutch and English voices at different
speeds; ``tests/telephony/test_amd.py`` and ``benchmarks/amd_accuracy.py`` use it.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

RATE = 8000
ESPEAK = shutil.which("espeak-ng") or "/usr/bin/espeak-ng"
SOX = shutil.which("sox") or "/usr/bin/sox"
# Bumped when the way files are made changes: the cache then makes them afresh.
_RECIPE = "1"


@dataclass(frozen=True)
class Voice:
    """One answer to an alert call, as the line hears it."""

    name: str
    text: str
    voice: str  # an espeak-ng voice ("nl", "en-gb", "en-us+f3", ...)
    words_per_minute: int
    machine: bool  # the label: a voicemail greeting (with a beep) or a person
    lead_ms: int = 400  # silence between the answer and the first word
    # Silence after the words (and the beep): how long the line stays quiet before it ends.
    tail_ms: int = 20_000


MACHINES = (
    Voice(
        "nl-jan",
        "Hallo, u spreekt met de voicemail van Jan de Vries. Ik ben er even niet, "
        "spreek na de piep een bericht in.",
        "nl",
        165,
        True,
    ),
    Voice(
        "en-john",
        "Hi, you have reached the voicemail of John Smith. I can't take your call right now, "
        "please leave a message after the beep.",
        "en-gb",
        175,
        True,
    ),
    Voice(
        "nl-provider",
        "De persoon die u belt is op dit moment niet bereikbaar. Spreek uw bericht in na de toon.",
        "nl+f3",
        150,
        True,
        lead_ms=700,
    ),
    Voice(
        "en-provider",
        "The person you are calling is not available. Please leave a message after the tone.",
        "en-us+f2",
        160,
        True,
    ),
    Voice(
        "nl-sanne",
        "Hoi, met Sanne. Ik kan nu niet opnemen. Spreek maar wat in, dan bel ik je terug.",
        "nl+f2",
        190,
        True,
        lead_ms=250,
    ),
    Voice(
        "en-emma",
        "Hello, this is Emma. Sorry I missed your call, leave your name and number "
        "and I will get back to you.",
        "en-gb+f3",
        200,
        True,
    ),
    Voice(
        "nl-jansen",
        "Goedendag, u bent verbonden met het antwoordapparaat van de familie Jansen. "
        "Wij zijn momenteel niet thuis.",
        "nl",
        140,
        True,
        lead_ms=1000,
    ),
    Voice(
        "en-office",
        "Thank you for calling. Nobody is available to take your call at the moment.",
        "en-us",
        150,
        True,
    ),
    Voice(
        "nl-bakkerij",
        "Met bakkerij De Graaf. Onze winkel is gesloten. Spreek een bericht in en wij bellen u terug.",
        "nl+m3",
        175,
        True,
    ),
    Voice(
        "nl-nummer",
        "Welkom bij de voicemail van nul zes, twaalf, vierendertig, zesenvijftig. "
        "Laat een bericht achter na de toon.",
        "nl+f4",
        180,
        True,
    ),
    Voice(
        "en-peter",
        "Hello, you have reached Peter. I am in a meeting, please leave a short message.",
        "en-gb",
        210,
        True,
    ),
    # Short greetings are the hard ones: a few words, then the beep.
    Voice("en-mike", "Hey, it's Mike. Leave a message.", "en-us+m3", 170, True),
)

PEOPLE = (
    Voice("nl-hallo", "hallo?", "nl", 160, False),
    Voice("nl-piet", "met Piet?", "nl+m3", 170, False, lead_ms=600),
    Voice("nl-ja-hallo", "ja, hallo", "nl+f3", 150, False),
    Voice("en-hello", "hello?", "en-gb", 160, False),
    Voice("nl-jansen-live", "Hallo, met Jansen.", "nl", 175, False, lead_ms=300),
    Voice("en-yes-hello", "yes, hello?", "en-us+f2", 150, False),
    Voice("nl-ja", "ja?", "nl+m2", 160, False, lead_ms=900),
    Voice("en-tom", "Hi, Tom here.", "en-gb+m3", 180, False),
    Voice("nl-kees", "Met Kees.", "nl+f2", 140, False),
    Voice("en-hello-slow", "hello?", "en-us", 120, False, lead_ms=1200),
    Voice("nl-met-wie", "Hallo, met wie?", "nl+f4", 180, False),
    Voice("en-speaking", "Anna speaking.", "en-gb+f3", 165, False),
)


@dataclass(frozen=True)
class VoiceFiles:
    voice: Voice
    wav: Path  # 8 kHz mono 16-bit, to listen to
    alaw: Path  # the same audio as raw A-law, for SIPp's rtp_stream (payload type 8)
    speech_ms: int  # from the first word to the end of the words (and the beep)


def _run(command: list[str]) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=60)


def _duration_ms(path: Path) -> int:
    with wave.open(str(path)) as audio:
        return round(audio.getnframes() * 1000 / audio.getframerate())


def make(voice: Voice, folder: Path) -> VoiceFiles:
    """The files of ``voice`` in ``folder`` (made once; the name carries a hash of the recipe)."""
    folder.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(repr((_RECIPE, voice)).encode()).hexdigest()[:12]
    wav, alaw = folder / f"{voice.name}-{key}.wav", folder / f"{voice.name}-{key}.alaw"
    speech_ms = folder / f"{voice.name}-{key}.ms"
    if not (wav.is_file() and alaw.is_file() and speech_ms.is_file()):
        with tempfile.TemporaryDirectory(prefix="bn-voice-") as scratch:
            work = Path(scratch)
            raw = work / "spoken.wav"
            _run([ESPEAK, "-v", voice.voice, "-s", str(voice.words_per_minute), "-w", str(raw), voice.text])
            line = ["-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed-integer"]
            spoken = work / "spoken-8k.wav"
            # Phone band (300-3400 Hz) and a level like a handset's; trailing espeak silence cut.
            _run([SOX, str(raw), *line, str(spoken), "sinc", "300-3400", "norm", "-6", "reverse",
                  "silence", "1", "0.05", "0.5%", "reverse"])  # fmt: skip
            parts = [spoken]
            if voice.machine:
                gap, beep = work / "gap.wav", work / "beep.wav"
                _run([SOX, "-n", *line, str(gap), "trim", "0", "0.4"])
                _run([SOX, "-n", *line, str(beep), "synth", "0.6", "sine", "1000", "vol", "0.4"])
                parts += [gap, beep]
            lead, tail = work / "lead.wav", work / "tail.wav"
            _run([SOX, "-n", *line, str(lead), "trim", "0", f"{voice.lead_ms / 1000:.3f}"])
            _run([SOX, "-n", *line, str(tail), "trim", "0", f"{voice.tail_ms / 1000:.3f}"])
            speech = work / "speech.wav"
            _run([SOX, *map(str, parts), str(speech)])
            whole = work / "whole.wav"
            _run([SOX, str(lead), str(speech), str(tail), str(whole)])
            # A quiet line hiss under everything (a real line is never digital zero).
            _run([SOX, "-n", *line, str(work / "hiss.wav"), "synth", f"{_duration_ms(whole) / 1000:.3f}",
                  "whitenoise", "vol", "0.002"])  # fmt: skip
            _run([SOX, "-m", str(whole), str(work / "hiss.wav"), str(work / "mixed.wav")])
            _run([SOX, str(work / "mixed.wav"), *line, str(wav)])
            _run([SOX, str(wav), "-t", "raw", "-r", str(RATE), "-c", "1", "-e", "a-law", "-b", "8",
                  str(alaw)])  # fmt: skip
            speech_ms.write_text(str(_duration_ms(speech)))
    return VoiceFiles(voice, wav, alaw, int(speech_ms.read_text()))


def make_all(folder: Path, voices: tuple[Voice, ...] = MACHINES + PEOPLE) -> list[VoiceFiles]:
    return [make(voice, folder) for voice in voices]


def main() -> None:
    """``python -m testbed.voices [FOLDER]``: make every test voice (to listen to them)."""
    import sys

    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "var/test-voices")
    for files in make_all(folder):
        label = "machine" if files.voice.machine else "person "
        print(f"{label} {files.speech_ms:6d} ms  {files.wav}")


if __name__ == "__main__":
    main()
