"""Broadcast dispatch: how fast deliveries are enqueued, and whether SMS keeps the provider's rate.

1. **Enqueue** — N participants in an area (300,000; --quick 50,000) on SQLite: the fan-out a
   worker does for a new alert (``store.add_deliveries``: one delivery row per person, Core
   executemany; then ``DeliveryQueue.enqueue``: pipelined XADD onto the Redis stream), beside a
   baseline in the same run that does it the obvious way (an ORM object and an un-pipelined
   XADD per delivery) on a sample. Target: ≥ 20,000 deliveries enqueued per second.
2. **SMS end to end** — M messages (2,000; --quick 600) through two ``burgernet worker``
   processes and the official Twilio client to the local Twilio-speaking server, with the shared
   limit set to R per second (200; --quick 100). Reports the achieved rate next to R: the
   workers together should reach, and never exceed, the configured rate.
3. **Voice** — C alert calls (120; --quick 40) through the real Asterisk to a SIPp trunk that
   answers and hangs up after 3 s, with 10 trunk channels allowed for alerts: how many are in
   use while the broadcast runs (never more than allowed; ideally all of them), next to the
   shortest possible time with every allowed channel busy.

Prints one JSON object last.

    python benchmarks/dispatch.py [--quick] [--skip-sms] [--skip-voice]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import numpy as np
import redis
from sqlalchemy import func, select, update

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from broadcasting import store
from broadcasting.queue import DeliveryQueue, QueueKeys
from burgernet import db
from burgernet.actions import AreaSpec
from burgernet.db import session_scope
from burgernet.domain import AreaKind, Channel
from burgernet.models import Action, Broadcast, Delivery, Participant
from burgernet.ports import BroadcastKind
from burgernet.secrets import create_missing_secrets
from burgernet.settings import Settings, as_environment, load_settings
from composition import demo
from composition.context import Context
from composition.redis_server import ManagedRedis
from testbed.approvals import start_approved
from testbed.ports import port_block

BASELINE_SAMPLE = 5_000


def seed(settings: Settings, count: int) -> Context:
    db.upgrade(settings.database_url)
    context = Context(settings)
    rng = np.random.default_rng(5)
    with session_scope(context.sessions) as session:
        demo.seed_regions(session, rng)
    with session_scope(context.sessions) as session:
        demo.seed_participants(session, count, rng, chunk=50_000)
    return context


def new_action(context: Context, national: bool) -> int:
    view = context.actions.create(
        action_type="amber_alert",
        title="Benchmark",
        description="Benchmark alert",
        region_code="MN",
        area=AreaSpec(AreaKind.NATIONAL) if national else AreaSpec(AreaKind.CIRCLE, (5.12, 52.09), 100),
        actor="bench",
    )
    # Started without the automatic alert: the benchmark times the fan-out itself. An AMBER
    # Alert starts only through a second person's approval (burgernet.approvals).
    start_approved(context, view.id, requester="bench", source="bench", broadcast=False)
    return view.id


def request_alert(context: Context, action_id: int) -> int:
    """The alert of an action that was started without one, as starting it would have asked."""
    with session_scope(context.sessions) as session:
        action = session.get(Action, action_id)
        assert action is not None
        broadcast_id = context.broadcasts.request(session, action, BroadcastKind.ALERT, "Benchmark alert")
    context.broadcasts.nudge(broadcast_id)
    return broadcast_id


def enqueue_fast(
    context: Context, queue: DeliveryQueue, action_id: int, ids: np.ndarray
) -> tuple[int, float]:
    started = time.perf_counter()
    with session_scope(context.sessions) as session:
        action = session.get(Action, action_id)
        assert action is not None
        broadcast = store.new_broadcast(session, action=action, kind="alert", message="bench")
        fan = store.add_deliveries(session, broadcast, {Channel.SMS: ids})
        priority = broadcast.priority
    count = sum(queue.enqueue(channel, priority, queued) for channel, queued in fan.queued.items())
    return count, time.perf_counter() - started


def enqueue_naive(
    context: Context, client: redis.Redis, action_id: int, ids: np.ndarray
) -> tuple[int, float]:
    """The baseline: one ORM object, one flush and one XADD round trip per delivery."""
    started = time.perf_counter()
    now = datetime.now(UTC)
    with session_scope(context.sessions) as session:
        action = session.get(Action, action_id)
        assert action is not None
        broadcast = store.new_broadcast(session, action=action, kind="alert", message="naive")
        for participant_id in ids:
            delivery = Delivery(
                broadcast_id=broadcast.id,
                participant_id=int(participant_id),
                channel="sms",
                status="queued",
                attempts=0,
                updated_at=now,
            )
            session.add(delivery)
            session.flush()
            client.xadd("bench:naive", {"d": str(delivery.id)})
    return len(ids), time.perf_counter() - started


def measure_enqueue(context: Context, redis_url: str, prefix: str) -> dict[str, object]:
    client = redis.Redis.from_url(redis_url)
    queue = DeliveryQueue(client, QueueKeys(prefix))
    queue.ensure_groups()
    with session_scope(context.sessions) as session:
        ids = np.array(session.scalars(select(Participant.id).order_by(Participant.id)).all())
    fast_action = new_action(context, national=True)
    count, seconds = enqueue_fast(context, queue, fast_action, ids)
    naive_action = new_action(context, national=True)
    naive_count, naive_seconds = enqueue_naive(context, client, naive_action, ids[:BASELINE_SAMPLE])
    with session_scope(context.sessions) as session:
        stored = session.scalar(
            select(func.count())
            .select_from(Delivery)
            .join(Broadcast)
            .where(Broadcast.action_id == fast_action)
        )
    streamed = int(client.xlen(queue.keys.stream(Channel.SMS, 0)))
    client.close()
    return {
        "deliveries": count,
        "stored": stored,
        "on_stream": streamed,
        "seconds": round(seconds, 3),
        "per_second": round(count / seconds),
        "baseline_sample": naive_count,
        "baseline_per_second": round(naive_count / naive_seconds),
        "speedup": round((count / seconds) / (naive_count / naive_seconds), 1),
        "target_per_second": 20_000,
        "target_met": count / seconds >= 20_000,
    }


def measure_sms(workdir: Path, redis_url: str, messages: int, rate: float) -> dict[str, object]:
    from testbed.fake_twilio import FakeTwilio

    twilio = FakeTwilio().start()
    create_missing_secrets(workdir / "sms")  # the workers refuse to start without strong secrets
    settings = load_settings(
        data_dir=workdir / "sms",
        log_level="WARNING",
        database={"url": f"sqlite:///{workdir / 'sms.db'}"},
        redis={"url": redis_url, "key_prefix": "bench-sms:"},
        broadcast={"sms_per_second": rate, "worker_concurrency": 50},
        twilio={
            "api_base_url": twilio.base_url,
            "account_sid": twilio.account_sid,
            "auth_token": twilio.auth_token,
        },
    )
    env = {**os.environ, **as_environment(settings)}
    context = seed(settings, messages)
    with session_scope(context.sessions) as session:
        session.execute(update(Participant).values(channel_voice=False, channel_email=False))
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "composition.cli", "worker", "--channels", "sms"],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    try:
        time.sleep(2)  # both workers up before the clock starts
        action_id = new_action(context, national=True)
        started = time.perf_counter()
        broadcast_id = request_alert(context, action_id)
        deadline = time.monotonic() + messages / rate * 3 + 60
        while time.monotonic() < deadline:
            status = context.broadcasts.status(broadcast_id)
            if status is not None and status.counts.status == "done":
                break
            time.sleep(0.25)
        elapsed = time.perf_counter() - started
        status = context.broadcasts.status(broadcast_id)
        assert status is not None
        data = status.as_dict()
        sent_times = sorted(twilio.message_times())
        # The limiter lets two go back to back after a pause (broadcasting.channels.base.burst_for).
        after_burst = sent_times[1:]
        steady = (len(after_burst) - 1) / (after_burst[-1] - after_burst[0]) if len(after_burst) > 1 else 0.0
        busiest_second = max(
            (sum(1 for t in sent_times if start <= t < start + 1.0) for start in sent_times), default=0
        )
        return {
            "participants": messages,
            "sms_deliveries": data["total"],
            "configured_per_second": rate,
            "received_by_provider": len(sent_times),
            "distinct_recipients": len(set(twilio.recipients())),
            "by_status": data["by_status"],
            "wall_seconds": round(elapsed, 2),
            "provider_rate_per_second": round(steady, 1),
            "most_in_any_second": busiest_second,
            "share_of_configured": round(steady / rate, 3),
            "seconds_to": data["seconds_to"],
        }
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(20)
        twilio.stop()
        context.close()


def measure_voice(
    workdir: Path, redis_url: str, calls: int, channels: int, hold_ms: int
) -> dict[str, object]:
    """Alert calls through the real Asterisk to a SIPp trunk that answers and hangs up after
    ``hold_ms``: how full the allowed trunk channels stay while the broadcast runs."""
    import asyncio
    import statistics
    import threading

    import redis.asyncio as aioredis

    from asterisk_conf.instance import prepare
    from asterisk_conf.plan import plan_from_database
    from broadcasting.channels.registry import build_senders
    from broadcasting.channels.voice_asterisk import AsteriskVoiceSender
    from broadcasting.worker import BroadcastWorker
    from recordings.catalogue import build_catalogue
    from testbed.sipp import Sipp

    create_missing_secrets(workdir / "voice")
    settings = load_settings(
        data_dir=workdir / "voice",
        log_level="WARNING",
        database={"url": f"sqlite:///{workdir / 'voice.db'}"},
        redis={"url": redis_url, "key_prefix": "bench-voice:"},
        asterisk={
            "sip_port": port_block(),
            "ami_port": port_block(),
            "agi_port": port_block(),
            "trunk_port": port_block(),
            "rtp_start": 20000,
            "rtp_end": 40000,
            "instance_name": f"bench-voice-{port_block()}",
            "trunk_channels": channels + 2,
        },
        broadcast={
            "inbound_reserved_channels": 2,
            "voice_calls_per_second": 50.0,
            "voice_ring_seconds": 10,
            "worker_concurrency": channels * 2,
        },
    )
    context = seed(settings, 0)
    now = datetime.now(UTC)
    with session_scope(context.sessions) as session:
        session.add_all(
            Participant(
                phone_e164=f"+3164{n:07d}",
                postcode="3511AB",
                lat=52.09,
                lon=5.12,
                channel_voice=True,
                channel_sms=False,
                created_at=now,
            )
            for n in range(calls)
        )
        plan = plan_from_database(session, settings)
    build_catalogue(settings=settings, langs=["nl"])
    asterisk = prepare(settings, plan, log=lambda line: print(line, file=sys.stderr))
    asterisk.instance.start()
    sipp = Sipp(settings.asterisk.sip_port)
    sipp.phone("trunk", settings.asterisk.trunk_port, port_block(), f"answer-hangup-{hold_ms}", ring_ms=0)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start_worker() -> BroadcastWorker:
        client = aioredis.Redis.from_url(redis_url)
        senders = await build_senders(settings, {Channel.VOICE}, client)
        await senders[Channel.VOICE].ami.wait_connected(15)  # type: ignore[attr-defined]
        worker = BroadcastWorker(context, senders)
        await worker.start()
        return worker

    worker = asyncio.run_coroutine_threadsafe(start_worker(), loop).result(60)
    slots = cast(AsteriskVoiceSender, worker.senders[Channel.VOICE]).slots
    try:
        view = context.actions.create(
            action_type="missing_child",
            title="Voice benchmark",
            description="Benchmark",
            region_code="MN",
            area=AreaSpec(AreaKind.CIRCLE, (5.12, 52.09), 500),
            actor="bench",
        )
        started = time.perf_counter()
        context.actions.start(view.id, actor="bench")
        broadcast_id = context.broadcasts.of_action(view.id)[0].counts.broadcast_id
        samples: list[int] = []
        first_call_at: float | None = None
        deadline = time.monotonic() + calls * hold_ms / 1000 + 120
        while time.monotonic() < deadline:
            in_use = asyncio.run_coroutine_threadsafe(slots.in_use(), loop).result(10)
            if in_use and first_call_at is None:
                first_call_at = time.perf_counter()
            if first_call_at is not None:
                samples.append(in_use)
            status = context.broadcasts.status(broadcast_id)
            if status is not None and status.counts.status == "done" and in_use == 0:
                break
            time.sleep(0.1)
        elapsed = time.perf_counter() - started
        status = context.broadcasts.status(broadcast_id)
        assert status is not None
        data = status.as_dict()
        busy = [n for n in samples if n > 0]
        # Calls last ~hold_ms plus set-up: with every allowed channel busy all the time the
        # broadcast cannot end sooner than this.
        ideal = -(-calls // channels) * hold_ms / 1000
        return {
            "calls": calls,
            "allowed_channels": channels,
            "hold_seconds": hold_ms / 1000,
            "by_status": data["by_status"],
            "wall_seconds": round(elapsed, 1),
            "ideal_seconds": ideal,
            "max_channels_in_use": max(samples) if samples else 0,
            "mean_channels_in_use_while_calling": round(statistics.mean(busy), 2) if busy else 0,
            "occupancy": round(statistics.mean(busy) / channels, 3) if busy else 0,
            "seconds_to": data["seconds_to"],
        }
    finally:
        asyncio.run_coroutine_threadsafe(worker.stop(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        sipp.cleanup()
        asterisk.instance.remove()
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--participants", type=int)
    parser.add_argument("--skip-sms", action="store_true")
    parser.add_argument("--skip-voice", action="store_true")
    args = parser.parse_args()
    count = args.participants or (50_000 if args.quick else 300_000)
    workdir = Path(tempfile.mkdtemp(prefix="bn-bench-dispatch-"))
    redis_server = ManagedRedis(port_block(), workdir / "redis")
    redis_server.start()
    result: dict[str, object] = {"benchmark": "dispatch"}
    try:
        create_missing_secrets(workdir)
        settings = load_settings(
            data_dir=workdir,
            database={"url": f"sqlite:///{workdir / 'bench.db'}"},
            redis={"url": redis_server.url, "key_prefix": "bench:"},
        )
        started = time.perf_counter()
        context = seed(settings, count)
        print(f"seeded {count} participants in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        result["enqueue"] = measure_enqueue(context, redis_server.url, "bench:")
        context.close()
        if not args.skip_sms:
            result["sms"] = measure_sms(
                workdir, redis_server.url, 600 if args.quick else 2_000, 100.0 if args.quick else 200.0
            )
        if not args.skip_voice:
            result["voice"] = measure_voice(workdir, redis_server.url, 40 if args.quick else 120, 10, 3000)
        print(json.dumps(result))
    finally:
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
