"""Offline speech with the real espeak-ng: right format, audible, made once per distinct text."""

from __future__ import annotations

from pathlib import Path

import pytest

from burgernet.settings import Settings, load_settings
from recordings.paths import tts_cache_dir
from recordings.tts import EspeakNg, TextToSpeech, TtsError, speak
from tests.recordings.conftest import CountingEngine, leftovers, wav_info

DUTCH = "Welkom bij Burgernet. Heeft u iets gezien? Toets één."


def test_dutch_and_english_speech_is_8khz_mono_and_audible(
    audio_settings: Settings, engine: CountingEngine
) -> None:
    for lang, text in (("nl", DUTCH), ("en", "Welcome to Burgernet. Did you see anything?")):
        path = speak(text, lang, settings=audio_settings, engine=engine)
        info = wav_info(path)
        assert (info.rate, info.channels, info.width) == (8000, 1, 2)
        assert 1.5 < info.seconds < 8.0
        assert info.rms_dbfs > -30.0
        assert path.is_relative_to(tts_cache_dir(audio_settings))
    assert [voice for _, voice in engine.calls] == ["nl", "en-gb"]


def test_the_second_request_is_served_from_the_cache_without_running_the_engine(
    audio_settings: Settings, engine: CountingEngine
) -> None:
    tts = TextToSpeech(audio_settings, engine)
    first = tts.speak(DUTCH, "nl")
    made_at = first.stat().st_mtime_ns
    # Other line breaks and spacing are the same sentence: no second sound.
    second = tts.speak(f"  {DUTCH.replace(' ', chr(10), 1)}  ", "nl")
    assert second == first
    assert first.stat().st_mtime_ns == made_at
    assert len(engine.calls) == 1


def test_a_new_process_reuses_the_files_on_disk(audio_settings: Settings, engine: CountingEngine) -> None:
    first = TextToSpeech(audio_settings, CountingEngine()).speak(DUTCH, "nl")
    again = TextToSpeech(audio_settings, engine).speak(DUTCH, "nl")
    assert again == first and engine.calls == []


def test_language_voice_and_force_each_make_a_new_sound(
    audio_settings: Settings, engine: CountingEngine
) -> None:
    base = TextToSpeech(audio_settings, engine).speak("Burgernet", "nl")
    english = TextToSpeech(audio_settings, engine).speak("Burgernet", "en")
    other_voice = load_settings(data_dir=audio_settings.data_dir, audio={"tts_voice_nl": "nl+f3"})
    female = TextToSpeech(other_voice, engine).speak("Burgernet", "nl")
    assert len({base, english, female}) == 3
    TextToSpeech(audio_settings, engine).speak("Burgernet", "nl", force=True)
    assert len(engine.calls) == 4


def test_an_unknown_voice_fails_clearly_and_caches_nothing(audio_settings: Settings) -> None:
    broken = load_settings(data_dir=audio_settings.data_dir, audio={"tts_voice_nl": "no-such-voice"})
    with pytest.raises(TtsError, match="no-such-voice"):
        speak("Hallo", "nl", settings=broken)
    assert [p for p in leftovers(tts_cache_dir(broken)) if p.is_file()] == []


def test_empty_text_and_unknown_language_are_refused(audio_settings: Settings) -> None:
    with pytest.raises(TtsError, match="no text"):
        speak(" \n ", "nl", settings=audio_settings)
    with pytest.raises(ValueError, match="unsupported language"):
        speak("Bonjour", "fr", settings=audio_settings)


def test_a_missing_engine_is_reported(audio_settings: Settings, tmp_path: Path) -> None:
    engine = EspeakNg(executable=str(tmp_path / "not-installed"))
    with pytest.raises(TtsError, match="not usable"):
        speak("Hallo", "nl", settings=audio_settings, engine=engine)
