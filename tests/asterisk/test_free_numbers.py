"""The free number in every form carriers deliver it, and extra DIDs, reach the same flow.

Unit tests of the derivation and validation, then real SIP calls through the sandbox: SIPp
plays the trunk and dials each form; FastAGI is down and nobody is on duty, so a call that
reached the free-number flow ends in the failure path's tip recording, where a number that
is none of ours is refused before it is answered.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from asterisk_conf.numbers import LIST_SEPARATOR, NumberError, check_number, free_numbers, number_forms
from asterisk_conf.render import AsteriskPlan, RenderError, check_values, render
from asterisk_conf.sandbox import AsteriskInstall
from asterisk_conf.sipp import caller_scenario
from burgernet import channel_vars as cv
from burgernet.settings import AsteriskSettings, load_settings
from testbed.ports import free_port
from testbed.sipp import Sipp
from tests.asterisk.conftest import StartAsterisk, asterisk_settings
from tests.asterisk.test_no_dead_end import console_once
from tests.asterisk.test_render import PATHS

CALLER = "0612345678"
REGIONAL_LINE = "0201234567"
NOT_OURS = "0207654321"


# --- Derivation and validation --------------------------------------------------------------


def test_the_free_number_is_reached_in_its_national_e164_and_international_forms() -> None:
    assert number_forms("08000011") == ("08000011", "+318000011", "318000011", "00318000011")


def test_extra_numbers_join_with_their_own_forms_the_canonical_number_first() -> None:
    numbers = free_numbers(AsteriskSettings(extra_numbers=[REGIONAL_LINE, "+31881234567"]))
    assert numbers[0] == "08000011"
    assert numbers == (
        *("08000011", "+318000011", "318000011", "00318000011"),
        *(REGIONAL_LINE, "+31201234567", "31201234567", "0031201234567"),
        *("+31881234567", "31881234567", "0031881234567"),
    )
    # Listed twice (or as another form of the free number): once in the list.
    assert free_numbers(AsteriskSettings(extra_numbers=["+318000011", "08000011"])) == numbers[:4]


@pytest.mark.parametrize(
    "bad", ["0800 0011", "0800-0011", "0800\n0011", "0800;x", "++318000011", "31+8000011", "12", "", "abc"]
)
def test_only_digits_with_an_optional_leading_plus_are_numbers(bad: str) -> None:
    with pytest.raises(NumberError):
        check_number("asterisk.extra_numbers", bad)
    with pytest.raises(NumberError):
        free_numbers(AsteriskSettings(extra_numbers=[bad]))


def test_the_renderer_refuses_a_bad_extra_number_and_writes_nothing(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, asterisk={"extra_numbers": ["0201234567\n[trunk]"]})
    with pytest.raises(RenderError, match="extra_numbers"):
        render(tmp_path / "etc", settings, AsteriskPlan((), "MN"), PATHS)
    assert not (tmp_path / "etc" / "extensions.conf").exists()


def test_the_renderer_writes_the_list_and_the_called_number_source(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path, asterisk={"extra_numbers": [REGIONAL_LINE], "called_number_from": "to"}
    )
    check_values(settings.asterisk, ())
    render(tmp_path / "etc", settings, AsteriskPlan((), "MN"), PATHS)
    text = (tmp_path / "etc" / "extensions.conf").read_text()
    globals_ = dict(re.findall(r"^(BN_[A-Z_]+) = (.*)$", text, flags=re.MULTILINE))
    assert globals_[cv.GLOBAL_FREE_NUMBER] == "08000011"
    assert globals_[cv.GLOBAL_FREE_NUMBERS].split(LIST_SEPARATOR) == list(free_numbers(settings.asterisk))
    assert globals_[cv.GLOBAL_CALLED_NUMBER_FROM] == cv.CALLED_NUMBER_FROM_TO


def test_called_number_from_takes_only_the_two_sources(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="called_number_from"):
        load_settings(data_dir=tmp_path, asterisk={"called_number_from": "from"})


# --- Real calls through the sandbox ---------------------------------------------------------


@pytest.fixture
def sipp(tmp_path: Path) -> Iterator[Sipp]:
    runner = Sipp(asterisk_port=0, workdir=tmp_path / "sipp")
    runner.workdir.mkdir()
    yield runner
    runner.cleanup()


def _reached_the_free_number_flow(console: str, delivered_as: str) -> bool:
    return f"free number 08000011, delivered as {delivered_as}" in console


@pytest.mark.asterisk
def test_every_form_and_the_extra_did_reach_the_free_number_flow(
    tmp_path: Path, asterisk_install: AsteriskInstall, start_asterisk: StartAsterisk, sipp: Sipp
) -> None:
    settings = asterisk_settings(tmp_path / "data", asterisk_install, extra_numbers=[REGIONAL_LINE])
    asterisk = start_asterisk(AsteriskPlan((), "MN"), settings=settings)
    sipp.asterisk_port = settings.asterisk.sip_port

    for number in ("08000011", "+318000011", "00318000011", REGIONAL_LINE):
        call = sipp.call(CALLER, number, local_port=free_port(), media_port=free_port(), hold_ms=1500)
        assert (call.successful, call.failed) == (1, 0), (number, call.output)  # answered
        console = console_once(asterisk, f"delivered as {number}")
        assert _reached_the_free_number_flow(console, number), number

    console = console_once(asterisk, "BN_OUTCOME=")
    # FastAGI ran for each (and failed: nobody listens), then the failure path carried them.
    assert console.count("failure path, AGISTATUS=FAILURE") == 4
    tips = list((settings.data_dir.resolve() / "recordings" / "tips" / "unassigned").glob("*.wav"))
    assert len(tips) == 4, tips

    # A number that is none of ours is still refused, unanswered, as before.
    refused = sipp.call(CALLER, NOT_OURS, local_port=free_port(), media_port=free_port(), hold_ms=1500)
    assert refused.successful == 0, refused.output
    assert f"{NOT_OURS} is not one of our numbers" in console_once(asterisk, "is not one of our numbers")


def _request_uri_to(user: str) -> object:
    """caller_scenario, but the INVITE's Request-URI carries ``user`` (the To header keeps the number)."""

    def scenario(
        number: str, caller: str, digits: Sequence[tuple[int, str]], hold_ms: int, speak_at_ms: int | None
    ) -> str:
        text = caller_scenario(number, caller, digits, hold_ms, speak_at_ms)
        invite = f"INVITE sip:{number}@"
        assert invite in text
        return text.replace(invite, f"INVITE sip:{user}@", 1)

    return scenario


