"""The dialplans and burgernet/channel_vars.py name the same things, letter for letter.

A typo in a variable, context, AGI script, route value or prompt name would not stop
Asterisk from loading the dialplan: the call would silently take a wrong turn. These tests
read dialplans/*.conf the way a reviewer would and compare with the Python contract.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from asterisk_conf.render import MODULES, dialplan_files
from burgernet import channel_vars as cv
from recordings.catalogue import prompt_names

DIALPLAN_TEXT = {path.name: path.read_text() for path in dialplan_files()}


def _code(text: str) -> str:
    """The dialplan without comments (a ';' outside of an expression starts one)."""
    return "\n".join(line.split(";", 1)[0] for line in text.splitlines())


CODE = "\n".join(_code(text) for text in DIALPLAN_TEXT.values())

PYTHON_VARIABLES = {
    value
    for name, value in vars(cv).items()
    if name.startswith(("VAR_", "GLOBAL_")) and isinstance(value, str) and not name.endswith("_PREFIX")
}
PREFIXES = (cv.VAR_TARGET_PREFIX, cv.VAR_TIMEOUT_PREFIX)


def test_there_are_dialplans_to_check() -> None:
    assert {"freephone.conf", "failure.conf", "tip.conf", "alert.conf"} <= set(DIALPLAN_TEXT)


def test_every_bn_variable_in_the_dialplans_is_named_in_channel_vars() -> None:
    used = set(re.findall(r"\bBN_[A-Z_]*[A-Z]", CODE))
    unknown = {name for name in used - PYTHON_VARIABLES if f"{name}_" not in PREFIXES}
    assert not unknown, f"dialplans use BN_ names that channel_vars.py does not define: {sorted(unknown)}"
    # The numbered ring steps are built from the prefixes: BN_TARGET_${STEP}.
    assert "${BN_TARGET_${STEP}}" in CODE and "${BN_TIMEOUT_${STEP}}" in CODE


def test_contexts_match_both_ways() -> None:
    defined = re.findall(r"^\[([a-z0-9-]+)\]", CODE, flags=re.MULTILINE)
    assert len(defined) == len(set(defined)), f"a context is defined twice: {defined}"
    assert set(defined) == set(cv.CONTEXTS)


def test_every_jump_lands_in_a_known_context() -> None:
    targets = set(re.findall(r"\b(burgernet-[a-z-]+),[a-z0-9_${}()]+,", CODE))
    assert targets, "no Goto/GotoIf into a burgernet context found"
    assert targets <= set(cv.CONTEXTS), sorted(targets - set(cv.CONTEXTS))


def test_agi_scripts_match_both_ways() -> None:
    servers = "|".join((cv.GLOBAL_AGI_URL, cv.GLOBAL_AGI_URL_BACKUP, cv.VAR_AGI_NOW))
    called = set(re.findall(r"AGI\(\$\{(?:" + servers + r")\}/([a-z_]+)", CODE))
    assert called == set(cv.AGI_SCRIPTS)


def test_every_agi_has_the_second_server_to_fall_back_on() -> None:
    """Each script a live caller waits for (the free number, an alert call's transfer) and the
    tip's filing is tried on the backup server too, so a dead FastAGI on one node is no reason
    for the failure path while another node's is up."""
    on_backup = set(re.findall(r"AGI\(\$\{" + cv.GLOBAL_AGI_URL_BACKUP + r"\}/([a-z_]+)", CODE))
    assert {cv.AGI_TIP, cv.AGI_ALERT} <= on_backup
    assert f"Set({cv.VAR_AGI_NOW}=${{{cv.GLOBAL_AGI_URL_BACKUP}}})" in CODE  # the free number's retry
    assert f"AGI(${{{cv.VAR_AGI_NOW}}}/{cv.AGI_FREEPHONE})" in CODE


@pytest.mark.parametrize(
    ("variable", "allowed"),
    [
        (cv.VAR_ROUTE, set(cv.ROUTES)),
        (cv.VAR_OUTCOME, set(cv.OUTCOMES)),
        (cv.VAR_CALL_KIND, {cv.CALL_KIND_INBOUND, cv.CALL_KIND_TRANSFER, cv.CALL_KIND_ALERT}),
    ],
)
def test_values_compared_or_set_are_the_contracts_values(variable: str, allowed: set[str]) -> None:
    compared = set(re.findall(r'"\$\{' + variable + r'\}" !?= "([^"]*)"', CODE))
    assigned = set(re.findall(r"Set\(" + variable + r"=([^)]*)\)", CODE))
    values = (compared | assigned) - {""}
    assert values, f"{variable} is never compared or set in the dialplans"
    assert values <= allowed, sorted(values - allowed)


def test_dialplan_routes_cover_every_decision_the_ivr_makes() -> None:
    # An unhandled BN_ROUTE would fall through to the failure path: that must be deliberate.
    compared = set(re.findall(r'"\$\{BN_ROUTE\}" = "([^"]*)"', CODE))
    assert {cv.ROUTE_DIAL, cv.ROUTE_TIP, cv.ROUTE_NO_ACTION, cv.ROUTE_REPEAT, cv.ROUTE_OPTED_OUT} <= compared


def test_every_prompt_the_dialplans_play_is_in_the_catalogue() -> None:
    played = set(re.findall(r"/burgernet/([a-z0-9-]+)\b(?!/)", CODE))
    assert played, "the dialplans play no burgernet prompts"
    assert played <= set(prompt_names()), sorted(played - set(prompt_names()))
    # Numbers said digit by digit (the desk's whisper): every digits/<n> is in the catalogue.
    if "/burgernet/digits/${" in CODE:
        assert {f"digits/{digit}" for digit in range(10)} <= set(prompt_names())


def test_caller_supplied_values_are_filtered() -> None:
    # PRODUCT.md: wrap CALLERID(num) and EXTEN in FILTER() before using them.
    for raw in re.finditer(r"\$\{(CALLERID\(num\)|EXTEN)\}", CODE):
        before = CODE[: raw.start()]
        enclosing = before[before.rfind("${") :]  # the expression this value sits in
        assert enclosing.startswith("${FILTER("), (
            f"unfiltered {raw.group(0)} near: {CODE[raw.start() - 60 : raw.end()]}"
        )


def test_every_context_that_takes_calls_records_a_hang_up() -> None:
    for context in (cv.CTX_FREEPHONE, cv.CTX_ROUTE, cv.CTX_FAILURE, cv.CTX_TIP):
        body = CODE.split(f"[{context}]", 1)[1].split("\n[", 1)[0]
        assert re.search(r"^exten => h,1,", body, flags=re.MULTILINE), f"[{context}] has no h extension"


def test_dialplans_are_commented_for_admins() -> None:
    for name, text in DIALPLAN_TEXT.items():
        comments = [line for line in text.splitlines() if line.lstrip().startswith(";")]
        assert len(comments) >= 3, f"{name} explains too little"


def test_dialplans_dir_is_the_one_rendered() -> None:
    assert all(
        path.parent.name == "dialplans" and path.parent.parent == Path(__file__).resolve().parents[2]
        for path in dialplan_files()
    )


def _context_body(context: str) -> str:
    return CODE.split(f"[{context}]", 1)[1].split("\n[", 1)[0]


def _lines(body: str) -> list[str]:
    return [line.strip() for line in body.splitlines() if line.strip()]


@pytest.mark.parametrize("context", [cv.CTX_FREEPHONE, cv.CTX_ALERT])
def test_every_agi_a_caller_waits_for_runs_under_the_deadline(context: str) -> None:
    """TIMEOUT(absolute) armed right before AGI(), disarmed right after, AGI() returns when it fires.
    A try on the backup server right after the first AGI() runs under the same deadline."""
    lines = _lines(_context_body(context))
    agi_lines = [number for number, line in enumerate(lines) if "AGI(${" in line]
    assert agi_lines, f"[{context}] runs no AGI"
    exit_on_hangup = f"Set({cv.AGI_EXIT_ON_HANGUP}=yes)"
    first_exit = next(n for n, line in enumerate(lines) if exit_on_hangup in line)
    for number in agi_lines:
        assert first_exit < number, f"[{context}]: {exit_on_hangup} must come before {lines[number]}"
        before, after = number - 1, number + 1
        while before in agi_lines:
            before -= 1
        while after in agi_lines:
            after += 1
        assert lines[before].endswith(f"Set({cv.AGI_DEADLINE_FUNCTION}=${{{cv.GLOBAL_AGI_DEADLINE}}})"), (
            lines[before]
        )
        assert lines[after].endswith(f"Set({cv.AGI_DEADLINE_FUNCTION}=0)"), lines[after]


@pytest.mark.parametrize("context", [cv.CTX_FREEPHONE, cv.CTX_ALERT])
def test_a_fired_deadline_goes_to_the_failure_path_with_its_reason(context: str) -> None:
    body = _context_body(context)
    timeout_extension = body.split("exten => T,1,", 1)
    assert len(timeout_extension) == 2, f"[{context}] has no T extension: a fired deadline would hang up"
    steps = _lines(timeout_extension[1].split("\nexten =>", 1)[0])
    assert steps[0] == f"Set({cv.AGI_DEADLINE_FUNCTION}=0)"  # else Asterisk fires it again at once
    assert any(step.endswith(f",Set({cv.VAR_REASON}={cv.REASON_AGI_TIMEOUT})") for step in steps), steps
    assert steps[-1] == f"same => n,Goto({cv.CTX_FAILURE},s,1)"


def test_the_only_agi_outside_the_deadline_runs_after_the_hang_up() -> None:
    # On a hung-up channel Asterisk fires no TIMEOUT(absolute): tip.conf runs its AGI in h,
    # where nobody is waiting; every other AGI is covered by the tests above.
    for context in set(cv.CONTEXTS) - {cv.CTX_FREEPHONE, cv.CTX_ALERT}:
        body = _context_body(context)
        for line in _lines(body):
            if "AGI(" in line:
                # The report, and its second try on the backup server when the first failed.
                assert context == cv.CTX_TIP and (
                    line.startswith("same => n(report),AGI(")
                    or line.startswith('same => n,ExecIf($["${AGISTATUS}" = "FAILURE"')
                ), line
                assert body.index("exten => h,1,") < body.index(line)


def test_the_deadline_function_is_loaded() -> None:
    # modules.conf has autoload = no: without func_timeout, Set(TIMEOUT(absolute)=...) only logs
    # "Function TIMEOUT not registered" and a frozen FastAGI keeps the caller in silence.
    assert cv.AGI_DEADLINE_FUNCTION.startswith("TIMEOUT(") and "func_timeout" in MODULES
