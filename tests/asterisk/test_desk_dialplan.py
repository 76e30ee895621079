"""The centralist's desk in the dialplan: the phone's caller name, the header, the whisper switch,
the ring-at-once order and its music-on-hold class, all rendered from validated values."""

from __future__ import annotations

import re
import wave
from io import BytesIO
from pathlib import Path

import pytest

from asterisk_conf.render import (
    CALLER_LANGUAGES,
    MODULES,
    RINGBACK_SOUND,
    AsteriskPlan,
    RenderError,
    RenderPaths,
    render,
    ringback_wav,
)
from asterisk_conf.sandbox import InstanceLayout
from burgernet import channel_vars as cv
from burgernet.desk import LABEL_MAX_CHARS, NO_ACTION_LABEL, phone_label
from burgernet.settings import Settings, load_settings
from recordings.paths import LANGUAGES
from tests.asterisk.conftest import StartAsterisk, centralist
from tests.asterisk.test_dialplan_contract import CODE, _context_body, _lines

PATHS = RenderPaths(
    InstanceLayout(Path("/burgernet-instances/unit")),
    Path("/usr/lib/x86_64-linux-gnu/asterisk/modules"),
    Path("/srv/burgernet/sounds"),
    Path("/srv/burgernet/recordings/tips"),
)
PLAN = AsteriskPlan((centralist("c-mn-1", port=5091),), "MN")


def _settings(tmp_path: Path, **asterisk: object) -> Settings:
    return load_settings(data_dir=tmp_path, asterisk={"ami_secret": "a-long-ami-secret", **asterisk})


def _globals(out: Path) -> dict[str, str]:
    text = (out / "extensions.conf").read_text().split("[globals]", 1)[1].split("#include", 1)[0]
    return dict(
        (name.strip(), value.strip())
        for name, _, value in (line.partition("=") for line in text.splitlines() if "=" in line)
    )


# --- the label the phone shows ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("title", "label"),
    [
        ("Vermist meisje", "BN12 Vermist meisje"),
        ('Vermist "meisje", 8 jaar', "BN12 Vermist meisje 8 jaar"),
        ("Rode\nauto\t(gestolen)^|;", "BN12 Rode auto gestolen"),
        ("Jongen_met\x00fiets", "BN12 Jongen met fiets"),
        ("Zoë  bij  Café", "BN12 Zoë bij Café"),
        ("", "BN12"),
    ],
)
def test_the_phone_label_keeps_only_what_the_dialplan_can_carry(title: str, label: str) -> None:
    assert phone_label(12, title) == label
    # Nothing that would break MSet, Dial's b() arguments or the SIP display name.
    assert not re.search(r"[,^()|\"'\\;\x00-\x1f]", phone_label(12, title))


def test_the_phone_label_is_short_and_says_burgernet_without_an_action() -> None:
    label = phone_label(123456, "Een heel lange titel die niet op het schermpje van een telefoon past")
    assert len(label) <= LABEL_MAX_CHARS and label.startswith("BN123456 Een heel lange")
    assert phone_label(None, "whatever") == NO_ACTION_LABEL


# --- the dialplan ---------------------------------------------------------------------------------------
def test_dial_runs_the_desk_subroutines_on_the_centralists_leg() -> None:
    route = _context_body(cv.CTX_ROUTE)
    predial = re.findall(r"\bb\((burgernet-[a-z-]+)\^s\^1\(", route)
    whisper = re.findall(r"\bU\((burgernet-[a-z-]+)\^", route)
    assert predial == [cv.CTX_DESK_PREDIAL] and whisper == [cv.CTX_DESK_WHISPER]
    assert f"${{{cv.VAR_ACTION_LABEL}}}" in route
    body = _context_body(cv.CTX_DESK_PREDIAL)
    assert "Set(CONNECTEDLINE(name,i)=${ARG2})" in body
    assert f"Set(PJSIP_HEADER(add,{cv.HEADER_ACTION})=${{FILTER(0-9,${{ARG1}})}})" in body
    assert _lines(body)[-1].endswith("Return()") and _lines(_context_body(cv.CTX_DESK_WHISPER))[-1].endswith(
        "Return()"
    )
    assert "app_stack" in MODULES and "res_musiconhold" in MODULES  # Gosub, m()


