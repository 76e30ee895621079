"""The AMI wrapper against a small TCP server speaking AMI's line protocol.

(The same client is exercised against the real Asterisk in the telephony tests.)
"""

from __future__ import annotations

import asyncio
import logging
import re

import pytest

from ivr.ami import AmiClient


class FakeAmi:
    """Banner, Login (accepted or refused), then whatever events the test pushes."""

    def __init__(self, accept_login: bool = True) -> None:
        self.accept_login = accept_login
        self.writers: list[asyncio.StreamWriter] = []
        self.logins = 0
        self.actions: list[str] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

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
            action_id = re.search(r"ActionID: (\S+)", text)
            ident = action_id.group(1) if action_id else ""
            if "Action: Login" in text:
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
            else:
                writer.write(
                    f"Response: Success\r\nActionID: {ident}\r\nMessage: Originate successfully queued"
                    "\r\n\r\n".encode()
                )
            await writer.drain()

    async def push(self, event: str) -> None:
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
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


async def eventually(condition: object, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_events_reach_callbacks_and_a_failing_callback_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeAmi()
    port = await fake.start()
    client = AmiClient("127.0.0.1", port, "burgernet", "secret-secret", min_backoff=0.05)
    received: list[str] = []

    async def good(event: object) -> None:
        received.append(event["Uniqueid"])  # type: ignore[index]

    async def bad(event: object) -> None:
        raise RuntimeError("boom")

    client.on("Hangup", good)
    client.on("Hangup", bad)
    await client.connect(wait=5)
    with caplog.at_level(logging.ERROR):
        await fake.push("Event: Hangup\r\nUniqueid: 1700.5\r\nCause: 16\r\n\r\n")
        await fake.push("Event: Newchannel\r\nUniqueid: 1700.6\r\n\r\n")
        await eventually(lambda: received == ["1700.5"] and client.callback_errors == 1)
    assert any("1700.5" in record.getMessage() for record in caplog.records)
    response = await client.originate(
        channel="PJSIP/+31612345678@trunk",
        context="burgernet-alert",
        caller_id="08000011",
        variables={"BN_ACTION_ID": "4", "BN_DELIVERY_ID": "9"},
    )
    assert response.success
    sent = fake.actions[-1]
    assert (
        "Variable: BN_ACTION_ID=4" in sent and "Variable: BN_DELIVERY_ID=9" in sent and "Async: true" in sent
    )
    await client.close()
    await fake.stop()


async def test_reconnects_with_backoff_and_stops_when_closed() -> None:
    fake = FakeAmi()
    port = await fake.start()
    client = AmiClient("127.0.0.1", port, "burgernet", "secret-secret", min_backoff=0.05, max_backoff=0.2)
    await client.connect(wait=5)
    fake.drop_connections()
    await eventually(lambda: client.connections == 2)
    assert client.connected
    await client.close()
    logins = fake.logins
    await asyncio.sleep(0.5)
    assert fake.logins == logins  # closed means closed: no more reconnects
    await fake.stop()


async def test_refused_login_is_not_a_connection() -> None:
    fake = FakeAmi(accept_login=False)
    port = await fake.start()
    client = AmiClient("127.0.0.1", port, "burgernet", "wrong", min_backoff=0.05, max_backoff=0.1)
    await client.connect()
    await eventually(lambda: fake.logins >= 3)  # it keeps trying, backing off
    assert not client.connected and client.connections == 0
    await client.close()
    await fake.stop()


async def test_unreachable_server_is_retried_until_it_appears() -> None:
    probe = FakeAmi()
    port = await probe.start()
    await probe.stop()  # nothing listens on the port now
    client = AmiClient("127.0.0.1", port, "burgernet", "secret-secret", min_backoff=0.05, max_backoff=0.1)
    await client.connect()
    await asyncio.sleep(0.3)
    assert not client.connected
    late = FakeAmi()
    late.server = await asyncio.start_server(late._client, "127.0.0.1", port)
    await eventually(lambda: client.connected)
    await client.close()
    await late.stop()
