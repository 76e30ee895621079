"""The ``freephone`` flow with an action code, over real FastAGI (Asterisk's side played by the
test bed's peer), the real database and Redis: what it asks Asterisk to do, command by command."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from burgernet import channel_vars as cv
from burgernet.actions import AreaSpec
from burgernet.db import session_scope
from burgernet.domain import AreaKind
from burgernet.models import Call, Participant
from composition.context import Context
from ivr.app import CataloguePrompts, build_services
from ivr.routes import build_routes
from ivr.server import FastAgiServer
from testbed.agi_peer import agi_call, agi_header
from testbed.telephony import channel_variables_set

UTRECHT = (5.1214, 52.0907)
AMSTERDAM = (4.8952, 52.3702)
CALLER = "0612340077"  # as the trunk shows it; +31612340077 registered in Amsterdam

Answers = Callable[[str], list[bytes]]


def keys(code: str | None, *, more: str = "") -> Answers:
    """Asterisk's answers: GET DATA of the welcome returns ``code`` (None: nothing keyed);
    WAIT FOR DIGIT returns the keys in ``more`` one by one, then a timeout."""
    pending = list(more)

    def answer(command: str) -> list[bytes]:
        if command.startswith("GET DATA") and "code-welcome" in command:
            return [b"200 result= (timeout)\n" if code is None else f"200 result={code}\n".encode()]
        if command.startswith("WAIT FOR DIGIT"):
            return [f"200 result={ord(pending.pop(0)) if pending else 0}\n".encode()]
        if command.startswith("STREAM FILE"):
            return [b"200 result=0 endpos=1000\n"]
        return [b"200 result=1\n"]

    return answer


@pytest.fixture
def world(bn_context: Context) -> tuple[int, str, int]:
    """An action in Utrecht (team c-mn-2) and one in Amsterdam, around the caller (team c-am-1).

    The caller is placed already (Amsterdam), who by default is put through without the welcome:
    these tests ask for the welcome for every caller (routing.action_code_welcome = "always")."""
    bn_context.settings.routing.action_code_welcome = "always"
    with session_scope(bn_context.sessions) as session:
        session.add(
            Participant(
                phone_e164="+31612340077",
                postcode="1012AB",
                lat=AMSTERDAM[1],
                lon=AMSTERDAM[0],
                created_at=datetime.now(UTC),
            )
        )

    def start(title: str, centre: tuple[float, float], team: list[str], region: str) -> int:
        view = bn_context.actions.create(
            action_type="missing_person",
            title=title,
            region_code=region,
            area=AreaSpec(AreaKind.CIRCLE, centre=centre, radius_m=2000),
            team=team,
            actor="test",
        )
        return bn_context.actions.start(view.id, actor="test", broadcast=False).id

    utrecht = start("Vermist in Utrecht", UTRECHT, ["c-mn-2"], "MN")
    amsterdam = start("Vermist in Amsterdam", AMSTERDAM, ["c-am-1"], "AM")
    code = bn_context.actions.get(utrecht).action_code
    assert code is not None
    return utrecht, code, amsterdam


async def _call(context: Context, answers: Answers, unique_id: str) -> list[str]:
    services = build_services(context, CataloguePrompts(context.settings))
    server = FastAgiServer(build_routes(services), host="127.0.0.1", port=0, failure_context=cv.CTX_FAILURE)
    await server.start()
    try:
        return await agi_call(
            server.bound_port, agi_header(cv.AGI_FREEPHONE, unique_id=unique_id, agi_callerid=CALLER), answers
        )
    finally:
        await server.close(grace=1)
        await services.drain()
        await services.live.close()


def _route_reason(context: Context, unique_id: str) -> tuple[int | None, str | None]:
    with session_scope(context.sessions) as session:
        call = session.query(Call).filter(Call.unique_id == unique_id).one()
        return call.action_id, call.route_reason


async def test_a_code_keyed_in_the_welcome_reaches_that_actions_team(
    bn_context: Context, world: tuple[int, str, int]
) -> None:
    utrecht, code, _ = world
    commands = await _call(bn_context, keys(code), "1800.1")
    welcome = next(c for c in commands if c.startswith("GET DATA"))
    # The welcome in the caller's language, its wait (routing.action_code_wait_ms), four keys.
    assert "/nl/burgernet/code-welcome" in welcome and welcome.endswith(" 1200 4")
    # The deadline was moved before the welcome (the prompt, the waits and the 4 s margin).
    assert commands[commands.index(welcome) - 1].startswith(f"SET VARIABLE {cv.AGI_DEADLINE_FUNCTION}")
    variables = channel_variables_set(commands)
    assert variables[cv.VAR_ACTION_ID] == str(utrecht)  # not the Amsterdam action around the caller
    assert variables[cv.target_var(1)] == "PJSIP/c-mn-2" and variables[cv.VAR_ROUTE] == cv.ROUTE_DIAL
    assert f'SET VARIABLE {cv.VAR_ACTION_CODE} "{code}"' in commands
    assert not any("code-unknown" in c for c in commands)
    action_id, reason = _route_reason(bn_context, "1800.1")
    assert action_id == utrecht and reason is not None and f"keyed action code {code}" in reason


async def test_a_code_keyed_slowly_still_counts(bn_context: Context, world: tuple[int, str, int]) -> None:
    utrecht, code, _ = world
    commands = await _call(bn_context, keys(code[:2], more=code[2:]), "1800.2")
    assert sum(c.startswith("WAIT FOR DIGIT 3000") for c in commands) == 2
    assert channel_variables_set(commands)[cv.VAR_ACTION_ID] == str(utrecht)


@pytest.mark.parametrize("keyed", ["wrong", "closed", "partial"])
async def test_a_wrong_or_closed_code_says_so_then_routes_as_usual(
    bn_context: Context, world: tuple[int, str, int], keyed: str
) -> None:
    utrecht, code, amsterdam = world
    if keyed == "closed":
        bn_context.actions.close(utrecht, outcome="klaar", result_message="", actor="test")
        answers = keys(code)
    elif keyed == "wrong":
        answers = keys("9999" if code != "9999" else "9998")
    else:
        answers = keys(code[:3])  # and then nothing
    commands = await _call(bn_context, answers, f"1800.3{keyed}")
    unknown = [c for c in commands if c.startswith("STREAM FILE") and "/nl/burgernet/code-unknown" in c]
    assert len(unknown) == 1
    variables = channel_variables_set(commands)
    # The usual route: the caller is inside the Amsterdam action's area.
    assert variables[cv.VAR_ACTION_ID] == str(amsterdam) and variables[cv.target_var(1)] == "PJSIP/c-am-1"
    assert commands.index(unknown[0]) < next(i for i, c in enumerate(commands) if c.startswith("EXEC MSet"))
    assert not any(c.startswith(f"SET VARIABLE {cv.VAR_ACTION_CODE}") for c in commands)


async def test_no_key_costs_only_the_welcome(bn_context: Context, world: tuple[int, str, int]) -> None:
    _, _, amsterdam = world
    commands = await _call(bn_context, keys(None), "1800.4")
    assert not any("WAIT FOR DIGIT" in c or "code-unknown" in c for c in commands)
    assert channel_variables_set(commands)[cv.VAR_ACTION_ID] == str(amsterdam)


async def test_codes_switched_off_play_no_welcome(bn_context: Context, world: tuple[int, str, int]) -> None:
    bn_context.settings.routing.action_codes = False
    commands = await _call(bn_context, keys("1234"), "1800.5")
    assert not any(c.startswith("GET DATA") for c in commands)
    assert channel_variables_set(commands)[cv.VAR_ACTION_ID] == str(world[2])


async def test_a_caller_already_placed_is_put_through_without_the_welcome(
    bn_context: Context, world: tuple[int, str, int]
) -> None:
    """The default (when_needed): the known caller inside Amsterdam's area loses no time."""
    bn_context.settings.routing.action_code_welcome = "when_needed"
    commands = await _call(bn_context, keys("1234"), "1800.6")
    assert not any(c.startswith("GET DATA") for c in commands)
    assert channel_variables_set(commands)[cv.VAR_ACTION_ID] == str(world[2])


