"""The whole prompt catalogue, built with real espeak-ng into Asterisk's sounds layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from burgernet.settings import Settings, load_settings
from recordings.catalogue import (
    PROMPTS,
    alert_message_sound,
    build_catalogue,
    menu_item_prompt,
    prompt_names,
    prompt_text,
)
from recordings.paths import action_sound_dir, prompt_sound_name
from tests.recordings.conftest import CountingEngine, wav_info

REQUIRED = {
    "welcome",
    "enter-postcode",
    "invalid-postcode",
    "no-action",
    "menu-intro",
    "tip-instructions",
    "tip-thanks",
    "connecting",
    "all-busy",
    "alert-menu",
    "optout-confirmed",
    "goodbye",
    "technical-fallback",
}


def test_the_catalogue_has_every_prompt_in_both_languages() -> None:
    assert set(PROMPTS) >= REQUIRED
    assert {f"digits/{d}" for d in range(10)} <= set(prompt_names())
    for name in prompt_names():
        assert prompt_text("nl", name) and prompt_text("en", name)
    assert prompt_text("nl", "welcome").startswith("Welkom bij Burgernet")
    assert "één" in prompt_text("nl", "alert-menu") and "negen" in prompt_text("nl", "alert-menu")
    with pytest.raises(KeyError):
        prompt_text("nl", "digits/10")


def test_build_writes_every_prompt_where_asterisk_looks_and_rebuild_uses_the_cache(
    audio_settings: Settings, engine: CountingEngine
) -> None:
    built = build_catalogue(settings=audio_settings, engine=engine)
    assert len(built) == 2 * len(prompt_names()) == len(engine.calls)
    for prompt in built:
        # Playback(burgernet/welcome) with CHANNEL(language)=nl opens sounds/nl/burgernet/welcome.wav
        expected = audio_settings.sounds_dir / prompt.lang / f"{prompt_sound_name(prompt.name)}.wav"
        assert prompt.path == expected and prompt.written
        info = wav_info(prompt.path)
        assert (info.rate, info.channels, info.width) == (8000, 1, 2)
        assert info.seconds > 0.3 and info.rms_dbfs > -30.0
    no_action = wav_info(audio_settings.sounds_dir / "nl" / "burgernet" / "no-action.wav")
    assert no_action.seconds > 8.0  # the full message, not a truncated one

    again = build_catalogue(settings=audio_settings, engine=engine, langs=["en"])
    assert [p.written for p in again] == [False] * len(prompt_names())
    assert len(engine.calls) == len(built)  # not one more engine run


def test_a_damaged_prompt_file_is_repaired_by_the_next_build(
    audio_settings: Settings, engine: CountingEngine
) -> None:
    build_catalogue(settings=audio_settings, engine=engine, langs=["nl"])
    welcome = audio_settings.sounds_dir / "nl" / "burgernet" / "welcome.wav"
    good = welcome.read_bytes()
    welcome.write_bytes(b"oops")
    rebuilt = {p.name: p for p in build_catalogue(settings=audio_settings, engine=engine, langs=["nl"])}
    assert rebuilt["welcome"].written and not rebuilt["goodbye"].written
    assert welcome.read_bytes() == good


def test_menu_item_prompt_is_an_absolute_sound_name_without_extension(
    audio_settings: Settings, engine: CountingEngine
) -> None:
    name = menu_item_prompt("nl", 2, "de vermiste man in Utrecht.", settings=audio_settings, engine=engine)
    assert Path(name).is_absolute() and not name.endswith(".wav")
    assert wav_info(Path(f"{name}.wav")).rate == 8000
    assert engine.calls[-1][0] == "Voor de vermiste man in Utrecht, toets twee."
    with pytest.raises(ValueError):
        menu_item_prompt("nl", 10, "x", settings=audio_settings, engine=engine)


def test_alert_message_sound_is_kept_with_the_action(
    audio_settings: Settings, engine: CountingEngine
) -> None:
    text = "Gezocht: een man van ongeveer veertig jaar met een rode jas."
    name = alert_message_sound(7, "nl", text, settings=audio_settings, engine=engine)
    path = Path(f"{name}.wav")
    assert path.parent == action_sound_dir(audio_settings, 7)
    assert wav_info(path).rms_dbfs > -30.0
    assert alert_message_sound(7, "nl", text, settings=audio_settings, engine=engine) == name
    assert len(engine.calls) == 1


def test_sound_names_are_absolute_even_with_a_relative_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: CountingEngine
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(data_dir=Path("var"))
    name = menu_item_prompt("en", 1, "the missing boy", settings=settings, engine=engine)
    assert Path(name).is_absolute() and Path(name).is_relative_to(tmp_path)
    assert Path(f"{name}.wav").is_file()
