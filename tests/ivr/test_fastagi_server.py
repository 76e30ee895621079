"""The FastAGI server against a TCP peer that speaks AGI the way Asterisk's res_agi does.

Normal calls, every AGI command the flows use, the one error path to the failure context,
hang-ups, and malformed or hostile peers: the server never crashes and keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import wave
from pathlib import Path
from typing import Any

import pytest

from burgernet import channel_vars as cv
from ivr.agi import (
    UNMEASURED_SOUND_SECONDS,
    AgiCommandError,
    AgiProtocolError,
    AgiSession,
    ChannelHungUp,
    quote,
    sound_seconds,
)
from ivr.server import FastAgiServer, ServerCounters
from testbed.agi_peer import AgiPeer, agi_call, agi_header
from tests.ivr.conftest import FAILOVER, StartServer


async def set_route(session: AgiSession) -> None:
    await session.set_variable(cv.VAR_ROUTE, cv.ROUTE_DIAL)


NORMAL = [f'SET VARIABLE {cv.VAR_ROUTE} "{cv.ROUTE_DIAL}"']


@pytest.fixture
def start_fastagi(start_fastagi: StartServer) -> StartServer:
    """The conftest's server, without the AGI deadline unless a test asks for it.

    Most tests here count protocol commands; the deadline commands have tests of their own
    (``agi_deadline=...`` below).
    """

    async def start(routes: dict[str, Any], **options: Any) -> FastAgiServer:
        options.setdefault("agi_deadline", None)
        return await start_fastagi(routes, **options)

    return start


def errors_in(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.ERROR]


# -- a normal call -----------------------------------------------------------------------------------


async def test_a_call_gets_its_environment_and_every_command_its_answer(start_fastagi: StartServer) -> None:
    seen: dict[str, Any] = {}

    async def flow(session: AgiSession) -> None:
        seen["env"] = session.env
        await session.answer()
        seen["action"] = await session.get_variable(cv.VAR_ACTION_ID)
        seen["unset"] = await session.get_variable("BN_NOT_SET")
        await session.set_variable(cv.VAR_REASON, 'says "hi" \\ bye')
        seen["pressed"] = await session.stream_file("burgernet/welcome", "19")
        seen["played"] = await session.stream_file("burgernet/welcome")
        seen["postcode"] = await session.get_data("burgernet/enter-postcode", 8000, 4)
        seen["nothing"] = await session.get_data("burgernet/enter-postcode", 8000, 4)
        seen["said"] = await session.say_digits("3511")
        await session.verbose("routing call", 3)
        await session.goto(cv.CTX_ROUTE, "s", 1)
        await session.hangup()

    answers = {
        "ANSWER": b"200 result=0\n",
        f"GET VARIABLE {cv.VAR_ACTION_ID}": b"200 result=1 (42)\n",
        "GET VARIABLE BN_NOT_SET": b"200 result=0\n",
        'STREAM FILE "burgernet/welcome" "19"': b"200 result=49 endpos=8000\n",  # "1" pressed
        'STREAM FILE "burgernet/welcome" ""': b"200 result=0 endpos=16000\n",
        'SAY DIGITS 3511 ""': b"200 result=0\n",
    }
    get_data = iter([b"200 result=3511\n", b"200 result= (timeout)\n"])

    def asterisk(command: str) -> list[bytes]:
        if command.startswith("GET DATA"):
            return [next(get_data)]
        return [answers.get(command, b"200 result=1\n")]

    server = await start_fastagi({cv.AGI_FREEPHONE: flow})
    header = agi_header(
        unique_id="1700000000.42", agi_arg_1="9", agi_arg_2="x y", agi_calleridname="Jan de Vries"
    )
    commands = await agi_call(server.bound_port, header, asterisk)

    assert commands == [
        "ANSWER",
        f"GET VARIABLE {cv.VAR_ACTION_ID}",
        "GET VARIABLE BN_NOT_SET",
        f'SET VARIABLE {cv.VAR_REASON} "says \\"hi\\" \\\\ bye"',
        'STREAM FILE "burgernet/welcome" "19"',
        'STREAM FILE "burgernet/welcome" ""',
        'GET DATA "burgernet/enter-postcode" 8000 4',
        'GET DATA "burgernet/enter-postcode" 8000 4',
        'SAY DIGITS 3511 ""',
        'VERBOSE "routing call" 3',
        f"SET CONTEXT {cv.CTX_ROUTE}",
        "SET EXTENSION s",
        "SET PRIORITY 1",
        "HANGUP",
    ]
    env = seen["env"]
    assert (env.script, env.unique_id, env.linked_id, env.channel, env.language) == (
        cv.AGI_FREEPHONE,
        "1700000000.42",
        "1700000000.42",
        "PJSIP/trunk-00000001",
        "nl",
    )
    assert (env.caller_id, env.caller_id_name, env.arguments) == ("0612345678", "Jan de Vries", ("9", "x y"))
    assert env.raw["agi_version"] == "22.0.0"
    assert (seen["action"], seen["unset"]) == ("42", None)
    assert (seen["pressed"], seen["played"]) == ("1", None)
    assert (seen["postcode"], seen["nothing"], seen["said"]) == ("3511", None, None)
    assert (server.counters.sessions, server.counters.completed, server.counters.failed) == (1, 1, 0)


async def test_anonymous_caller_and_progress_lines(start_fastagi: StartServer) -> None:
    seen: dict[str, Any] = {}

    async def flow(session: AgiSession) -> None:
        seen["caller"] = session.env.caller_id
        seen["digit"] = await session.wait_for_digit(5000)

    server = await start_fastagi({cv.AGI_ALERT: flow})
    # "100 result=0 Trying..." comes before the real answer of some commands.
    commands = await agi_call(
        server.bound_port,
        agi_header(cv.AGI_ALERT, agi_callerid="unknown"),
        lambda _c: [b"100 result=0 Trying...\n", b"200 result=57\n"],
    )
    assert commands == ["WAIT FOR DIGIT 5000"]
    assert seen == {"caller": None, "digit": "9"}


def test_values_are_quoted_and_line_breaks_refused() -> None:
    assert quote('a "b" \\c') == '"a \\"b\\" \\\\c"'
    for bad in ("two\nlines", "carriage\rreturn"):
        with pytest.raises(ValueError, match="line breaks"):
            quote(bad)


async def test_non_utf8_header_values_are_read_not_fatal(start_fastagi: StartServer) -> None:
    names: list[str | None] = []

    async def flow(session: AgiSession) -> None:
        names.append(session.env.caller_id_name)
        await set_route(session)

    server = await start_fastagi({cv.AGI_FREEPHONE: flow})
    header = agi_header().replace(b"agi_calleridname: unknown", b"agi_calleridname: Jos\xe9 \xff")
    assert await agi_call(server.bound_port, header) == NORMAL
    assert names == ["Jos\ufffd \ufffd"]


# -- the one error path ------------------------------------------------------------------------------


async def test_a_failing_flow_goes_to_the_failure_context_and_logs_the_call_id(
    start_fastagi: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(session: AgiSession) -> None:
        await session.answer()
        raise RuntimeError("database on fire")

    server = await start_fastagi({cv.AGI_FREEPHONE: broken})
    with caplog.at_level(logging.ERROR, logger="ivr.server"):
        commands = await agi_call(server.bound_port, agi_header(unique_id="1700000000.99"))
    assert commands[0] == "ANSWER"
    assert commands[1] == f'SET VARIABLE {cv.VAR_REASON} "fastagi: RuntimeError"'
    assert commands[-4:] == FAILOVER and len(commands) == 6
    [record] = errors_in(caplog)
    assert "1700000000.99" in record.getMessage() and "database on fire" in record.getMessage()
    assert record.exc_info is not None
    assert (server.counters.failed, server.counters.completed) == (1, 0)


async def test_a_line_break_in_a_value_fails_over_instead_of_injecting_a_command(
    start_fastagi: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    async def flow(session: AgiSession) -> None:
        await session.set_variable(cv.VAR_REASON, "x\nEXEC Dial PJSIP/evil")

    server = await start_fastagi({cv.AGI_FREEPHONE: flow})
    with caplog.at_level(logging.ERROR):
        commands = await agi_call(server.bound_port, agi_header(unique_id="1700.1"))
    assert not any("evil" in command for command in commands)
    assert commands[-4:] == FAILOVER
    assert any("1700.1" in record.getMessage() for record in errors_in(caplog))


async def test_unknown_script_goes_to_the_failure_context(
    start_fastagi: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = await start_fastagi({cv.AGI_FREEPHONE: set_route})
    with caplog.at_level(logging.ERROR):
        commands = await agi_call(server.bound_port, agi_header("no-such-script", unique_id="1700.2"))
    assert commands == [f'SET VARIABLE {cv.VAR_REASON} "fastagi: unknown script"', *FAILOVER]
    assert any("1700.2" in r.getMessage() and "no-such-script" in r.getMessage() for r in errors_in(caplog))
    assert server.counters.rejected == 1


async def test_a_flow_over_its_time_limit_fails_over(start_fastagi: StartServer) -> None:
    async def slow(session: AgiSession) -> None:
        await asyncio.sleep(60)

    server = await start_fastagi({cv.AGI_FREEPHONE: slow}, flow_timeout=0.2)
    commands = await agi_call(server.bound_port)
    assert commands == [f'SET VARIABLE {cv.VAR_REASON} "fastagi: timed out"', *FAILOVER]
    assert server.counters.failed == 1


async def test_an_answer_that_comes_too_late_is_not_taken_for_the_next_one(
    start_fastagi: StartServer,
) -> None:
    """A command timed out; its late answer must not become the answer to the next command."""
    seen: dict[str, Any] = {}

    async def flow(session: AgiSession) -> None:
        with pytest.raises(AgiProtocolError, match="no answer to STREAM"):
            await session.command('STREAM FILE "burgernet/welcome" ""', timeout=0.2)
        seen["action"] = await session.get_variable(cv.VAR_ACTION_ID)

    server = await start_fastagi({cv.AGI_FREEPHONE: flow})
    peer = await AgiPeer.connect(server.bound_port)
    await peer.send(agi_header())
    assert await peer.next_command() == 'STREAM FILE "burgernet/welcome" ""'
    await asyncio.sleep(0.4)  # past the command's deadline, then the late answer
    await peer.send(b"200 result=0 endpos=100\n")
    assert await peer.next_command() == f"GET VARIABLE {cv.VAR_ACTION_ID}"
    await peer.send(b"200 result=1 (17)\n")
    assert await peer.answer_all() == peer.commands
    assert seen == {"action": "17"} and server.counters.completed == 1


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ([b"this is not AGI\n"], "AgiProtocolError"),
        ([b"200 no result here\n"], "AgiProtocolError"),
        ([b"510 Invalid or unknown command\n"], "AgiCommandError"),
        (
            [
                b"520-Invalid command syntax.  Proper usage follows:\n",
                b"Usage: GET VARIABLE <variablename>\n",
                b"520 End of proper usage.\n",
            ],
            "AgiCommandError",
        ),
    ],
)
async def test_bad_answers_from_asterisk_fail_over(
    start_fastagi: StartServer, answer: list[bytes], error: str
) -> None:
    raised: list[str] = []

    async def flow(session: AgiSession) -> None:
        try:
            await session.get_variable(cv.VAR_ACTION_ID)
        except (AgiProtocolError, AgiCommandError) as exc:
            raised.append(type(exc).__name__)
            raise

    server = await start_fastagi({cv.AGI_FREEPHONE: flow})
    first = True

    def asterisk(command: str) -> list[bytes]:
        nonlocal first
        reply, first = (answer if first else [b"200 result=1\n"]), False
        return reply

    commands = await agi_call(server.bound_port, agi_header(), asterisk)
    assert raised == [error]
    # Every failover command got its own answer: the usage text was read to its end.
    assert commands == [
        f"GET VARIABLE {cv.VAR_ACTION_ID}",
        f'SET VARIABLE {cv.VAR_REASON} "fastagi: {error}"',
        *FAILOVER,
    ]


async def test_shutdown_lets_short_calls_finish_and_fails_over_the_rest(start_fastagi: StartServer) -> None:
    started = asyncio.Event()

    async def quick(session: AgiSession) -> None:
        started.set()
        await asyncio.sleep(0.1)
        await set_route(session)

    async def stuck(session: AgiSession) -> None:
        await asyncio.sleep(60)

    server = await start_fastagi({cv.AGI_FREEPHONE: quick, cv.AGI_TIP: stuck})
    finishing = asyncio.create_task(agi_call(server.bound_port))
    stuck_call = asyncio.create_task(agi_call(server.bound_port, agi_header(cv.AGI_TIP)))
    await started.wait()
    await asyncio.wait_for(server.close(grace=0.5), 10)
    assert await finishing == NORMAL
    assert await stuck_call == [f'SET VARIABLE {cv.VAR_REASON} "fastagi: shutting down"', *FAILOVER]
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", server.bound_port)


# -- hang-ups are not errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        [b"HANGUP\n", b"200 result=-1 endpos=0\n"],  # res_agi with AGISIGHUP on (the default)
        [b"200 result=-1 endpos=0\n"],  # AGISIGHUP=no: only the -1
        [b"511 Command Not Permitted on a dead channel or intercepted\n"],
        [b"200 res"],  # then EOF in the middle of the answer
    ],
)
async def test_a_hang_up_mid_flow_ends_the_session_quietly(
    start_fastagi: StartServer, caplog: pytest.LogCaptureFixture, reply: list[bytes]
) -> None:
    after: list[str] = []

    async def flow(session: AgiSession) -> None:
        await session.stream_file("burgernet/welcome")
        after.append("went on")
        await set_route(session)

    server = await start_fastagi({cv.AGI_FREEPHONE: flow})
    peer = await AgiPeer.connect(server.bound_port)
    await peer.send(agi_header())
    with caplog.at_level(logging.INFO):
        assert await peer.next_command() == 'STREAM FILE "burgernet/welcome" ""'
        await peer.send(b"".join(reply))
        if reply == [b"200 res"]:
            peer.writer.write_eof()
        assert await peer.answer_all() == ['STREAM FILE "burgernet/welcome" ""']
        await asyncio.wait_for(_until(lambda: server.counters.hung_up == 1), 5)
    assert after == [] and not errors_in(caplog)
    assert (server.counters.failed, server.counters.rejected) == (0, 0)


async def test_early_eof_mid_command_is_a_hang_up(
    start_fastagi: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    async def flow(session: AgiSession) -> None:
        await session.get_data("burgernet/enter-postcode", 8000, 4)

    server = await start_fastagi({cv.AGI_FREEPHONE: flow})
    peer = await AgiPeer.connect(server.bound_port)
    await peer.send(agi_header())
    with caplog.at_level(logging.WARNING):
        assert (await peer.next_command() or "").startswith("GET DATA")
        peer.close()  # Asterisk went away with the command unanswered
        await asyncio.wait_for(_until(lambda: server.counters.hung_up == 1), 5)
    assert not errors_in(caplog)
    # ... and the next call is served as usual.
    assert await agi_call(server.bound_port) == ['GET DATA "burgernet/enter-postcode" 8000 4']
    assert server.counters.completed == 1


async def test_after_a_hangup_line_dead_channel_commands_still_get_their_own_answers(
    start_fastagi: StartServer,
) -> None:
    """The ``h`` extension style: the flow notes the hang-up, then still reads a variable."""
    seen: dict[str, Any] = {}

    async def flow(session: AgiSession) -> None:
        try:
            await session.stream_file("burgernet/welcome")
        except ChannelHungUp:
            seen["hung_up"] = session.hung_up
        seen["tip"] = await session.get_variable(cv.VAR_TIP_FILE)

    server = await start_fastagi({cv.AGI_FREEPHONE: flow})
    replies = iter([[b"HANGUP\n", b"200 result=-1 endpos=0\n"], [b"200 result=1 (/tips/1/x)\n"]])
    commands = await agi_call(server.bound_port, agi_header(), lambda _c: next(replies))
    assert commands == ['STREAM FILE "burgernet/welcome" ""', f"GET VARIABLE {cv.VAR_TIP_FILE}"]
    assert seen == {"hung_up": True, "tip": "/tips/1/x"}
    assert server.counters.completed == 1


async def test_hang_ups_from_a_task_group_are_still_hang_ups(
    start_fastagi: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    async def flow(session: AgiSession) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(session.answer())

    server = await start_fastagi({cv.AGI_FREEPHONE: flow})
    with caplog.at_level(logging.ERROR):
        assert await agi_call(server.bound_port, agi_header(), lambda _c: [b"HANGUP\n"]) == ["ANSWER"]
        await asyncio.wait_for(_until(lambda: server.counters.hung_up == 1), 5)
    assert not errors_in(caplog)


# -- malformed and hostile peers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"", id="connect-and-close"),
        pytest.param(b"agi_network: yes\nagi_uniqueid: 1", id="eof-before-blank-line"),
        pytest.param(b"agi_network: yes\nagi_uniqueid: 1\n", id="eof-after-a-line"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", id="not-agi"),
        pytest.param(b"\n", id="empty-header"),
        pytest.param(b"agi_network yes\nagi_uniqueid 1\n\n", id="line-without-colon"),
        pytest.param(b"agi_request: " + b"x" * 1_000_000 + b"\n\n", id="1MB-value"),
        pytest.param(b"agi_request: x\n" * 20_000 + b"\n", id="1MB-of-lines"),
        pytest.param(b"".join(b"agi_x%d: y\n" % n for n in range(1000)) + b"\n", id="too-many-lines"),
        pytest.param(b"\xff\xfe\x00garbage\x80\n\n", id="binary"),
    ],
)
async def test_malformed_headers_are_dropped_and_the_server_keeps_serving(
    start_fastagi: StartServer, caplog: pytest.LogCaptureFixture, payload: bytes
) -> None:
    server = await start_fastagi({cv.AGI_FREEPHONE: set_route})
    reader, writer = await asyncio.open_connection("127.0.0.1", server.bound_port)
    with caplog.at_level(logging.WARNING):
        try:
            writer.write(payload)
            await writer.drain()
            writer.write_eof()
        except ConnectionError:
            pass  # the server may close before it has read all of a huge payload
        try:
            said = await asyncio.wait_for(reader.read(), 5)
        except ConnectionResetError:  # closed with our junk unread: a reset is a close too
            said = b""
        writer.close()
    assert said == b""  # closed without a word: nothing to route, no channel to send anywhere
    assert server.counters.malformed == 1
    assert any("dropped" in record.getMessage() for record in caplog.records)
    assert await agi_call(server.bound_port) == NORMAL


async def test_a_silent_peer_is_dropped_after_the_header_deadline(start_fastagi: StartServer) -> None:
    server = await start_fastagi({cv.AGI_FREEPHONE: set_route}, header_timeout=0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.bound_port)
    writer.write(b"agi_network: yes\n")  # ... and nothing more, connection left open
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    assert server.counters.malformed == 1
    assert await agi_call(server.bound_port) == NORMAL


async def test_a_flood_of_500_calls_is_served_or_failed_over_never_queued(start_fastagi: StartServer) -> None:
    release = asyncio.Event()

    async def flow(session: AgiSession) -> None:
        await release.wait()
        await set_route(session)

    server = await start_fastagi({cv.AGI_FREEPHONE: flow}, max_sessions=50)
    calls = [
        asyncio.create_task(agi_call(server.bound_port, agi_header(unique_id=f"1700.{n}")))
        for n in range(500)
    ]
    # Everyone beyond the first 50 is told to fail over while those 50 are still running.
    await asyncio.wait_for(_until(lambda: server.counters.rejected == 450), 30)
    assert server.active == 50
    release.set()
    results = await asyncio.wait_for(asyncio.gather(*calls), 30)
    assert sum(result == NORMAL for result in results) == 50
    assert sum(result[-4:] == FAILOVER for result in results) == 450
    assert server.counters.sessions == 500 and server.active == 0
    assert await agi_call(server.bound_port) == NORMAL


async def test_a_flood_of_junk_connections_does_not_stop_real_calls(start_fastagi: StartServer) -> None:
    server = await start_fastagi({cv.AGI_FREEPHONE: set_route}, header_timeout=2)
    junk = []
    for n in range(500):
        _reader, writer = await asyncio.open_connection("127.0.0.1", server.bound_port)
        writer.write(b"agi_x: %d\n" % n)  # never finished
        junk.append(writer)
    assert await agi_call(server.bound_port) == NORMAL  # a real call among them is served
    for writer in junk:
        writer.close()
    await asyncio.wait_for(_until(lambda: server.counters.malformed == 500), 10)
    assert server.counters.completed == 1


async def _until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0.01)


# -- the AGI deadline (dialplans: TIMEOUT(absolute) around AGI(), a T extension) ----------------------


def deadline(seconds: int) -> str:
    return f'SET VARIABLE {cv.AGI_DEADLINE_FUNCTION} "{seconds}"'


def write_wav(path: Path, seconds: float, rate: int = 8000) -> str:
    with wave.open(str(path), "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(rate)
        sound.writeframes(b"\0\0" * int(seconds * rate))
    return str(path.with_suffix(""))


async def test_each_prompt_moves_the_deadline_past_its_own_length(
    start_fastagi: StartServer, tmp_path: Path
) -> None:
    prompt = write_wav(tmp_path / "two-and-a-half-seconds.wav", 2.5)

    async def flow(session: AgiSession) -> None:
        await session.stream_file(prompt, "1")
        await session.get_data(prompt, 8000, 4)
        await session.wait_for_digit(6000)
        await session.say_digits("35")
        await session.stream_file("burgernet/welcome")  # relative: Asterisk's folder, not measurable
        await set_route(session)

    server = await start_fastagi({cv.AGI_FREEPHONE: flow}, agi_deadline=4)
    commands = await agi_call(server.bound_port)

    margin = cv.AGI_DEADLINE_SECONDS
    assert margin == 4
    assert commands == [
        deadline(7),  # 2.5 s of prompt + 4, rounded up
        f'STREAM FILE "{prompt}" "1"',
        deadline(39),  # the prompt, then up to 8 s for each of 4 keys, + 4
        f'GET DATA "{prompt}" 8000 4',
        deadline(10),
        "WAIT FOR DIGIT 6000",
        deadline(7),  # two digits of 1.5 s
        'SAY DIGITS 35 ""',
        deadline(int(UNMEASURED_SOUND_SECONDS) + 4),
        'STREAM FILE "burgernet/welcome" ""',
        *NORMAL,
    ]


async def test_a_failing_flow_gets_a_fresh_deadline_before_it_is_sent_to_the_failure_context(
    start_fastagi: StartServer,
) -> None:
    async def flow(session: AgiSession) -> None:
        raise RuntimeError("database on fire")

    server = await start_fastagi({cv.AGI_FREEPHONE: flow}, agi_deadline=4)
    commands = await agi_call(server.bound_port)
    # The failure context has no T extension: the deadline must not fire once the channel is
    # there. So the server gives itself the full margin for these few commands first, and
    # disarms the deadline once the channel's next stop is the failure context (the dialplan's
    # own reset after AGI() is skipped by the jump).
    assert commands == [
        deadline(4),
        f'SET VARIABLE {cv.VAR_REASON} "fastagi: RuntimeError"',
        *FAILOVER,
        deadline(0),
    ]


def test_sound_lengths_come_from_the_files_asterisk_plays(tmp_path: Path) -> None:
    assert sound_seconds(write_wav(tmp_path / "wideband.wav", 1.25, rate=16000)) == 1.25
    (tmp_path / "raw.sln16").write_bytes(b"\0" * 32000 * 3)
    assert sound_seconds(str(tmp_path / "raw")) == 3.0
    (tmp_path / "broken.wav").write_bytes(b"RIFF not really")
    assert sound_seconds(str(tmp_path / "broken")) == UNMEASURED_SOUND_SECONDS
    assert sound_seconds(str(tmp_path / "missing")) == UNMEASURED_SOUND_SECONDS


# -- the health probe (the supervisor's FastAGI check) -----------------------------------------------

PROBE = (
    b"agi_network: yes\nagi_network_script: healthz\nagi_request: agi://127.0.0.1/healthz\n"
    b"agi_uniqueid: probe\nagi_channel: probe\n\n"
)


async def test_the_health_probe_gets_its_noop_and_is_no_call(
    start_fastagi: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = await start_fastagi({cv.AGI_FREEPHONE: set_route})
    assert cv.AGI_HEALTH == "healthz" and cv.AGI_HEALTH not in cv.AGI_SCRIPTS
    with caplog.at_level(logging.DEBUG):
        for _ in range(3):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.bound_port)
            writer.write(PROBE)
            await writer.drain()
            assert await asyncio.wait_for(reader.readline(), 2) == b"NOOP burgernet-healthy\n"
            writer.write(b"200 result=0\n")
            await writer.drain()
            assert await asyncio.wait_for(reader.read(), 2) == b""  # and the server hangs up
            writer.close()
    assert server.counters == ServerCounters()  # no session, no failure, nothing malformed
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert await agi_call(server.bound_port) == NORMAL  # calls are served as before
    assert server.counters.sessions == 1


async def test_a_frozen_event_loop_fails_the_health_probe(start_fastagi: StartServer) -> None:
    server = await start_fastagi({cv.AGI_FREEPHONE: set_route})

    def probe() -> bytes:
        with socket.create_connection(("127.0.0.1", server.bound_port), timeout=1.0) as connection:
            connection.sendall(PROBE)
            try:
                return connection.recv(100)
            except TimeoutError:
                return b""

    answered = asyncio.get_running_loop().run_in_executor(None, probe)
    time.sleep(1.5)  # the loop is stuck (as in a SIGSTOPped or wedged process): no answer
    assert await answered == b""
    assert await asyncio.get_running_loop().run_in_executor(None, probe) == b"NOOP burgernet-healthy\n"
