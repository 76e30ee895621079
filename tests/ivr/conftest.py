"""Peers for the FastAGI server and the AMI client, speaking the real wire protocols over TCP.

* Asterisk's side of FastAGI is :class:`testbed.agi_peer.AgiPeer` (shared with the telephony scenario).
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

from asterisk_conf.instance import prepare
from asterisk_conf.render import AsteriskPlan
from asterisk_conf.sandbox import AsteriskInstall
from burgernet import channel_vars as cv
from burgernet.settings import load_settings
from ivr.agi import AgiSession
from ivr.server import FastAgiServer
from testbed.ports import free_port

# What the server sends when a call fails over (the last four commands of the session).
FAILOVER = [
    f'SET VARIABLE {cv.VAR_ROUTE} "{cv.ROUTE_FAILURE}"',
    f"SET CONTEXT {cv.CTX_FAILURE}",
    "SET EXTENSION s",
    "SET PRIORITY 1",
]

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
            "sip_port": free_port(),
            "ami_port": free_port(),
            "agi_port": free_port(),
            "trunk_port": free_port(),
        },
    )
    configured = prepare(settings, AsteriskPlan((), "MN"), log=lambda _line: None)
    configured.instance.start()
    a = settings.asterisk
    try:
        yield LiveAsterisk(a.ami_port, a.ami_username, a.ami_secret)
    finally:
        configured.instance.remove()
