"""Real audio for the recordings tests: tones made with sox, encoded with ffmpeg, checked with wave."""

from __future__ import annotations

import subprocess
import tempfile
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from burgernet.settings import Settings, load_settings
from recordings.tts import EspeakNg


@dataclass(frozen=True)
class WavInfo:
    rate: int
    channels: int
    width: int
    seconds: float
    rms_dbfs: float


def wav_info(path: Path) -> WavInfo:
    with wave.open(str(path), "rb") as reader:
        rate, channels, width = reader.getframerate(), reader.getnchannels(), reader.getsampwidth()
        frames = reader.readframes(reader.getnframes())
    samples = np.frombuffer(frames, dtype="<i2").astype(np.float64) / 32768.0
    rms = float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0
    dbfs = 20 * np.log10(rms) if rms > 0 else float("-inf")
    return WavInfo(rate, channels, width, len(samples) / channels / rate, float(dbfs))


def make_tone(
    path: Path,
    *,
    seconds: float = 2.0,
    lead_silence: float = 0.0,
    tail_silence: float = 0.0,
    rate: int = 44100,
    channels: int = 2,
    gain_db: float = -6.0,
) -> Path:
    """A 440 Hz tone with silence around it, written by sox (format from the suffix)."""
    command = ["sox", "-n", "-r", str(rate), "-c", str(channels), "-b", "16", str(path)]
    command += ["synth", str(seconds), "sine", "440", "gain", str(gain_db)]
    if lead_silence or tail_silence:
        command += ["pad", str(lead_silence), str(tail_silence)]
    subprocess.run(command, check=True, capture_output=True)
    return path


def make_silence(path: Path, seconds: float = 2.0) -> Path:
    subprocess.run(
        ["sox", "-n", "-r", "16000", "-c", "1", "-b", "16", str(path), "trim", "0", str(seconds)],
        check=True,
        capture_output=True,
    )
    return path


def encode(source: Path, target: Path, *codec: str) -> Path:
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-i", str(source), *codec, str(target)],
        check=True,
        capture_output=True,
    )
    return target


@dataclass
class CountingEngine:
    """The real espeak-ng, counting how often it is asked to speak (the cache test's witness)."""

    inner: EspeakNg = field(default_factory=EspeakNg)
    calls: list[tuple[str, str]] = field(default_factory=list)

    @property
    def identity(self) -> str:
        return self.inner.identity

    def synthesize(self, text: str, voice: str, output: Path) -> None:
        self.calls.append((text, voice))
        self.inner.synthesize(text, voice, output)


@pytest.fixture
def audio_settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path / "data", audio={"max_seconds": 10.0, "max_upload_bytes": 400_000})


@pytest.fixture
def engine() -> CountingEngine:
    return CountingEngine()


@pytest.fixture
def scratch_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point tempfile at an empty folder so a test can prove no temporary file is left."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    yield scratch


def leftovers(*folders: Path) -> list[Path]:
    return [path for folder in folders if folder.exists() for path in folder.rglob("*")]
