"""The alert message of an action: a centralist's own recording when there is one, else TTS.

A centralist may upload (or record in the browser) the message the alert call plays; a
human voice is trusted more than synthetic speech. It is stored converted, per action,
either for one language (``recorded-nl.wav``) or for every language (``recorded.wav``).
No database here: callers pass plain values and store the returned path if they want.
"""

from __future__ import annotations

from pathlib import Path

from burgernet.settings import Settings, get_settings
from recordings.catalogue import alert_message_sound
from recordings.convert import AudioLimits, convert_bytes, convert_file
from recordings.paths import action_sound_dir, asterisk_sound_name, check_language
from recordings.tts import SpeechEngine


def recorded_message_path(
    action_id: int, lang: str | None = None, *, settings: Settings | None = None
) -> Path:
    """Where the uploaded recording of ``action_id`` lives (``lang=None``: all languages)."""
    settings = settings or get_settings()
    name = "recorded.wav" if lang is None else f"recorded-{check_language(lang)}.wav"
    return action_sound_dir(settings, action_id) / name


def store_action_recording(
    action_id: int,
    upload: Path | bytes,
    filename: str,
    *,
    lang: str | None = None,
    settings: Settings | None = None,
) -> Path:
    """Convert an uploaded message (wav, mp3, ogg, m4a, ...) and store it for the action.

    Returns the stored ``.wav`` path. Raises an :class:`recordings.convert.AudioError`
    subclass for unusable input; an earlier recording of the action then stays as it was.
    """
    settings = settings or get_settings()
    target = recorded_message_path(action_id, lang, settings=settings)
    limits = AudioLimits.from_settings(settings)
    if isinstance(upload, bytes):
        return convert_bytes(upload, filename, target, limits=limits).path
    return convert_file(Path(upload), target, limits=limits).path


def delete_action_recording(
    action_id: int, lang: str | None = None, *, settings: Settings | None = None
) -> bool:
    """Remove an uploaded recording (the alert falls back to TTS); False when there was none."""
    path = recorded_message_path(action_id, lang, settings=settings)
    existed = path.is_file()
    path.unlink(missing_ok=True)
    return existed


def resolve_alert_sound(
    action_id: int,
    lang: str,
    text: str,
    *,
    settings: Settings | None = None,
    engine: SpeechEngine | None = None,
) -> str:
    """The Asterisk sound name (no extension) to play as the alert message for ``lang``.

    Order: a recording for this language, a recording for all languages, then ``text``
    spoken by TTS in ``lang`` (made once and cached).
    """
    settings = settings or get_settings()
    for candidate in (
        recorded_message_path(action_id, lang, settings=settings),
        recorded_message_path(action_id, None, settings=settings),
    ):
        if candidate.is_file():
            return asterisk_sound_name(candidate)
    return alert_message_sound(action_id, lang, text, settings=settings, engine=engine)
