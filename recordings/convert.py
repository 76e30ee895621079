"""Turn any sound a user brings into what Asterisk plays without transcoding.

Asterisk's native telephony format is signed linear 16-bit mono at 8 kHz ("slin"): a
``.wav`` with exactly that header or a headerless ``.sln`` is streamed as is, while any
other rate or codec is transcoded on every single playback. So every sound the project
hands to Asterisk goes through :func:`convert_file` once, here.

pydub does the decoding (through ffmpeg), the silence analysis and the gain. The final
resampling to 8 kHz is left to ffmpeg on export because pydub's own ``set_frame_rate``
(``audioop.ratecv``) has no anti-aliasing filter: sibilants above 4 kHz would fold back
into the speech band as hiss.

Writing is atomic: the result goes to a hidden temporary file in the target directory and
is renamed over the target only when it is complete and checked, so a failed conversion
leaves nothing behind and a half-written prompt is never played.
"""

from __future__ import annotations

import math
import os
import tempfile
import warnings
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

with warnings.catch_warnings():
    # pydub 0.25 imports audioop, deprecated (not removed) in Python 3.11/3.12.
    warnings.simplefilter("ignore", DeprecationWarning)
    from pydub import AudioSegment
    from pydub.exceptions import CouldntDecodeError
    from pydub.silence import detect_leading_silence

from burgernet.settings import Settings, get_settings

# What Asterisk plays without transcoding (format_wav / format_sln: slin, 8 kHz).
TARGET_SAMPLE_RATE = 8000
TARGET_CHANNELS = 1
TARGET_SAMPLE_WIDTH = 2  # bytes: 16-bit signed little-endian
OUTPUT_SUFFIXES = (".wav", ".sln")

# Loudness: -20 dBFS RMS is the usual level for telephony prompts; peaks are kept 1 dB
# below full scale so the gain never clips.
DEFAULT_TARGET_DBFS = -20.0
PEAK_HEADROOM_DB = 1.0
# Anything quieter than this is "silence" for trimming and for rejecting empty recordings.
SILENCE_THRESHOLD_DBFS = -50.0
SILENCE_CHUNK_MS = 10
# Keep a little of the silence around the speech so the first plosive is not clipped.
TRIM_PADDING_MS = 100
# A recording may carry this much silence beyond max_seconds before trimming; decoding
# stops there so a tiny, hours-long file cannot fill memory.
DECODE_ALLOWANCE_SECONDS = 30.0

# Bumped whenever the output of this module changes, so TTS caches are rebuilt.
CONVERSION_VERSION = "1"


class AudioError(Exception):
    """A sound cannot be used; the message says why in words a user understands."""


class EmptyAudioError(AudioError):
    """The input has no bytes or no audio samples."""


class CorruptAudioError(AudioError):
    """The input is not a sound ffmpeg can decode (random bytes, an image, a broken file)."""


class SilentAudioError(AudioError):
    """The input decodes but contains nothing above the silence threshold."""


class AudioTooLargeError(AudioError):
    """The input file is bigger than settings.audio.max_upload_bytes."""


class AudioTooLongError(AudioError):
    """The speech lasts longer than settings.audio.max_seconds."""


class UnsupportedOutputError(AudioError):
    """The target name does not end in a format Asterisk plays natively (.wav, .sln)."""


@dataclass(frozen=True)
class AudioLimits:
    max_bytes: int
    max_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> AudioLimits:
        return cls(max_bytes=settings.audio.max_upload_bytes, max_seconds=settings.audio.max_seconds)


@dataclass(frozen=True)
class ConvertedAudio:
    path: Path
    duration_seconds: float
    # RMS level of the written sound, after normalisation.
    dbfs: float


def convert_file(
    source: Path,
    target: Path,
    *,
    limits: AudioLimits | None = None,
    target_dbfs: float = DEFAULT_TARGET_DBFS,
    trim_silence: bool = True,
) -> ConvertedAudio:
    """Convert ``source`` (wav, mp3, ogg, m4a, anything ffmpeg reads) to 8 kHz mono 16-bit.

    ``target`` must end in ``.wav`` or ``.sln``; its directory is created. Raises an
    :class:`AudioError` subclass for empty, corrupt, silent-only, too large or too long
    input, and then neither ``target`` nor any temporary file exists afterwards (an
    existing ``target`` is left untouched).
    """
    limits = limits or AudioLimits.from_settings(get_settings())
    suffix = target.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise UnsupportedOutputError(f"{target.name}: output must end in .wav or .sln")
    size = _input_size(source)
    if size == 0:
        raise EmptyAudioError(f"{source.name}: the file is empty")
    if size > limits.max_bytes:
        raise AudioTooLargeError(
            f"{source.name}: {size} bytes is more than the limit of {limits.max_bytes} bytes"
        )
    segment = _decode(source, limits)
    segment = _prepare(segment, source.name, limits, trim_silence)
    segment = _normalise(segment, target_dbfs)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_target(target) as temporary:
        _export(segment, temporary, suffix)
        duration = _check_output(temporary, suffix)
    return ConvertedAudio(path=target, duration_seconds=duration, dbfs=segment.dBFS)


