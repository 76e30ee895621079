"""Where every sound lives on disk, and how Asterisk names it.

Asterisk plays a sound by name *without* extension and picks the file format itself:
``Playback(burgernet/welcome)`` with ``CHANNEL(language)=nl`` opens
``<sounds dir>/nl/burgernet/welcome.wav``, and an absolute name such as
``/var/lib/burgernet/recordings/actions/7/recorded`` opens ``.../recorded.wav``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final, Literal, get_args

from burgernet.settings import Settings

Language = Literal["nl", "en"]
LANGUAGES: Final[tuple[Language, ...]] = get_args(Language)

# The folder under <sounds dir>/<lang>/ that holds the project's prompts.
PROMPT_FOLDER: Final = "burgernet"
SOUND_SUFFIX: Final = ".wav"

# Asterisk's ${UNIQUEID} looks like "1700000000.42"; anything else could walk out of the
# tips folder, so it is refused rather than cleaned.
_SAFE_UNIQUE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_language(lang: str) -> Language:
    if lang not in LANGUAGES:
        raise ValueError(f"unsupported language {lang!r}: use one of {', '.join(LANGUAGES)}")
    return lang


def asterisk_sound_name(path: Path) -> str:
    """The name Asterisk's Playback/Background/BN_ALERT_SOUND take: the path minus its extension.

    Always absolute: Asterisk resolves a relative name against its own sounds folder, not
    our working directory (``data_dir`` defaults to the relative ``var``). The data folder
    is bind-mounted into the Asterisk sandbox at the same absolute path.
    """
    return str(path.absolute().with_suffix(""))


def prompt_sound_name(name: str) -> str:
    """Relative name of a catalogue prompt, resolved by Asterisk in the channel's language."""
    return f"{PROMPT_FOLDER}/{name}"


def prompt_path(settings: Settings, lang: str, name: str) -> Path:
    return settings.sounds_dir / check_language(lang) / PROMPT_FOLDER / f"{name}{SOUND_SUFFIX}"


def tts_cache_dir(settings: Settings) -> Path:
    return settings.data_dir / "tts-cache"


def action_sound_dir(settings: Settings, action_id: int) -> Path:
    """The alert message sounds of one action (uploaded recording and the TTS played)."""
    return settings.recordings_dir / "actions" / str(_check_id(action_id))


# Tips taken without an action (FastAGI down, or a caller nobody could place); the dialplan's
# failure path writes ${BN_TIP_DIR}/unassigned/<UNIQUEID>_<caller number>.wav there, and the
# tip sweep (burgernet.tip_inbox, the same folder name) gives such files their row.
UNASSIGNED_TIPS: Final = "unassigned"


def tips_dir(settings: Settings) -> Path:
    """Where Asterisk records tips (BN_TIP_DIR in the dialplan)."""
    return settings.recordings_dir / "tips"


def tip_recording_path(settings: Settings, action_id: int | None, unique_id: str) -> Path:
    if not _SAFE_UNIQUE_ID.match(unique_id) or ".." in unique_id:
        raise ValueError(f"unusable call id {unique_id!r} for a recording name")
    folder = UNASSIGNED_TIPS if action_id is None else str(_check_id(action_id))
    return tips_dir(settings) / folder / f"{unique_id}{SOUND_SUFFIX}"


def _check_id(action_id: int) -> int:
    if isinstance(action_id, bool) or not isinstance(action_id, int) or action_id < 1:
        raise ValueError(f"action id must be a positive integer, not {action_id!r}")
    return action_id
