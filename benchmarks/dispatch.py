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

Prints one JSON object last.

    python benchmarks/dispatch.py [--quick] [--skip-sms]
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

import numpy as np
import redis
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from broadcasting import store
from broadcasting.queue import DeliveryQueue, QueueKeys
from burgernet import db, demo
from burgernet.actions import AreaSpec
from burgernet.context import Context
from burgernet.db import session_scope
from burgernet.domain import AreaKind, Channel
from burgernet.models import Action, Broadcast, Delivery, Participant
from burgernet.redis_server import ManagedRedis
from burgernet.settings import Settings, load_settings
from tests.support.ports import port_block

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
    # Started without the automatic alert: the benchmark times the fan-out itself.
    context.actions.start(view.id, actor="bench", broadcast=False)
    return view.id


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
    from tests.support.fake_twilio import FakeTwilio

    twilio = FakeTwilio().start()
    prefix = "bench-sms:"
    env = {
        **os.environ,
        "BURGERNET_DATA_DIR": str(workdir / "sms"),
        "BURGERNET_DATABASE__URL": f"sqlite:///{workdir / 'sms.db'}",
        "BURGERNET_REDIS__URL": redis_url,
        "BURGERNET_REDIS__KEY_PREFIX": prefix,
        "BURGERNET_BROADCAST__SMS_PER_SECOND": str(rate),
        "BURGERNET_BROADCAST__WORKER_CONCURRENCY": "50",
        "BURGERNET_TWILIO__API_BASE_URL": twilio.base_url,
        "BURGERNET_TWILIO__ACCOUNT_SID": twilio.account_sid,
        "BURGERNET_TWILIO__AUTH_TOKEN": twilio.auth_token,
        "BURGERNET_LOG_LEVEL": "WARNING",
    }
    settings = load_settings(
        data_dir=workdir / "sms",
        database={"url": env["BURGERNET_DATABASE__URL"]},
        redis={"url": redis_url, "key_prefix": prefix},
    )
    context = seed(settings, messages)
    with session_scope(context.sessions) as session:
        session.execute(Participant.__table__.update().values(channel_voice=False, channel_email=False))
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "burgernet.cli", "worker", "--channels", "sms"],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    try:
        time.sleep(2)  # both workers up before the clock starts
        action_id = new_action(context, national=True)
        started = time.perf_counter()
        (broadcast_id,) = [context.broadcasts.alert(action_id, actor="bench")]
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
        steady = (len(sent_times) - 1) / (sent_times[-1] - sent_times[0]) if len(sent_times) > 1 else 0.0
        return {
            "messages": messages,
            "configured_per_second": rate,
            "received_by_provider": len(sent_times),
            "distinct_recipients": len(set(twilio.recipients())),
            "by_status": data["by_status"],
            "wall_seconds": round(elapsed, 2),
            "provider_rate_per_second": round(steady, 1),
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--participants", type=int)
    parser.add_argument("--skip-sms", action="store_true")
    args = parser.parse_args()
    count = args.participants or (50_000 if args.quick else 300_000)
    workdir = Path(tempfile.mkdtemp(prefix="bn-bench-dispatch-"))
    redis_server = ManagedRedis(port_block(), workdir / "redis")
    redis_server.start()
    result: dict[str, object] = {"benchmark": "dispatch"}
    try:
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
        print(json.dumps(result))
    finally:
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
