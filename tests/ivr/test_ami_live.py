"""The AMI client against a real Asterisk (the project's sandbox, rendered ``manager.conf``).

``asterisk_instance`` is the shared running-Asterisk fixture: it has ``ami_port``,
``ami_username`` and ``ami_secret`` for the AMI user the project renders (read ``call,system``,
write ``originate,reporting``).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from burgernet import channel_vars as cv
from ivr.ami import AmiClient, AmiError
from tests.ivr.conftest import eventually

pytestmark = pytest.mark.asterisk


def client_for(instance: Any, secret: str | None = None) -> AmiClient:
    return AmiClient(
        "127.0.0.1",
        int(instance.ami_port),
        instance.ami_username,
        instance.ami_secret if secret is None else secret,
        min_backoff=0.1,
        max_backoff=0.5,
    )


async def test_logs_in_answers_actions_and_delivers_originate_outcomes(asterisk_instance: Any) -> None:
    client = client_for(asterisk_instance)
    outcomes: list[Any] = []

    async def on_originate_response(event: Any) -> None:
        outcomes.append(event)

    client.on("OriginateResponse", on_originate_response)
    await client.connect(wait=30)
    try:
        pong = await client.send_action({"Action": "Ping"})
        assert pong.success and pong["Ping"] == "Pong"
        # A Local channel into a context that does not exist cannot be created: Asterisk queues
        # the call (the target, the failure context's "s", exists), then reports the failure as
        # an event carrying our ActionID. No phone is involved.
        action_id = f"bn-live-{uuid.uuid4().hex[:8]}"
        queued = await client.originate(
            channel="Local/s@bn-no-such-context",
            context=cv.CTX_FAILURE,
            caller_id="08000011",
            timeout_ms=5000,
            variables={"BN_DELIVERY_ID": "1"},
            action_id=action_id,
        )
        assert queued.success, queued
        await eventually(lambda: any(e["ActionID"] == action_id for e in outcomes), timeout=20)
        [outcome] = [e for e in outcomes if e["ActionID"] == action_id]
        assert outcome["Response"] == "Failure"
        assert client.callback_errors == 0
    finally:
        await client.close()


async def test_a_wrong_secret_is_refused_and_retried_not_connected(asterisk_instance: Any) -> None:
    client = client_for(asterisk_instance, secret="not-the-secret-at-all")
    await client.connect()
    try:
        await eventually(lambda: client.failed_attempts >= 2, timeout=20)
        assert not client.connected and client.connections == 0
    finally:
        await client.close()


async def test_the_ami_user_may_read_the_state_and_nothing_more(asterisk_instance: Any) -> None:
    """The rendered rights (write = originate,reporting): Status and DeviceStateList answer,
    an action of another class is refused, and a refusal fails at once instead of hanging."""
    client = client_for(asterisk_instance)
    await client.connect(wait=30)
    try:
        assert await client.live_channels() == set()  # allowed, and nothing is up
        states = await client.device_states()
        assert states.get("PJSIP/trunk") in {"NOT_INUSE", "UNKNOWN"}, states
        with pytest.raises(AmiError, match="Permission denied"):  # class system only
            await client.list_action({"Action": "PJSIPShowEndpoints"}, timeout=5)
        hangup = await client.send_action({"Action": "Hangup", "Channel": "PJSIP/trunk-00000001"})
        assert not hangup.success and "Permission denied" in hangup.get("Message", "")
    finally:
        await client.close()
