"""Conversion of real sound files to what Asterisk plays natively: 8 kHz mono 16-bit."""

from __future__ import annotations

import os
import wave
from pathlib import Path

import pytest

from recordings.convert import (
    DEFAULT_TARGET_DBFS,
    AudioLimits,
    AudioTooLargeError,
    AudioTooLongError,
    CorruptAudioError,
    EmptyAudioError,
    SilentAudioError,
    UnsupportedOutputError,
    convert_bytes,
    convert_file,
)
from tests.recordings.conftest import encode, leftovers, make_silence, make_tone, wav_info

LIMITS = AudioLimits(max_bytes=2_000_000, max_seconds=10.0)
# 2 s of tone, trimmed, plus 100 ms of padding kept each side; AAC adds ~20 ms priming.
EXPECTED_SECONDS = 2.2
TOLERANCE_SECONDS = 0.08


@pytest.fixture
def tone_wav(tmp_path: Path) -> Path:
    # 44.1 kHz stereo with a second of silence each side: everything has to change.
    return make_tone(tmp_path / "tone.wav", seconds=2.0, lead_silence=1.0, tail_silence=1.0)


@pytest.mark.parametrize(
    ("suffix", "codec"),
    [
        (".wav", ()),
        (".mp3", ("-c:a", "libmp3lame")),
        (".ogg", ("-c:a", "libvorbis")),
        (".opus", ("-c:a", "libopus")),
        (".m4a", ("-c:a", "aac")),
    ],
)
def test_every_common_input_becomes_8khz_mono_16bit_trimmed_and_audible(
    tone_wav: Path, tmp_path: Path, suffix: str, codec: tuple[str, ...]
) -> None:
    source = tone_wav if suffix == ".wav" else encode(tone_wav, tmp_path / f"tone{suffix}", *codec)
    result = convert_file(source, tmp_path / "out" / "prompt.wav", limits=LIMITS)

    info = wav_info(result.path)
    assert (info.rate, info.channels, info.width) == (8000, 1, 2)
    assert info.seconds == pytest.approx(EXPECTED_SECONDS, abs=TOLERANCE_SECONDS)
    assert result.duration_seconds == pytest.approx(info.seconds)
    assert info.rms_dbfs == pytest.approx(DEFAULT_TARGET_DBFS, abs=1.5)


def test_wav_header_is_plain_pcm_without_metadata_chunks(tone_wav: Path, tmp_path: Path) -> None:
    result = convert_file(tone_wav, tmp_path / "plain.wav", limits=LIMITS)
    header = result.path.read_bytes()[:44]
    assert header[:4] == b"RIFF" and header[8:16] == b"WAVEfmt "
    assert header[36:40] == b"data"  # the data chunk follows fmt directly: no LIST chunk


def test_sln_output_is_headerless_signed_linear(tone_wav: Path, tmp_path: Path) -> None:
    result = convert_file(tone_wav, tmp_path / "prompt.sln", limits=LIMITS)
    data = result.path.read_bytes()
    assert not data.startswith(b"RIFF")
    assert len(data) == pytest.approx(EXPECTED_SECONDS * 8000 * 2, abs=TOLERANCE_SECONDS * 16000)
    assert result.duration_seconds == pytest.approx(len(data) / 16000)


@pytest.mark.parametrize("gain_db", [-42.0, -0.5])
def test_quiet_and_loud_inputs_are_normalised_to_the_target_without_clipping(
    tmp_path: Path, gain_db: float
) -> None:
    source = make_tone(tmp_path / "in.wav", gain_db=gain_db, channels=1)
    result = convert_file(source, tmp_path / "out.wav", limits=LIMITS, target_dbfs=-18.0)
    info = wav_info(result.path)
    assert info.rms_dbfs == pytest.approx(-18.0, abs=1.0)
    # A sine's peak is 3 dB above its RMS: -15 dBFS, well below full scale.
    assert info.rms_dbfs + 3.01 < -1.0


def test_silence_far_beyond_the_limit_still_counts_only_the_speech(tmp_path: Path) -> None:
    source = make_tone(tmp_path / "in.wav", seconds=2.0, lead_silence=5.0, tail_silence=12.0, channels=1)
    result = convert_file(source, tmp_path / "out.wav", limits=AudioLimits(5_000_000, max_seconds=3.0))
    assert wav_info(result.path).seconds == pytest.approx(EXPECTED_SECONDS, abs=TOLERANCE_SECONDS)


def test_no_trim_keeps_the_silence(tone_wav: Path, tmp_path: Path) -> None:
    result = convert_file(tone_wav, tmp_path / "out.wav", limits=LIMITS, trim_silence=False)
    assert wav_info(result.path).seconds == pytest.approx(4.0, abs=0.02)


