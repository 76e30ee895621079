"""An action's alert message: the centralist's own recording wins over TTS."""

from __future__ import annotations

from pathlib import Path

import pytest

from burgernet.settings import Settings
from recordings.convert import CorruptAudioError
from recordings.messages import (
    delete_action_recording,
    recorded_message_path,
    resolve_alert_sound,
    store_action_recording,
)
from recordings.paths import tts_cache_dir
from tests.recordings.conftest import CountingEngine, encode, make_tone, wav_info

TEXT = "De politie zoekt een blauwe bestelbus met kenteken V V, twee drie vier, B."


@pytest.fixture
def recorded_mp3(tmp_path: Path) -> Path:
    return encode(
        make_tone(tmp_path / "voice.wav", lead_silence=0.5, tail_silence=0.5), tmp_path / "voice.mp3"
    )


def test_without_a_recording_the_alert_is_spoken_by_tts(
    audio_settings: Settings, engine: CountingEngine
) -> None:
    name = resolve_alert_sound(3, "en", TEXT, settings=audio_settings, engine=engine)
    assert Path(f"{name}.wav").is_file()
    assert engine.calls == [(TEXT, "en-gb")]


def test_an_uploaded_recording_is_converted_and_played_in_every_language(
    audio_settings: Settings, engine: CountingEngine, recorded_mp3: Path
) -> None:
    stored = store_action_recording(3, recorded_mp3.read_bytes(), "bericht.mp3", settings=audio_settings)
    info = wav_info(stored)
    assert (info.rate, info.channels, info.width) == (8000, 1, 2)
    assert info.seconds == pytest.approx(2.2, abs=0.08)
    for lang in ("nl", "en"):
        assert resolve_alert_sound(3, lang, TEXT, settings=audio_settings, engine=engine) == str(
            stored.with_suffix("")
        )
    assert engine.calls == []
    # Another action is not affected.
    other = resolve_alert_sound(4, "nl", TEXT, settings=audio_settings, engine=engine)
    assert other != str(stored.with_suffix(""))


def test_a_language_specific_recording_wins_for_that_language_only(
    audio_settings: Settings, engine: CountingEngine, recorded_mp3: Path, tmp_path: Path
) -> None:
    generic = store_action_recording(5, recorded_mp3, "bericht.mp3", settings=audio_settings)
    english_ogg = encode(make_tone(tmp_path / "en.wav", seconds=1.0), tmp_path / "en.ogg")
    english = store_action_recording(5, english_ogg, "message.ogg", lang="en", settings=audio_settings)
    assert resolve_alert_sound(5, "en", TEXT, settings=audio_settings) == str(english.with_suffix(""))
    assert resolve_alert_sound(5, "nl", TEXT, settings=audio_settings) == str(generic.with_suffix(""))
    assert delete_action_recording(5, "en", settings=audio_settings)
    assert resolve_alert_sound(5, "en", TEXT, settings=audio_settings) == str(generic.with_suffix(""))


def test_a_corrupt_upload_keeps_the_previous_recording(audio_settings: Settings, recorded_mp3: Path) -> None:
    stored = store_action_recording(6, recorded_mp3, "bericht.mp3", settings=audio_settings)
    before = stored.read_bytes()
    with pytest.raises(CorruptAudioError):
        store_action_recording(6, b"this is not audio at all" * 100, "bericht.mp3", settings=audio_settings)
    assert stored.read_bytes() == before
    assert sorted(p.name for p in stored.parent.iterdir()) == ["recorded.wav"]
    assert not tts_cache_dir(audio_settings).exists()


def test_recordings_live_per_action(audio_settings: Settings) -> None:
    assert recorded_message_path(12, settings=audio_settings) == (
        audio_settings.recordings_dir / "actions" / "12" / "recorded.wav"
    )
    with pytest.raises(ValueError):
        recorded_message_path(0, settings=audio_settings)
