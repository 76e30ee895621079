"""Offline text-to-speech with espeak-ng, converted for Asterisk and cached on disk.

Every alert call plays a spoken message and a broadcast can reach 300,000 people, so the
same text must be synthesised once, not once per call: the result is stored under a hash
of everything that changes the sound (text, language, voice, engine identity, conversion
version) and later calls return the stored file without running the engine.

The engine is a small protocol so tests and the benchmark can wrap the real espeak-ng
(for example to count invocations) without patching anything.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Protocol

from burgernet.settings import Settings, get_settings
from recordings.convert import CONVERSION_VERSION, AudioError, AudioLimits, convert_file
from recordings.paths import Language, check_language, tts_cache_dir

# Speech slightly slower than espeak's default 175 words a minute: phone audio at 8 kHz
# loses the high frequencies that make fast speech intelligible.
DEFAULT_WORDS_PER_MINUTE = 150
ENGINE_TIMEOUT_SECONDS = 60
# The upload limits do not apply to our own speech; this only stops a runaway text.
TTS_MAX_SECONDS = 300.0
_TTS_MAX_BYTES = 1 << 31


class TtsError(AudioError):
    """Speech could not be made (engine missing, unknown voice, nothing to say)."""


class SpeechEngine(Protocol):
    """Writes ``text`` spoken with ``voice`` to ``output`` as a WAV file of any format."""

    @property
    def identity(self) -> str:
        """Everything about the engine that changes the sound (name, version, parameters)."""
        ...

    def synthesize(self, text: str, voice: str, output: Path) -> None: ...


@dataclass
class EspeakNg:
    """espeak-ng (Debian package ``espeak-ng``), text fed on stdin so no text is ever an option."""

    executable: str = "espeak-ng"
    words_per_minute: int = DEFAULT_WORDS_PER_MINUTE

    @cached_property
    def identity(self) -> str:
        try:
            done = subprocess.run(
                [self.executable, "--version"], capture_output=True, text=True, check=True, timeout=10
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise TtsError(f"text-to-speech engine {self.executable!r} is not usable: {exc}") from exc
        match = re.search(r"text-to-speech:\s*(\S+)", done.stdout)
        version = match.group(1) if match else done.stdout.strip()
        return f"espeak-ng {version} wpm={self.words_per_minute}"

    @cached_property
    def voices(self) -> frozenset[str]:
        """Every name ``-v`` accepts: language codes, voice names and voice files."""
        try:
            done = subprocess.run(
                [self.executable, "--voices"], capture_output=True, text=True, check=True, timeout=10
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise TtsError(f"text-to-speech engine {self.executable!r} is not usable: {exc}") from exc
        names: set[str] = set()
        for line in done.stdout.splitlines()[1:]:
            # "Pty Language Age/Gender VoiceName File Other Languages"
            columns = line.split()
            if len(columns) >= 5:
                names.update((columns[1], columns[3], columns[4]))
        return frozenset(names)

    def synthesize(self, text: str, voice: str, output: Path) -> None:
        # espeak-ng falls back to a similar voice for an unknown name ("no-such-voice"
        # speaks Norwegian) and exits 0, so a misspelt setting is caught here instead.
        if voice.split("+", 1)[0] not in self.voices:
            raise TtsError(f"espeak-ng has no voice {voice!r} (see `espeak-ng --voices`)")
        command = [
            self.executable,
            "-v", voice,
            "-s", str(self.words_per_minute),
            "-b", "1",  # input is UTF-8 ("één", "ê")
            "-w", str(output),
            "--stdin",
        ]  # fmt: skip
        try:
            done = subprocess.run(
                command, input=text.encode(), capture_output=True, timeout=ENGINE_TIMEOUT_SECONDS
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise TtsError(f"text-to-speech engine failed: {exc}") from exc
        problem = done.stderr.decode(errors="replace").strip()
        # A zero exit is not enough: an empty WAV (header only) would cache silence forever.
        if done.returncode != 0 or not output.is_file() or output.stat().st_size <= 44:
            raise TtsError(f"espeak-ng could not speak with voice {voice!r}: {problem or 'no output'}")


@dataclass
class TextToSpeech:
    """Spoken sounds for Asterisk, made once per distinct (text, language, voice, engine)."""

    settings: Settings = field(default_factory=get_settings)
    engine: SpeechEngine = field(default_factory=EspeakNg)

    @property
    def cache_dir(self) -> Path:
        return tts_cache_dir(self.settings)

    def voice_for(self, lang: str) -> str:
        language: Language = check_language(lang)
        return self.settings.audio.tts_voice_nl if language == "nl" else self.settings.audio.tts_voice_en

    def cache_key(self, text: str, lang: str) -> str:
        spoken = normalise_text(text)
        material = [spoken, lang, self.voice_for(lang), self.engine.identity, CONVERSION_VERSION]
        return hashlib.sha256(json.dumps(material, ensure_ascii=False).encode()).hexdigest()

    def cached_path(self, text: str, lang: str) -> Path:
        key = self.cache_key(text, lang)
        return self.cache_dir / key[:2] / f"{key}.wav"

    def speak(self, text: str, lang: str, *, force: bool = False) -> Path:
        """The ``.wav`` (8 kHz mono 16-bit) saying ``text``; ``force`` re-runs the engine."""
        spoken = normalise_text(text)
        if not spoken:
            raise TtsError("there is no text to speak")
        target = self.cached_path(spoken, lang)
        if target.is_file() and not force:
            return target
        limits = AudioLimits(max_bytes=_TTS_MAX_BYTES, max_seconds=TTS_MAX_SECONDS)
        with tempfile.TemporaryDirectory(prefix="burgernet-tts-") as scratch:
            raw = Path(scratch) / "speech.wav"
            self.engine.synthesize(spoken, self.voice_for(lang), raw)
            convert_file(raw, target, limits=limits)
        return target


def normalise_text(text: str) -> str:
    """One line, single spaces: layout differences must not make a second sound."""
    return " ".join(text.split())


def speak(
    text: str,
    lang: str,
    *,
    settings: Settings | None = None,
    engine: SpeechEngine | None = None,
    force: bool = False,
) -> Path:
    """Shortcut for :meth:`TextToSpeech.speak` with the process settings and espeak-ng."""
    tts = TextToSpeech(settings or get_settings(), engine or EspeakNg())
    return tts.speak(text, lang, force=force)