# --- bad input: a clear error, nothing written, nothing left behind ---------------------------
@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    return tmp_path / "out"


def test_random_bytes_are_rejected_as_corrupt(tmp_path: Path, out_dir: Path, scratch_tmp: Path) -> None:
    source = tmp_path / "message.mp3"
    # Fixed bytes (not os.urandom) so the test cannot pass or fail by chance.
    source.write_bytes(bytes((i * 7919 + 13) % 251 for i in range(50_000)))
    with pytest.raises(CorruptAudioError, match=r"message\.mp3"):
        convert_file(source, out_dir / "message.wav", limits=LIMITS)
    assert leftovers(out_dir, scratch_tmp) == []


def test_a_truncated_file_is_rejected_as_corrupt(
    tone_wav: Path, tmp_path: Path, out_dir: Path, scratch_tmp: Path
) -> None:
    whole = encode(tone_wav, tmp_path / "whole.m4a", "-c:a", "aac")
    broken = tmp_path / "broken.m4a"
    broken.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])
    with pytest.raises(CorruptAudioError):
        convert_file(broken, out_dir / "x.wav", limits=LIMITS)
    assert leftovers(out_dir, scratch_tmp) == []


def test_empty_file_and_empty_upload_are_rejected(tmp_path: Path, out_dir: Path, scratch_tmp: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.touch()
    with pytest.raises(EmptyAudioError):
        convert_file(empty, out_dir / "a.wav", limits=LIMITS)
    with pytest.raises(EmptyAudioError):
        convert_bytes(b"", "upload.ogg", out_dir / "b.wav", limits=LIMITS)
    assert leftovers(out_dir, scratch_tmp) == []


def test_a_wav_with_a_header_and_no_samples_is_empty(tmp_path: Path, out_dir: Path) -> None:
    source = tmp_path / "zero.wav"
    with wave.open(str(source), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(8000)
    with pytest.raises(EmptyAudioError):
        convert_file(source, out_dir / "a.wav", limits=LIMITS)
    assert leftovers(out_dir) == []


def test_silence_only_is_rejected(tmp_path: Path, out_dir: Path, scratch_tmp: Path) -> None:
    source = encode(make_silence(tmp_path / "silence.wav"), tmp_path / "silence.mp3")
    with pytest.raises(SilentAudioError):
        convert_file(source, out_dir / "a.wav", limits=LIMITS)
    assert leftovers(out_dir, scratch_tmp) == []


def test_oversized_file_and_upload_are_rejected_before_decoding(
    tone_wav: Path, out_dir: Path, scratch_tmp: Path
) -> None:
    small = AudioLimits(max_bytes=tone_wav.stat().st_size - 1, max_seconds=10.0)
    with pytest.raises(AudioTooLargeError, match="bytes"):
        convert_file(tone_wav, out_dir / "a.wav", limits=small)
    with pytest.raises(AudioTooLargeError):
        convert_bytes(tone_wav.read_bytes(), "tone.wav", out_dir / "a.wav", limits=small)
    assert leftovers(out_dir, scratch_tmp) == []


def test_too_long_speech_is_rejected(tmp_path: Path, out_dir: Path, scratch_tmp: Path) -> None:
    source = make_tone(tmp_path / "long.wav", seconds=5.0)
    with pytest.raises(AudioTooLongError, match="3 seconds"):
        convert_file(source, out_dir / "a.wav", limits=AudioLimits(2_000_000, max_seconds=3.0))
    assert leftovers(out_dir, scratch_tmp) == []


def test_a_failed_conversion_leaves_the_existing_target_untouched(tmp_path: Path, out_dir: Path) -> None:
    target = out_dir / "message.wav"
    first = convert_file(make_tone(tmp_path / "good.wav"), target, limits=LIMITS)
    before = first.path.read_bytes()
    silent = make_silence(tmp_path / "silent.wav")
    with pytest.raises(SilentAudioError):
        convert_file(silent, target, limits=LIMITS)
    assert target.read_bytes() == before
    assert sorted(os.listdir(out_dir)) == ["message.wav"]


def test_unsupported_output_suffix_is_refused(tone_wav: Path, out_dir: Path) -> None:
    with pytest.raises(UnsupportedOutputError):
        convert_file(tone_wav, out_dir / "x.mp3", limits=LIMITS)
    assert leftovers(out_dir) == []


def test_upload_bytes_convert_like_files(tone_wav: Path, tmp_path: Path, scratch_tmp: Path) -> None:
    mp3 = encode(tone_wav, tmp_path / "upload.mp3")
    result = convert_bytes(
        mp3.read_bytes(), "../../etc/evil name.mp3", tmp_path / "out" / "u.wav", limits=LIMITS
    )
    assert wav_info(result.path).rate == 8000
    assert leftovers(scratch_tmp) == []
