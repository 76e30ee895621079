"""The AMI client against a TCP server speaking AMI's line protocol (banner, Login, events).

Reconnection with back-off, callbacks whose exceptions are logged, Originate, and what
happens to an action in flight when the connection goes. (Against a real Asterisk:
``test_ami_live.py``.)
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from burgernet.phone import NotDialable
from ivr.ami import (
    STATE_BACKING_OFF,
    STATE_CLOSED,
    STATE_CONNECTED,
    STATE_CONNECTING,
    STATE_IDLE,
    AmiClient,
    AmiConnectionLost,
    AmiNotConnected,
)
from tests.ivr.conftest import FakeAmi, eventually


def client_for(fake: FakeAmi, **options: Any) -> AmiClient:
    options.setdefault("min_backoff", 0.05)
    options.setdefault("max_backoff", 0.2)
    return AmiClient("127.0.0.1", fake.port, "burgernet", "secret-secret", **options)


async def test_events_reach_callbacks_by_name_and_pattern_and_a_failing_callback_is_logged(
    fake_ami: FakeAmi, caplog: pytest.LogCaptureFixture
) -> None:
    client = client_for(fake_ami)
    hangups: list[str] = []
    everything: list[str] = []

    async def on_hangup(event: Any) -> None:
        hangups.append(event["Uniqueid"])

    async def broken(event: Any) -> None:
        raise RuntimeError("tracker bug")

    async def on_any(event: Any) -> None:
        everything.append(event["Event"])

    client.on("Hangup", on_hangup)
    client.on("Hangup", broken)
    await client.connect(wait=5)
    client.on("*", on_any)  # registered after the login: still delivered
    with caplog.at_level(logging.ERROR, logger="ivr.ami"):
        await fake_ami.push("Event: Hangup\r\nUniqueid: 1700.5\r\nCause: 16\r\n\r\n")
        await fake_ami.push("Event: Newchannel\r\nUniqueid: 1700.6\r\n\r\n")
        await eventually(lambda: len(everything) == 2 and client.callback_errors == 1)
    assert hangups == ["1700.5"]
    assert everything == ["Hangup", "Newchannel"]
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "1700.5" in record.getMessage() and "Hangup" in record.getMessage() and record.exc_info
    # The failing callback did not hurt the connection: later events still arrive.
    await fake_ami.push("Event: Hangup\r\nUniqueid: 1700.7\r\n\r\n")
    await eventually(lambda: hangups == ["1700.5", "1700.7"])
    assert client.connected and client.connections == 1
    await client.close()


async def test_originate_sends_one_variable_header_each_and_the_outcome_arrives_as_an_event(
    fake_ami: FakeAmi,
) -> None:
    client = client_for(fake_ami)
    outcomes: list[str] = []

    async def on_originate_response(event: Any) -> None:
        outcomes.append(f"{event['ActionID']}:{event['Response']}")

    client.on("OriginateResponse", on_originate_response)
    await client.connect(wait=5)
    response = await client.originate(
        channel="PJSIP/0612345678@trunk",
        context="burgernet-alert",
        caller_id='"Burgernet" <08000011>',
        timeout_ms=45_000,
        variables={"BN_ACTION_ID": "4", "BN_DELIVERY_ID": "9"},
        action_id="delivery-9",
    )
    assert response.success
    [sent] = fake_ami.actions_named("Originate")
    for header in (
        "Channel: PJSIP/0612345678@trunk",
        "Context: burgernet-alert",
        "Exten: s",
        "Priority: 1",
        'CallerID: "Burgernet" <08000011>',
        "Timeout: 45000",
        "Async: true",
        "ActionID: delivery-9",
        "Variable: BN_ACTION_ID=4",
        "Variable: BN_DELIVERY_ID=9",
    ):
        assert f"{header}\r\n" in sent
    await fake_ami.push(
        "Event: OriginateResponse\r\nActionID: delivery-9\r\nResponse: Failure\r\nReason: 3\r\n\r\n"
    )
    await eventually(lambda: outcomes == ["delivery-9:Failure"])
    await client.close()


async def test_line_breaks_in_an_action_are_refused_before_anything_is_sent(fake_ami: FakeAmi) -> None:
    client = client_for(fake_ami)
    await client.connect(wait=5)
    before = list(fake_ami.actions)
    with pytest.raises(ValueError, match="line break"):
        await client.originate(
            channel="PJSIP/0612345678@trunk",
            context="burgernet-alert",
            caller_id="08000011\r\nAction: Command\r\nCommand: core stop now",
        )
    with pytest.raises(ValueError, match="line break"):
        await client.originate(
            channel="PJSIP/0612345678@trunk",
            context="burgernet-alert",
            caller_id="x",
            variables={"A": "1\n2"},
        )
    with pytest.raises(ValueError, match="unsafe channel variable"):
        await client.originate(
            channel="PJSIP/0612345678@trunk", context="c", caller_id="x", variables={"A=B": "1"}
        )
    await asyncio.sleep(0.1)
    assert fake_ami.actions == before
    await client.close()


async def test_not_connected_is_a_clear_error(fake_ami: FakeAmi) -> None:
    client = client_for(fake_ami)
    assert client.state == STATE_IDLE
    with pytest.raises(AmiNotConnected):
        await client.send_action({"Action": "Ping"})
    await client.close()


async def test_reconnects_after_a_drop_and_stops_for_good_when_closed(fake_ami: FakeAmi) -> None:
    client = client_for(fake_ami)
    await client.connect(wait=5)
    assert client.state == STATE_CONNECTED
    fake_ami.drop_connections()
    await eventually(lambda: client.connections == 2 and client.connected)
    assert (await client.send_action({"Action": "Ping"})).success
    await client.close()
    assert client.state == STATE_CLOSED and not client.connected
    logins = fake_ami.logins
    await asyncio.sleep(0.5)  # several back-off periods: closed means no more attempts
    assert fake_ami.logins == logins


async def test_on_connect_runs_after_every_login_and_may_send_actions(
    fake_ami: FakeAmi, caplog: pytest.LogCaptureFixture
) -> None:
    client = client_for(fake_ami)
    answers: list[bool] = []

    async def read_state_afresh() -> None:
        answers.append(bool((await client.send_action({"Action": "Ping"})).success))

    async def broken() -> None:
        raise RuntimeError("resync bug")

    client.on_connect(read_state_afresh)
    client.on_connect(broken)
    with caplog.at_level(logging.ERROR, logger="ivr.ami"):
        await client.connect(wait=5)
        await eventually(lambda: answers == [True])
        fake_ami.drop_connections()
        await eventually(lambda: answers == [True, True])
    assert client.callback_errors == 2 and "resync bug" in caplog.text  # logged, never fatal
    assert client.connected
    await client.close()


async def test_back_off_doubles_with_jitter_up_to_the_cap() -> None:
    nobody = FakeAmi()
    port = await nobody.start()
    await nobody.stop()  # nothing listens there now
    client = AmiClient("127.0.0.1", port, "burgernet", "secret-secret", min_backoff=0.01, max_backoff=0.08)
    await client.connect()
    await eventually(lambda: len(client.backoff_history) >= 7)
    assert not client.connected and client.state in (STATE_CONNECTING, STATE_BACKING_OFF)
    await client.close()
    expected = [0.01, 0.02, 0.04, 0.08, 0.08, 0.08, 0.08]
    for waited, base in zip(client.backoff_history, expected, strict=False):
        assert base * 0.8 <= waited <= base * 1.2
    assert client.failed_attempts >= 7


async def test_a_refused_login_backs_off_and_is_not_a_connection(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeAmi(accept_login=False)
    await fake.start()
    client = client_for(fake)
    with caplog.at_level(logging.ERROR, logger="ivr.ami"):
        await client.connect()
        await eventually(lambda: fake.logins >= 3)
    assert not client.connected and client.connections == 0
    assert any("login refused" in record.getMessage() for record in caplog.records)
    with pytest.raises(TimeoutError):
        await client.wait_connected(0.1)
    await client.close()
    await fake.stop()


async def test_an_unreachable_asterisk_is_retried_until_it_appears() -> None:
    probe = FakeAmi()
    port = await probe.start()
    await probe.stop()
    client = AmiClient("127.0.0.1", port, "burgernet", "secret-secret", min_backoff=0.05, max_backoff=0.1)
    await client.connect()
    await eventually(lambda: client.failed_attempts >= 2)
    assert not client.connected
    late = FakeAmi()
    await late.start(port)
    await client.wait_connected(5)
    assert client.connections == 1
    await client.close()
    await late.stop()


async def test_an_action_in_flight_when_the_connection_drops_fails_and_is_never_sent_again(
    fake_ami: FakeAmi,
) -> None:
    """panoramisk on its own would send it again after the next login: a second alert call."""
    client = client_for(fake_ami)
    await client.connect(wait=5)
    fake_ami.answer_actions = False  # Asterisk takes the Originate and says nothing
    call = asyncio.create_task(
        client.originate(channel="PJSIP/0612345678@trunk", context="burgernet-alert", caller_id="08000011")
    )
    await eventually(lambda: len(fake_ami.actions_named("Originate")) == 1)
    fake_ami.answer_actions = True
    fake_ami.drop_connections()
    with pytest.raises(AmiConnectionLost):
        await asyncio.wait_for(call, 5)  # at once, not after the action's 10 s timeout
    await eventually(lambda: client.connections == 2 and client.connected)
    await fake_ami.push("Event: FullyBooted\r\nStatus: Fully Booted\r\n\r\n")
    assert (await client.send_action({"Action": "Ping"})).success
    assert len(fake_ami.actions_named("Originate")) == 1
    await client.close()


async def test_an_unanswered_ping_reconnects(fake_ami: FakeAmi, caplog: pytest.LogCaptureFixture) -> None:
    """A half-open connection (Asterisk frozen, a firewall dropped the state) is noticed."""
    client = client_for(fake_ami, ping_interval=0.1, ping_timeout=0.1)
    await client.connect(wait=5)
    with caplog.at_level(logging.WARNING, logger="ivr.ami"):
        fake_ami.answer_pings = False
        await eventually(lambda: fake_ami.logins >= 2)
    assert any("did not answer a Ping" in record.getMessage() for record in caplog.records)
    fake_ami.answer_pings = True
    await client.wait_connected(5)
    await client.close()


async def test_callbacks_still_running_at_close_are_awaited(fake_ami: FakeAmi) -> None:
    client = client_for(fake_ami)
    finished: list[str] = []

    async def slow(event: Any) -> None:
        await asyncio.sleep(0.2)
        finished.append(event["Uniqueid"])

    client.on("Hangup", slow)
    await client.connect(wait=5)
    await fake_ami.push("Event: Hangup\r\nUniqueid: 1700.8\r\n\r\n")
    await eventually(lambda: bool(client._callback_tasks))
    await client.close()
    assert finished == ["1700.8"]


async def test_an_originate_to_the_trunk_for_a_number_we_never_call_is_refused(fake_ami: FakeAmi) -> None:
    client = client_for(fake_ami)
    await client.connect(wait=5)
    before = list(fake_ami.actions)
    for channel in (
        "PJSIP/0031201234567@trunk",
        "PJSIP/0900123456@trunk",
        "PJSIP/112@trunk",
        "PJSIP/trunk/sip:1@x",
    ):
        with pytest.raises(NotDialable):
            await client.originate(channel=channel, context="burgernet-alert", caller_id="08000011")
    await asyncio.sleep(0.1)
    assert fake_ami.actions == before
    # A Dutch mobile number is sent: the refusal above is about the number.
    await client.originate(channel="PJSIP/0612345678@trunk", context="burgernet-alert", caller_id="08000011")
    assert len(fake_ami.actions_named("Originate")) == 1
    await client.close()
