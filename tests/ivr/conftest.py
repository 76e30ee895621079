"""Peers for the FastAGI server and the AMI client, speaking the real wire protocols over TCP.

* :class:`AgiPeer` plays Asterisk's side of FastAGI: it connects, sends the ``agi_*`` header
  and answers each command the server writes, the way res_agi does.
* :class:`FakeAmi` plays Asterisk's side of AMI: banner, Login, answers to actions, events.

(The AMI client against a real Asterisk is in ``test_ami_live.py``.)
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from asterisk_conf.instance import free_udp_and_tcp_port, prepare
from asterisk_conf.render import AsteriskPlan
from asterisk_conf.sandbox import AsteriskInstall
from burgernet import channel_vars as cv
from burgernet.settings import load_settings
from ivr.agi import AgiSession
from ivr.server import FastAgiServer

# What the server sends when a call fails over (the last four commands of the session).
FAILOVER = [
    f'SET VARIABLE {cv.VAR_ROUTE} "{cv.ROUTE_FAILURE}"',
    f"SET CONTEXT {cv.CTX_FAILURE}",
    "SET EXTENSION s",
    "SET PRIORITY 1",
]

Answers = Callable[[str], list[bytes]]


def agi_header(script: str = cv.AGI_FREEPHONE, unique_id: str = "1700000000.7", **extra: str) -> bytes:
    """The header res_agi sends for ``AGI(agi://127.0.0.1:4573/<script>,<args>)``."""
    lines = {
        "agi_network": "yes",
        "agi_network_script": script,
        "agi_request": f"agi://127.0.0.1:4573/{script}",
        "agi_channel": "PJSIP/trunk-00000001",
        "agi_language": "nl",
        "agi_type": "PJSIP",
        "agi_uniqueid": unique_id,
        "agi_version": "22.0.0",
        "agi_callerid": "0612345678",
        "agi_calleridname": "unknown",
        "agi_context": cv.CTX_FREEPHONE,
        "agi_extension": "08000011",
        "agi_priority": "3",
        "agi_threadid": "140000000000000",
        "agi_linkedid": unique_id,
        **extra,
    }
    return "".join(f"{name}: {value}\n" for name, value in lines.items()).encode() + b"\n"


def always_ok(_command: str) -> list[bytes]:
    return [b"200 result=1\n"]


class AgiPeer:
    """One call as Asterisk would make it: header, then one answer per command, until closed."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.commands: list[str] = []

    @classmethod
    async def connect(cls, port: int) -> AgiPeer:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def next_command(self, timeout: float = 5.0) -> str | None:
        line = await asyncio.wait_for(self.reader.readline(), timeout)
        if not line:
            return None
        command = line.decode().rstrip("\n")
        self.commands.append(command)
        return command

    async def answer_all(self, answers: Answers = always_ok) -> list[str]:
        """Answer every command until the server closes the connection; returns the commands."""
        while (command := await self.next_command()) is not None:
            for chunk in answers(command):
                self.writer.write(chunk)
            await self.writer.drain()
        self.close()
        return self.commands

    def close(self) -> None:
        self.writer.close()


async def agi_call(port: int, header: bytes | None = None, answers: Answers = always_ok) -> list[str]:
    """A whole call: connect, send the header, answer everything; returns the server's commands."""
    peer = await AgiPeer.connect(port)
    await peer.send(agi_header() if header is None else header)
    return await peer.answer_all(answers)


StartServer = Callable[..., Awaitable[FastAgiServer]]


@pytest.fixture
async def start_fastagi() -> AsyncIterator[StartServer]:
    """``await start_fastagi(routes, **options)``: a started server on a free loopback port."""
    servers: list[FastAgiServer] = []

    async def start(
        routes: dict[str, Callable[[AgiSession], Awaitable[None]]], **options: Any
    ) -> FastAgiServer:
        server = FastAgiServer(routes, host="127.0.0.1", port=0, **options)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close(grace=1)


class FakeAmi:
    """Asterisk's side of AMI: banner, Login (accepted or refused), answers, pushed events.

    ``answer_actions=False`` leaves every action after Login unanswered (a hung Asterisk);
    ``answer_pings=False`` only leaves Pings unanswered (a half-open connection).
    """

    def __init__(self, accept_login: bool = True) -> None:
        self.accept_login = accept_login
        self.answer_actions = True
        self.answer_pings = True
        self.writers: list[asyncio.StreamWriter] = []
        self.logins = 0
        self.actions: list[str] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self, port: int = 0) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", port)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self.port

    def actions_named(self, name: str) -> list[str]:
        return [text for text in self.actions if f"Action: {name}\r\n" in text]

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        while True:
            try:
                block = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            text = block.decode()
            self.actions.append(text)
            found = re.search(r"ActionID: (\S+)", text)
            ident = found.group(1) if found else ""
            if "Action: Login\r\n" in text:
                self.logins += 1
                if self.accept_login:
                    writer.write(
                        f"Response: Success\r\nActionID: {ident}\r\nMessage: Authentication accepted"
                        "\r\n\r\n".encode()
                    )
                    writer.write(
                        b"Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n"
                    )
                else:
                    writer.write(
                        f"Response: Error\r\nActionID: {ident}\r\nMessage: Authentication failed"
                        "\r\n\r\n".encode()
                    )
            elif "Action: Ping\r\n" in text:
                if self.answer_pings and self.answer_actions:
                    writer.write(f"Response: Success\r\nActionID: {ident}\r\nPing: Pong\r\n\r\n".encode())
            elif self.answer_actions:
                writer.write(
                    f"Response: Success\r\nActionID: {ident}\r\nMessage: Originate successfully queued"
                    "\r\n\r\n".encode()
                )
            await writer.drain()

    async def push(self, event: str) -> None:
        """Send one event block (``"Event: X\\r\\nKey: v\\r\\n\\r\\n"``) to every client."""
        for writer in self.writers:
            if not writer.is_closing():
                writer.write(event.encode())
                await writer.drain()

    def drop_connections(self) -> None:
        for writer in self.writers:
            writer.close()
        self.writers.clear()

    async def stop(self) -> None:
        self.drop_connections()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None


@pytest.fixture
async def fake_ami() -> AsyncIterator[FakeAmi]:
    fake = FakeAmi()
    await fake.start()
    yield fake
    await fake.stop()


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until ``condition()`` holds (a state to reach, not a speed to meet)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


@dataclass
class LiveAsterisk:
    ami_port: int
    ami_username: str
    ami_secret: str


@pytest.fixture
def asterisk_instance(tmp_path: Path, asterisk_install: AsteriskInstall) -> Iterator[LiveAsterisk]:
    """A running Asterisk from the sandbox with the project's rendered configuration."""
    settings = load_settings(
        data_dir=tmp_path,
        asterisk={
            "sandbox_root": str(asterisk_install.root or "/var/cache/burgernet/asterisk-sid"),
            "instance_name": f"ivrlive-{os.getpid()}",
            "sip_port": free_udp_and_tcp_port(),
            "ami_port": free_udp_and_tcp_port(),
            "agi_port": free_udp_and_tcp_port(),
            "trunk_port": free_udp_and_tcp_port(),
        },
    )
    configured = prepare(settings, AsteriskPlan((), "MN"), log=lambda _line: None)
    configured.instance.start()
    a = settings.asterisk
    try:
        yield LiveAsterisk(a.ami_port, a.ami_username, a.ami_secret)
    finally:
        configured.instance.remove()