@pytest.mark.asterisk
@pytest.mark.parametrize(
    ("called_number_from", "reached"), [("to", True), ("request_uri", False)], ids=["to", "request_uri"]
)
def test_the_called_number_is_read_from_the_to_header_when_the_trunk_says_so(
    tmp_path: Path,
    asterisk_install: AsteriskInstall,
    start_asterisk: StartAsterisk,
    sipp: Sipp,
    monkeypatch: pytest.MonkeyPatch,
    called_number_from: str,
    reached: bool,
) -> None:
    settings = asterisk_settings(tmp_path / "data", asterisk_install, called_number_from=called_number_from)
    asterisk = start_asterisk(AsteriskPlan((), "MN"), settings=settings)
    sipp.asterisk_port = settings.asterisk.sip_port
    monkeypatch.setattr("testbed.sipp.caller_scenario", _request_uri_to(NOT_OURS))

    call = sipp.call(CALLER, "+318000011", local_port=free_port(), media_port=free_port(), hold_ms=1500)

    if reached:
        assert (call.successful, call.failed) == (1, 0), call.output
        console = console_once(asterisk, "failure path")
        assert _reached_the_free_number_flow(console, "+318000011")
        assert "failure path, AGISTATUS=FAILURE" in console
    else:  # the Request-URI decides: the number in it is none of ours
        assert call.successful == 0, call.output
        assert f"{NOT_OURS} is not one of our numbers" in console_once(asterisk, "is not one of our numbers")


def test_the_dialplan_compares_the_called_number_source_with_the_contracts_values() -> None:
    code = (Path(__file__).resolve().parents[2] / "dialplans" / "freephone.conf").read_text()
    compared = set(re.findall(r'"\$\{' + cv.GLOBAL_CALLED_NUMBER_FROM + r'\}" !?= "([^"]*)"', code))
    assert compared == {cv.CALLED_NUMBER_FROM_TO}
    # The list is split on the separator it is rendered with.
    assert f"FIELDNUM({cv.GLOBAL_FREE_NUMBERS},{LIST_SEPARATOR}," in code
