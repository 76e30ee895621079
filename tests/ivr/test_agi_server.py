"""The FastAGI server against a client that speaks AGI over TCP the way Asterisk does."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from burgernet import channel_vars as cv
from ivr.agi import AgiSession
from ivr.server import FastAgiServer


def header(script: str = "freephone", unique_id: str = "1700000000.7", **extra: str) -> bytes:
    lines = {
        "agi_network": "yes",
        "agi_network_script": script,
        "agi_request": f"agi://127.0.0.1/{script}",
        "agi_channel": "PJSIP/trunk-00000001",
        "agi_language": "nl",
        "agi_uniqueid": unique_id,
        "agi_callerid": "0612345678",
        "agi_calleridname": "unknown",
        "agi_context": "burgernet-freephone",
        "agi_extension": "08000011",
        "agi_priority": "3",
        **extra,
    }
    return "".join(f"{k}: {v}\n" for k, v in lines.items()).encode() + b"\n"


class FakeAsterisk:
    """Answers each command with ``200 result=1`` (or what the test scripts) and records it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.commands: list[str] = []

    async def run(self, answers: Callable[[str], list[bytes]] = lambda _c: [b"200 result=1\n"]) -> list[str]:
        while True:
            line = await asyncio.wait_for(self.reader.readline(), 5)
            if not line:
                return self.commands
            command = line.decode().strip()
            self.commands.append(command)
            for chunk in answers(command):
                self.writer.write(chunk)
            await self.writer.drain()


@pytest.fixture
async def make_server() -> AsyncIterator[Callable[..., FastAgiServer]]:
    servers: list[FastAgiServer] = []

    def factory(routes: dict[str, Callable[[AgiSession], object]], **options: object) -> FastAgiServer:
        # These tests count protocol commands: no AGI-deadline commands among them (the
        # deadline has its own tests in test_fastagi_server.py).
        options.setdefault("agi_deadline", None)
        server = FastAgiServer(routes, host="127.0.0.1", port=0, **options)  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield factory
    for server in servers:
        await server.close(grace=1)


async def call(
    server: FastAgiServer, payload: bytes, answers: Callable[[str], list[bytes]] | None = None
) -> list[str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.bound_port)
    writer.write(payload)
    await writer.drain()
    fake = FakeAsterisk(reader, writer)
    commands = await (fake.run(answers) if answers else fake.run())
    writer.close()
    return commands


FAILOVER = [
    f'SET VARIABLE {cv.VAR_ROUTE} "{cv.ROUTE_FAILURE}"',
    f"SET CONTEXT {cv.CTX_FAILURE}",
    "SET EXTENSION s",
    "SET PRIORITY 1",
]


async def test_a_flow_runs_with_the_parsed_environment(make_server: Callable[..., FastAgiServer]) -> None:
    seen: dict[str, Any] = {}

    async def flow(session: AgiSession) -> None:
        seen["env"] = session.env
        seen["var"] = await session.get_variable("BN_ACTION_ID")
        await session.set_variable("BN_ROUTE", 'di"al')

    server = make_server({"freephone": flow})
    await server.start()
    commands = await call(server, header(agi_arg_1="9"), lambda c: [b"200 result=1 (42)\n"])
    assert commands == ["GET VARIABLE BN_ACTION_ID", 'SET VARIABLE BN_ROUTE "di\\"al"']
    env = seen["env"]
    assert (env.script, env.unique_id, env.caller_id, env.arguments) == (
        "freephone",
        "1700000000.7",
        "0612345678",
        ("9",),
    )
    assert seen["var"] == "42" and server.counters.completed == 1


