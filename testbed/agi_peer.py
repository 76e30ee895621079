"""Asterisk's side of FastAGI, spoken over TCP the way res_agi does.

:class:`AgiPeer` connects to a FastAGI server, sends the ``agi_*`` header and answers each command
the server writes; :func:`agi_call` is one whole call. Used by the FastAGI tests and by the
telephony scenario (:mod:`testbed.telephony`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from burgernet import channel_vars as cv

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