def test_the_phone_rings_before_the_prompt_unless_the_old_order_is_chosen() -> None:
    lines = _lines(_context_body(cv.CTX_ROUTE))
    first_dial = next(n for n, line in enumerate(lines) if "Dial(" in line)
    prompts = [n for n, line in enumerate(lines) if "/burgernet/connecting" in line]
    assert len(prompts) == 1
    # The prompt is only reached through the BN_PROMPT_FIRST branch (label "prompt").
    assert lines[prompts[0]].startswith("same => n(prompt),Playback(")
    assert f'GotoIf($["${{{cv.GLOBAL_PROMPT_FIRST}}}" = "yes"]?prompt)' in lines[prompts[0] - 3]
    assert f"Set(RING=m({cv.MOH_CONNECTING_PREFIX}${{CHANNEL(language)}}))" in "\n".join(lines[:first_dial])
    assert "${RING}${DESK}" in lines[first_dial]


def test_the_whisper_plays_only_catalogue_prompts() -> None:
    body = _context_body(cv.CTX_DESK_WHISPER)
    assert "/burgernet/desk-whisper" in body and "/burgernet/digits/" in body
    assert "desk-whisper" in CODE


# --- rendering ------------------------------------------------------------------------------------------
def test_whisper_and_prompt_order_render_as_checked_switches(tmp_path: Path) -> None:
    render(tmp_path / "default", _settings(tmp_path), PLAN, PATHS)
    assert _globals(tmp_path / "default")[cv.GLOBAL_DESK_WHISPER] == "no"
    assert _globals(tmp_path / "default")[cv.GLOBAL_PROMPT_FIRST] == "no"
    chosen = _settings(tmp_path, desk_whisper=True, connecting_prompt="before_ringing")
    render(tmp_path / "chosen", chosen, PLAN, PATHS)
    assert _globals(tmp_path / "chosen")[cv.GLOBAL_DESK_WHISPER] == "yes"
    assert _globals(tmp_path / "chosen")[cv.GLOBAL_PROMPT_FIRST] == "yes"


@pytest.mark.parametrize(
    ("field", "value"),
    [("desk_whisper", "yes\nexten => s,1,Hangup()"), ("connecting_prompt", "never; Hangup")],
)
def test_a_bad_switch_value_is_refused_and_nothing_is_written(tmp_path: Path, field: str, value: str) -> None:
    with pytest.raises(ValueError):  # the settings themselves refuse it
        _settings(tmp_path, **{field: value})
    settings = _settings(tmp_path)
    # Past the settings' validation (a hand-built object): the renderer refuses it too.
    forged = settings.model_copy(update={"asterisk": settings.asterisk.model_copy(update={field: value})})
    with pytest.raises(RenderError, match=f"asterisk.{field}"):
        render(tmp_path / "out", forged, PLAN, PATHS)
    assert not (tmp_path / "out" / "extensions.conf").exists()


def test_the_music_on_hold_classes_say_connecting_then_ring(tmp_path: Path) -> None:
    assert set(CALLER_LANGUAGES) == set(LANGUAGES)
    render(tmp_path / "etc", _settings(tmp_path), PLAN, PATHS)
    text = (tmp_path / "etc" / "musiconhold.conf").read_text()
    for language in CALLER_LANGUAGES:
        section = text.split(f"[{cv.MOH_CONNECTING_PREFIX}{language}]", 1)[1].split("\n[", 1)[0]
        assert "mode = playlist" in section and "loop_last = yes" in section
        assert re.findall(r"^entry = (.*)$", section, flags=re.MULTILINE) == [
            f"/srv/burgernet/sounds/{language}/burgernet/connecting",
            f"/burgernet-instances/unit/etc/{RINGBACK_SOUND}",
        ]
    ringback = (tmp_path / "etc" / f"{RINGBACK_SOUND}.wav").read_bytes()
    assert ringback == ringback_wav()
    with wave.open(BytesIO(ringback)) as sound:
        assert (sound.getframerate(), sound.getnchannels(), sound.getnframes()) == (8000, 1, 40_000)


@pytest.mark.asterisk
def test_asterisk_loads_the_desk_with_the_whisper_on(start_asterisk: StartAsterisk) -> None:
    configured = start_asterisk(PLAN, desk_whisper=True)
    instance = configured.instance
    assert f"{cv.GLOBAL_DESK_WHISPER}=yes" in instance.rx("dialplan show globals").replace(" ", "")
    for context in (cv.CTX_DESK_PREDIAL, cv.CTX_DESK_WHISPER):
        assert f"'{context}'" in instance.rx(f"dialplan show {context}")
    classes = instance.rx("moh show classes")
    for language in CALLER_LANGUAGES:
        assert f"Class: {cv.MOH_CONNECTING_PREFIX}{language}" in classes
