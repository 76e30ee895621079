"""Answering-machine detection as rendered: settings [amd] → AMD()'s arguments, amd.conf, the
modules and AMI permissions it needs, and the dialplan's side of the verdict's contract."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from asterisk_conf.render import AMD_CONF_KEYS, AMI_EVENTS, MODULES, RenderError, amd_arguments, render
from broadcasting.channels.voice_asterisk import machine_text
from burgernet import channel_vars as cv
from burgernet.settings import AmdSettings, Settings, SettingsError, load_settings
from tests.asterisk.test_dialplan_contract import DIALPLAN_TEXT, _code
from tests.asterisk.test_render import PATHS, PLAN

ALERT = _code(DIALPLAN_TEXT["alert.conf"])


def _globals(folder: Path) -> dict[str, str]:
    text = (folder / "extensions.conf").read_text()
    return dict(re.findall(r"^(BN_[A-Z_]+) = (.*)$", text, flags=re.MULTILINE))


def _settings(tmp_path: Path, **amd: object) -> Settings:
    return load_settings(data_dir=tmp_path, asterisk={"ami_secret": "a-long-ami-secret"}, amd=amd)


def test_the_tuned_values_reach_amd_and_amd_conf(tmp_path: Path) -> None:
    settings = _settings(tmp_path, max_words=4, greeting_ms=2200, beep_silence_ms=900, beep_wait_seconds=12)
    render(tmp_path, settings, PLAN, PATHS)
    globals_ = _globals(tmp_path)
    a = settings.amd
    assert globals_[cv.GLOBAL_AMD] == "yes"
    assert globals_[cv.GLOBAL_AMD_ARGS] == (
        f"{a.initial_silence_ms},2200,{a.after_greeting_silence_ms},{a.total_analysis_ms},"
        f"{a.min_word_length_ms},{a.between_words_silence_ms},4,{a.silence_threshold},{a.max_word_length_ms}"
    )
    assert (globals_[cv.GLOBAL_AMD_BEEP_SILENCE], globals_[cv.GLOBAL_AMD_BEEP_WAIT]) == ("900", "12")
    conf = dict(re.findall(r"^([a-z_]+) = (\d+)$", (tmp_path / "amd.conf").read_text(), flags=re.MULTILINE))
    assert list(conf) == list(AMD_CONF_KEYS)
    assert conf["maximum_number_of_words"] == "4" and conf["greeting"] == "2200"


def test_switched_off_the_dialplan_skips_amd(tmp_path: Path) -> None:
    render(tmp_path, _settings(tmp_path, enabled=False), PLAN, PATHS)
    assert _globals(tmp_path)[cv.GLOBAL_AMD] == "no"
    assert f'GotoIf($["${{{cv.GLOBAL_AMD}}}" != "yes"]?amd_off)' in ALERT


@pytest.mark.parametrize(
    "bad", [{"max_words": 0}, {"greeting_ms": 100}, {"silence_threshold": 40000}, {"total_analysis_ms": 700}]
)
def test_out_of_range_values_are_refused_at_start_up(tmp_path: Path, bad: dict[str, object]) -> None:
    with pytest.raises(SettingsError):
        _settings(tmp_path, **bad)


@pytest.mark.parametrize("value", ["3500,1", True, -1, 10**6])
def test_the_renderer_checks_each_value_again(value: object) -> None:
    # Settings made without validation (model_construct) must still not reach the dialplan.
    amd = AmdSettings.model_construct(**{**AmdSettings().model_dump(), "greeting_ms": value})
    with pytest.raises(RenderError, match=r"amd\.greeting_ms"):
        amd_arguments(amd)


def test_asterisk_loads_what_the_dialplan_uses_and_ami_delivers_the_verdict(tmp_path: Path) -> None:
    assert {"app_amd", "app_waitforsilence", "app_userevent"} <= set(MODULES)
    assert "UserEvent" in AMI_EVENTS
    render(tmp_path, _settings(tmp_path), PLAN, PATHS)
    manager = (tmp_path / "manager.conf").read_text()
    assert re.search(r"^read = .*\buser\b", manager, flags=re.MULTILINE)  # UserEvent's class
    assert "eventfilter = Event: UserEvent" in manager


def test_the_verdict_event_carries_the_fields_the_sender_reads() -> None:
    fields = f"{cv.AMD_FIELD_STATUS}: ${{AMDSTATUS}},{cv.AMD_FIELD_CAUSE}: ${{AMDCAUSE}},{cv.AMD_FIELD_MS}: "
    assert f"UserEvent({cv.AMD_EVENT},{fields}" in ALERT
    # AMD switched off still answers the sender, which would otherwise wait for a verdict.
    assert f"UserEvent({cv.AMD_EVENT},{cv.AMD_FIELD_STATUS}: {cv.AMD_OFF}," in ALERT
    assert f'GotoIf($["${{AMDSTATUS}}" = "{cv.AMD_MACHINE}"]?machine,1)' in ALERT
    assert f"AMD(${{{cv.GLOBAL_AMD_ARGS}}})" in ALERT


def test_the_machine_gets_its_message_after_the_beep_and_never_silence() -> None:
    machine = ALERT.split("exten => machine,1,", 1)[1].split("\nexten =>", 1)[0]
    steps = [line.strip() for line in machine.splitlines() if line.strip()]
    # No machine sound: the whole alert rather than nothing.
    assert steps[0] == f'GotoIf($["${{{cv.VAR_MACHINE_SOUND}}}" = ""]?s,play)'
    assert steps[1] == (
        f"same => n,WaitForSilence(${{{cv.GLOBAL_AMD_BEEP_SILENCE}}},1,${{{cv.GLOBAL_AMD_BEEP_WAIT}}})"
    )
    assert f"same => n,Playback(${{{cv.VAR_MACHINE_SOUND}}})" in steps
    assert steps[-1] == "same => n,Hangup()"


def test_the_machine_message_names_the_action_its_code_and_the_free_number() -> None:
    text = machine_text("nl", "Vermist kind Eindhoven.", "4821", "08000011")
    assert "Vermist kind Eindhoven." in text and "4 8 2 1" in text and "0800-0011" in text
    english = machine_text("en", "Missing child", None, "08000011")
    assert "Missing child" in english and "0800-0011" in english and "code" not in english
    assert machine_text("fr", "X", "1234", "08000011").startswith("Dit is Burgernet")