async def test_an_unknown_caller_hears_the_welcome_and_the_code_routes_them(
    bn_context: Context, world: tuple[int, str, int]
) -> None:
    """The default (when_needed): a number nobody registered (the app's participants) may key a code."""
    bn_context.settings.routing.action_code_welcome = "when_needed"
    utrecht, code, _ = world
    services = build_services(bn_context, CataloguePrompts(bn_context.settings))
    server = FastAgiServer(build_routes(services), host="127.0.0.1", port=0, failure_context=cv.CTX_FAILURE)
    await server.start()
    try:
        header = agi_header(cv.AGI_FREEPHONE, unique_id="1800.7", agi_callerid="0687654321")
        commands = await agi_call(server.bound_port, header, keys(code))
    finally:
        await server.close(grace=1)
        await services.drain()
        await services.live.close()
    assert any(c.startswith("GET DATA") and "code-welcome" in c for c in commands)
    assert channel_variables_set(commands)[cv.VAR_ACTION_ID] == str(utrecht)


def test_the_code_variable_and_prompts_are_in_the_contract_both_ways() -> None:
    from asterisk_conf.render import dialplan_files
    from recordings.catalogue import prompt_names, prompt_text

    freephone = next(path for path in dialplan_files() if path.name == "freephone.conf").read_text()
    code_lines = [line.split(";", 1)[0] for line in freephone.splitlines()]
    assert any("${" + cv.VAR_ACTION_CODE + "}" in line for line in code_lines)  # read by [burgernet-route]
    for name in ("code-welcome", "code-unknown"):
        assert name in prompt_names() and prompt_text("nl", name) and prompt_text("en", name)
    assert "actiecode" in prompt_text("nl", "code-welcome") and "code" in prompt_text("en", "code-welcome")
