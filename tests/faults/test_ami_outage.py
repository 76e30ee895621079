"""The AMI connection cut while things happen: state heals from what Asterisk reports.

A real Asterisk (the sandbox, our rendered configuration), ``burgernet serve``'s service and
an alert-call sender reach its AMI through :class:`AmiCut`, a TCP relay the test cuts: the
open connection drops and new ones are refused until it is restored, so every event Asterisk
sends meanwhile is lost. SIPp plays a centralist's phone that registers and unregisters, a
phone that answers, a caller, and the trunk's far end.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
import redis.asyncio as aioredis
from sqlalchemy import select

from asterisk_conf.instance import ConfiguredAsterisk, prepare
from asterisk_conf.render import AsteriskPlan
from asterisk_conf.sandbox import AsteriskInstall
from broadcasting.channels.base import Message
from broadcasting.channels.voice_asterisk import AsteriskVoiceSender
from broadcasting.ratelimit import SharedRate, SharedSlots
from broadcasting.store import DeliveryJob
from burgernet import health
from burgernet.actions import AreaSpec
from burgernet.calls import OUTCOME_UNOBSERVED, CallLog
from burgernet.db import session_scope
from burgernet.domain import AreaKind, Channel
from burgernet.models import AuditEvent, Participant
from burgernet.settings import Settings
from composition.context import Context
from composition.redis_server import ManagedRedis
from ivr.ami import AmiClient
from routing import Presence
from testbed.ports import port_block
from testbed.sipp import SIPP, Sipp
from testbed.waiting import wait_for
from tests.asterisk.conftest import asterisk_settings, centralist, sip_password
from tests.telephony.conftest import ServiceThread

pytestmark = pytest.mark.asterisk
T = TypeVar("T")

SPOT = (5.12, 52.09)  # Utrecht: the action's area and the caller's home


class AmiCut:
    """A TCP relay in front of Asterisk's AMI that can be cut and restored.

    ``cut()`` closes every relayed connection and refuses new ones (accepted, then closed at
    once, like a manager that hangs up) until ``restore()``.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.cut_now = False
        self.loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> AmiCut:
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._listen(), self.loop).result(10)
        return self

    async def _listen(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_now:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers.update((writer, up_writer))

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.difference_update((writer, up_writer))

    def cut(self) -> None:
        def drop() -> None:
            self.cut_now = True
            for writer in list(self._writers):
                writer.close()

        self.loop.call_soon_threadsafe(drop)

    def restore(self) -> None:
        self.cut_now = False

    def stop(self) -> None:
        self.cut()
        self.loop.call_soon_threadsafe(self._server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


class LoopThread:
    """An event loop in a thread, for the alert-call sender (as in ``burgernet worker``)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, work: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


_REGISTER = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="register">
{requests}</scenario>
"""
_REQUEST = """  <send retrans="500"><![CDATA[
REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:[service]@[remote_ip]:[remote_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: {cseq} REGISTER
Contact: <sip:[service]@[local_ip]:{contact_port}>
Max-Forwards: 70
Expires: {expires}
{auth}Content-Length: 0

]]></send>
"""


@dataclass
class Outage:
    settings: Settings  # serve's: AMI through the relay
    context: Context
    asterisk: ConfiguredAsterisk
    relay: AmiCut
    serve: ServiceThread
    sipp: Sipp
    workdir: Path

    def register(self, endpoint: str, expires: int) -> None:
        """A REGISTER (``expires=0``: unregister) with digest auth, as the phone would send it."""
        requests = _REQUEST.format(cseq=1, auth="", expires=expires, contact_port=5999)
        requests += '  <recv response="401" auth="true"/>\n'
        requests += _REQUEST.format(cseq=2, auth="[authentication]\n", expires=expires, contact_port=5999)
        requests += '  <recv response="200"/>\n'
        scenario = self.workdir / f"register-{endpoint}-{expires}-{time.monotonic_ns()}.xml"
        scenario.write_text(_REGISTER.format(requests=requests))
        done = subprocess.run(
            [
                SIPP,
                f"127.0.0.1:{self.asterisk_sip_port}",
                "-sf",
                str(scenario),
                "-i",
                "127.0.0.1",
                "-p",
                str(port_block()),
                "-m",
                "1",
                "-nostdin",
                "-timeout",
                "20s",
                "-timeout_error",
                "-s",
                endpoint,
                "-au",
                endpoint,
                "-ap",
                sip_password(endpoint),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=self.workdir,
        )
        assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-1500:]

    @property
    def asterisk_sip_port(self) -> int:
        return self.sipp.asterisk_port

    @property
    def ami(self) -> AmiClient:
        assert self.serve.service is not None
        return self.serve.service.ami

    def presence(self) -> dict[str, str]:
        return {k: v.value for k, v in self.context.live.presence().items()}

    def channels(self) -> str:
        return self.asterisk.instance.rx("core show channels concise")


@pytest.fixture(scope="module")
def outage(
    tmp_path_factory: pytest.TempPathFactory,
    redis_server: ManagedRedis,
    seeded_database: Path,
    asterisk_install: AsteriskInstall,
) -> Iterator[Outage]:
    workdir = tmp_path_factory.mktemp("ami-outage")
    database = workdir / "burgernet.db"
    shutil.copyfile(seeded_database, database)
    answering_port = port_block()
    # c-mn-1 registers (and unregisters) itself; c-mn-2 is a fixed contact that answers.
    plan = AsteriskPlan(
        (centralist("c-mn-1"), centralist("c-mn-2", port=answering_port)),
        "MN",
    )
    base = asterisk_settings(workdir / "data", asterisk_install, centralist_networks=["127.0.0.1/32"])
    real = base.model_copy(
        update={
            "database": base.database.model_copy(update={"url": f"sqlite:///{database}"}),
            "redis": base.redis.model_copy(
                update={"url": redis_server.url, "key_prefix": f"ami-{uuid.uuid4().hex[:6]}:"}
            ),
        }
    )
    asterisk = prepare(real, plan, log=lambda _line: None)
    asterisk.instance.start()
    relay = AmiCut(real.asterisk.ami_port).start()
    settings = real.model_copy(update={"asterisk": real.asterisk.model_copy(update={"ami_port": relay.port})})
    context = Context(settings)
    serve = ServiceThread(settings)
    sipp = Sipp(real.asterisk.sip_port)
    sipp.phone("c-mn-2", answering_port, port_block(), "answer", ring_ms=200)
    try:
        serve.start()
        assert serve.service is not None
        serve.service.ami.min_backoff, serve.service.ami.max_backoff = 0.2, 1.0
        yield Outage(settings, context, asterisk, relay, serve, sipp, workdir)
    finally:
        sipp.cleanup()
        serve.stop()
        relay.stop()
        asterisk.instance.remove()
        context.close()


def test_presence_and_calls_heal_after_the_ami_connection_comes_back(outage: Outage) -> None:
    assert outage.serve.service is not None
    tracker = outage.serve.service.tracker
    live = outage.context.live
    prefix = outage.settings.redis.key_prefix
    outage.register("c-mn-1", 120)
    wait_for(lambda: outage.presence().get("c-mn-1") == "available", 15, "c-mn-1 available")
    # The seeded database has centralists this Asterisk does not: the first resync removed them.
    assert set(outage.presence()) <= {"c-mn-1", "c-mn-2", "trunk"}

    # A participant calls about the action; c-mn-2 answers; then the AMI connection goes.
    number = "+31612340001"
    with session_scope(outage.context.sessions) as session:
        session.add(
            Participant(
                phone_e164=number, postcode="3511AB", lon=SPOT[0], lat=SPOT[1], created_at=datetime.now(UTC)
            )
        )
    view = outage.context.actions.create(
        action_type="missing_person",
        title="Vermist, AMI-storing",
        region_code="MN",
        area=AreaSpec(AreaKind.CIRCLE, centre=SPOT, radius_m=2000),
        team=["c-mn-2"],
        actor="test",
    )
    outage.context.actions.start(view.id, actor="test", broadcast=False)
    calls = CallLog(outage.context.sessions)
    call = threading.Thread(
        target=outage.sipp.call,
        args=("0" + number[3:], outage.settings.asterisk.free_number),
        kwargs={"local_port": port_block(), "media_port": port_block(), "hold_ms": 5000},
    )
    call.start()

    def answered_call() -> str | None:
        for item in calls.for_action(view.id):
            if item.answered_at is not None:
                return item.unique_id
        return None

    wait_for(lambda: answered_call() is not None, 20, "the call answered by c-mn-2")
    unique_id = answered_call()
    assert unique_id is not None
    # A call the log still holds open although Asterisk never had it (its Hangup lost long ago).
    calls.open_call("bn-test-gone-1", caller_number="+31612340002")
    resyncs_before = tracker.resyncs

    outage.relay.cut()
    wait_for(lambda: not outage.ami.connected, 10, "serve sees the AMI connection gone")
    wait_for(
        lambda: (
            (b := health.read_beat(live.client, prefix, health.SERVE)) is not None
            and b.details.get("ami") == "disconnected"
        ),
        10,
        "serve's heartbeat says AMI disconnected",
    )
    outage.register("c-mn-1", 0)  # the phone signs off: Asterisk tells nobody
    live.set_presence("c-gone-1", Presence.AVAILABLE)  # an endpoint deleted meanwhile
    call.join(30)  # the caller hung up
    wait_for(lambda: unique_id not in outage.channels(), 15, "the call's channels gone in Asterisk")
    # Nothing heard: presence and the call log still show the old world.
    assert outage.presence()["c-mn-1"] == "available"
    assert calls.get(unique_id).ended_at is None  # type: ignore[union-attr]

    outage.relay.restore()
    wait_for(lambda: tracker.resyncs > resyncs_before, 30, "a resync after the reconnection")
    presence = outage.presence()
    assert presence["c-mn-1"] == "offline"  # read from Asterisk: unregistered
    assert presence["c-mn-2"] == "available"  # a fixed contact, idle again
    assert "c-gone-1" not in presence  # Asterisk does not know it
    healed = calls.get(unique_id)
    assert healed is not None and healed.ended_at is not None
    assert healed.outcome == "connected"  # what was observed stays
    gone = calls.get("bn-test-gone-1")
    assert gone is not None and gone.ended_at is not None and gone.outcome == OUTCOME_UNOBSERVED
    with session_scope(outage.context.sessions) as session:
        audited = session.scalars(
            select(AuditEvent.detail).where(AuditEvent.entity == "call", AuditEvent.actor == "ami-resync")
        ).all()
    assert any(unique_id in (detail or "") for detail in audited)
    wait_for(
        lambda: (
            (b := health.read_beat(live.client, prefix, health.SERVE)) is not None
            and b.details.get("ami") == "connected"
        ),
        10,
        "serve's heartbeat says AMI connected again",
    )


def test_a_trunk_channel_whose_hang_up_was_missed_is_released(outage: Outage) -> None:
    settings = outage.settings.model_copy(
        update={"broadcast": outage.settings.broadcast.model_copy(update={"voice_ring_seconds": 8})}
    )
    a = settings.asterisk
    loop = LoopThread()
    # The far end of the trunk answers each alert call and hangs up 3 s later, twice.
    outage.sipp.phone("trunk", a.trunk_port, port_block(), "answer-hangup-3000", ring_ms=200, calls=2)

    async def make() -> AsteriskVoiceSender:
        client = aioredis.Redis.from_url(settings.redis.url)
        slots = SharedSlots(client, f"{settings.redis.key_prefix}slots:test-trunk", 1, lease_seconds=60)
        rate = SharedRate(client, f"{settings.redis.key_prefix}rate:test-trunk", 50)
        ami = AmiClient(a.ami_host, a.ami_port, a.ami_username, a.ami_secret, min_backoff=0.2, max_backoff=1)
        sender = AsteriskVoiceSender(settings, ami, slots, rate, lambda _job, _message: "beep")
        await ami.connect(wait=15)
        return sender

    sender = loop.run(make())
    try:

        def job(delivery_id: int) -> DeliveryJob:
            return DeliveryJob(
                delivery_id, 1, 1, None, "alert", Channel.VOICE, 1, 1, "+31612340009", None, "nl",
                "test", "missing_person", "Test", "", "", "", "Midden-Nederland", None, "sending",
            )  # fmt: skip

        message = Message(subject="", body="Test")
        permit = loop.run(sender.acquire())
        first = loop.run(sender.send(job(900_001), message, permit))
        assert first.status == "answered", first
        assert loop.run(sender.slots.in_use()) == 1

        outage.relay.cut()  # the Hangup of this call will be lost
        wait_for(lambda: str(first.provider_ref) not in outage.channels(), 20, "the alert call hung up")
        time.sleep(0.5)
        assert loop.run(sender.slots.in_use()) == 1  # still held: nobody told the sender
        assert loop.run(sender.slots.try_acquire()) is None  # the trunk (1 channel) looks full

        outage.relay.restore()
        wait_for(lambda: loop.run(sender.slots.in_use()) == 0, 30, "the lease released after reconnect")
        assert sender.leases_reconciled == 1

        # The channel is usable again: a second alert call goes through it.
        permit = loop.run(sender.acquire(), timeout=10)
        second = loop.run(sender.send(job(900_002), message, permit))
        assert second.status == "answered", second
        wait_for(lambda: loop.run(sender.slots.in_use()) == 0, 20, "released on the observed hang-up")
        assert sender.leases_reconciled == 1  # this time the Hangup event did it
        result = outage.sipp.phone_result("trunk", timeout_s=30)
        assert result.successful == 2, result.output
    finally:
        loop.run(cast(Any, sender).close())
        loop.stop()