def convert_bytes(
    data: bytes,
    filename: str,
    target: Path,
    *,
    limits: AudioLimits | None = None,
    target_dbfs: float = DEFAULT_TARGET_DBFS,
    trim_silence: bool = True,
) -> ConvertedAudio:
    """:func:`convert_file` for an upload held in memory; ``filename`` only names it in errors."""
    limits = limits or AudioLimits.from_settings(get_settings())
    display = Path(filename).name or "upload"
    if not data:
        raise EmptyAudioError(f"{display}: the upload is empty")
    if len(data) > limits.max_bytes:
        raise AudioTooLargeError(
            f"{display}: {len(data)} bytes is more than the limit of {limits.max_bytes} bytes"
        )
    with tempfile.TemporaryDirectory(prefix="burgernet-upload-") as scratch:
        # ffmpeg needs a seekable file (m4a keeps its index at the end), not a pipe.
        source = Path(scratch) / display
        source.write_bytes(data)
        return convert_file(source, target, limits=limits, target_dbfs=target_dbfs, trim_silence=trim_silence)


def read_wav_format(path: Path) -> tuple[int, int, int, float]:
    """(sample rate, channels, sample width in bytes, duration in seconds) of a ``.wav``."""
    with wave.open(str(path), "rb") as reader:
        rate = reader.getframerate()
        return rate, reader.getnchannels(), reader.getsampwidth(), reader.getnframes() / rate


# --- steps ----------------------------------------------------------------------------------
def _input_size(source: Path) -> int:
    try:
        return source.stat().st_size
    except FileNotFoundError:
        raise AudioError(f"{source}: no such file") from None


def _decode(source: Path, limits: AudioLimits) -> AudioSegment:
    decode_seconds = limits.max_seconds + DECODE_ALLOWANCE_SECONDS
    with tempfile.TemporaryDirectory(prefix="burgernet-decode-") as scratch:
        # A link without a suffix makes pydub always decode through ffmpeg: for a name
        # ending in .wav it would otherwise parse the header itself and reject valid
        # WAVE_FORMAT_EXTENSIBLE or float files that ffmpeg reads fine.
        neutral = Path(scratch) / "input"
        neutral.symlink_to(source.resolve())
        try:
            segment = AudioSegment.from_file(str(neutral), duration=decode_seconds)
        except (CouldntDecodeError, IndexError, KeyError, ValueError) as exc:
            # IndexError/KeyError: ffprobe found no audio stream (an image, a text file).
            raise CorruptAudioError(f"{source.name}: not a sound file that can be read") from exc
    if len(segment) == 0:
        raise EmptyAudioError(f"{source.name}: the file contains no audio")
    if len(segment) >= decode_seconds * 1000:
        raise AudioTooLongError(
            f"{source.name}: longer than {limits.max_seconds:g} seconds (the limit for a message)"
        )
    return segment


def _prepare(segment: AudioSegment, name: str, limits: AudioLimits, trim_silence: bool) -> AudioSegment:
    segment = segment.set_channels(TARGET_CHANNELS).set_sample_width(TARGET_SAMPLE_WIDTH)
    if segment.max_dBFS < SILENCE_THRESHOLD_DBFS:
        raise SilentAudioError(f"{name}: the recording is silent")
    if trim_silence:
        segment = _trim(segment)
    seconds = len(segment) / 1000
    if seconds > limits.max_seconds:
        raise AudioTooLongError(
            f"{name}: {seconds:.1f} seconds of sound is more than the limit of {limits.max_seconds:g} seconds"
        )
    return segment


def _trim(segment: AudioSegment) -> AudioSegment:
    lead = detect_leading_silence(segment, SILENCE_THRESHOLD_DBFS, SILENCE_CHUNK_MS)
    tail = detect_leading_silence(segment.reverse(), SILENCE_THRESHOLD_DBFS, SILENCE_CHUNK_MS)
    start = max(0, lead - TRIM_PADDING_MS)
    end = min(len(segment), len(segment) - tail + TRIM_PADDING_MS)
    return segment[start:end]


def _normalise(segment: AudioSegment, target_dbfs: float) -> AudioSegment:
    if math.isinf(segment.dBFS):
        return segment
    gain = target_dbfs - segment.dBFS
    # Never push a peak over full scale: clipping sounds far worse than a quieter prompt.
    gain = min(gain, -PEAK_HEADROOM_DB - segment.max_dBFS)
    return segment.apply_gain(gain)


def _export(segment: AudioSegment, temporary: Path, suffix: str) -> None:
    container = "wav" if suffix == ".wav" else "s16le"
    parameters = [
        "-ar", str(TARGET_SAMPLE_RATE),
        "-ac", str(TARGET_CHANNELS),
        "-acodec", "pcm_s16le",
        # No LIST/INFO chunk: a plain 44-byte header, identical for identical audio.
        "-bitexact", "-map_metadata", "-1",
    ]  # fmt: skip
    with temporary.open("wb") as out:
        segment.export(out, format=container, parameters=parameters)
        out.flush()
        os.fsync(out.fileno())


def _check_output(temporary: Path, suffix: str) -> float:
    """Read the written file back: what Asterisk gets must be exactly slin 8 kHz."""
    if suffix == ".sln":
        frames = temporary.stat().st_size // TARGET_SAMPLE_WIDTH
        return frames / TARGET_SAMPLE_RATE
    rate, channels, width, duration = read_wav_format(temporary)
    if (rate, channels, width) != (TARGET_SAMPLE_RATE, TARGET_CHANNELS, TARGET_SAMPLE_WIDTH):
        raise AudioError(f"conversion produced {rate} Hz, {channels} channel(s), {8 * width}-bit")
    return duration


@contextmanager
def atomic_target(target: Path) -> Iterator[Path]:
    """A temporary path beside ``target``, renamed over it on success and removed on failure."""
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        # mkstemp makes the file private; Asterisk runs as its own user and must read it.
        temporary.chmod(0o644)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