async def test_a_failing_flow_goes_to_the_failure_context_and_logs_the_call_id(
    make_server: Callable[..., FastAgiServer], caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(session: AgiSession) -> None:
        raise RuntimeError("database on fire")

    server = make_server({"freephone": broken})
    await server.start()
    with caplog.at_level(logging.ERROR):
        commands = await call(server, header(unique_id="1700000000.99"))
    assert commands[-4:] == FAILOVER
    assert any("1700000000.99" in record.getMessage() and record.exc_info for record in caplog.records)
    assert server.counters.failed == 1


async def test_unknown_script_and_slow_flow_fail_over(make_server: Callable[..., FastAgiServer]) -> None:
    async def slow(session: AgiSession) -> None:
        await asyncio.sleep(30)

    server = make_server({"freephone": slow}, flow_timeout=0.2)
    await server.start()
    assert (await call(server, header(script="nonsense")))[-4:] == FAILOVER
    assert (await call(server, header()))[-4:] == FAILOVER
    assert server.counters.rejected == 1 and server.counters.failed == 1


async def test_hangup_mid_flow_is_quiet(
    make_server: Callable[..., FastAgiServer], caplog: pytest.LogCaptureFixture
) -> None:
    async def flow(session: AgiSession) -> None:
        await session.stream_file("burgernet/welcome")
        await session.set_variable("BN_ROUTE", "dial")

    server = make_server({"freephone": flow})
    await server.start()
    with caplog.at_level(logging.ERROR):
        commands = await call(server, header(), lambda c: [b"HANGUP\n", b"200 result=-1 endpos=0\n"])
    assert commands == ['STREAM FILE "burgernet/welcome" ""']
    assert server.counters.hung_up == 1 and not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    "payload",
    [
        b"",  # connect and close
        b"agi_network: yes\nagi_uniqueid: 1",  # EOF before the blank line
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # not AGI at all
        b"\n",  # empty header
        b"agi_request: " + b"x" * 2_000_000 + b"\n\n",  # huge value
        b"agi_" + b"a" * 100 + b": " + bytes(range(256)) + b"\n\n",  # binary garbage
        b"".join(b"agi_x%d: y\n" % n for n in range(1000)) + b"\n",  # too many lines
    ],
)
async def test_malformed_sessions_never_crash_the_server(
    make_server: Callable[..., FastAgiServer], payload: bytes
) -> None:
    async def flow(session: AgiSession) -> None:
        await session.set_variable("BN_ROUTE", "dial")

    server = make_server({"freephone": flow}, header_timeout=0.5)
    await server.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.bound_port)
    try:
        writer.write(payload)
        await writer.drain()
        writer.write_eof()
    except ConnectionError:
        pass
    try:
        said = await asyncio.wait_for(reader.read(), 5)
    except ConnectionResetError:  # closed with our junk unread: a reset is a close too
        said = b""
    assert said == b""  # the server closed it and said nothing
    writer.close()
    assert server.counters.malformed == 1
    # ... and still serves a normal call afterwards.
    assert await call(server, header()) == ['SET VARIABLE BN_ROUTE "dial"']


async def test_garbage_answers_from_asterisk_fail_over(make_server: Callable[..., FastAgiServer]) -> None:
    async def flow(session: AgiSession) -> None:
        await session.get_variable("BN_ACTION_ID")

    server = make_server({"freephone": flow})
    await server.start()
    first = True

    def answers(command: str) -> list[bytes]:
        nonlocal first
        if first:
            first = False
            return [b"this is not AGI\n"]
        return [b"200 result=1\n"]

    commands = await call(server, header(), answers)
    assert commands[0] == "GET VARIABLE BN_ACTION_ID" and commands[-4:] == FAILOVER


async def test_a_flood_is_served_or_failed_over_never_left_hanging(
    make_server: Callable[..., FastAgiServer],
) -> None:
    release = asyncio.Event()

    async def flow(session: AgiSession) -> None:
        await release.wait()
        await session.set_variable("BN_ROUTE", "dial")

    server = make_server({"freephone": flow}, max_sessions=50)
    await server.start()
    calls = [asyncio.create_task(call(server, header(unique_id=f"1700.{n}"))) for n in range(300)]
    await asyncio.sleep(0.5)
    release.set()
    results = await asyncio.wait_for(asyncio.gather(*calls), 30)
    routed = sum(r == ['SET VARIABLE BN_ROUTE "dial"'] for r in results)
    failed_over = sum(r[-4:] == FAILOVER for r in results)
    assert routed + failed_over == 300 and routed >= 50 and failed_over >= 1
    assert server.counters.rejected == failed_over
    assert await call(server, header()) == ['SET VARIABLE BN_ROUTE "dial"']


async def test_set_variables_is_one_round_trip_and_refuses_unsafe_values(
    make_server: Callable[..., FastAgiServer],
) -> None:
    errors: list[str] = []

    async def flow(session: AgiSession) -> None:
        try:
            await session.set_variables({"BN_REASON": "a, b"})
        except ValueError as exc:
            errors.append(str(exc))
        await session.set_variables(
            {"CHANNEL(language)": "en", "BN_TARGET_1": "PJSIP/a&PJSIP/b", "BN_ROUTE": "dial"}
        )

    server = make_server({"freephone": flow})
    await server.start()
    commands = await call(server, header())
    assert commands == ['EXEC MSet "CHANNEL(language)=en,BN_TARGET_1=PJSIP/a&PJSIP/b,BN_ROUTE=dial"']
    assert errors and "BN_REASON" in errors[0]
