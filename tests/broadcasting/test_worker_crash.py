"""A worker killed mid-broadcast (SIGKILL, no goodbye) loses nothing and sends nothing twice.

Real ``burgernet worker`` processes, the official Twilio client against the local
Twilio-speaking server, real Redis and SQLite. The first worker is killed while it is sending;
a second one takes over its unacknowledged entries once they are idle and reconciles the ones
it left in doubt with Twilio (was this text sent to this number?) instead of sending again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import func, select

from burgernet.db import session_scope
from burgernet.models import Delivery
from burgernet.settings import Settings, as_environment
from testbed.fake_twilio import FakeTwilio
from tests.broadcasting.conftest import Crowd

PEOPLE = 120


@pytest.fixture
def bn_settings(bn_settings: Settings, fake_twilio: FakeTwilio) -> Settings:
    return bn_settings.model_copy(
        update={
            # Nobody listens at the callback address: delivery receipts are not the point here.
            "twilio": fake_twilio.settings(bn_settings.twilio, callback_base_url="http://127.0.0.1:9"),
            "broadcast": bn_settings.broadcast.model_copy(
                update={"sms_per_second": 40.0, "claim_idle_seconds": 2.0, "worker_concurrency": 10}
            ),
        }
    )


@pytest.fixture
def spawn_worker(bn_settings: Settings) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    env = {**os.environ, **as_environment(bn_settings)}
    processes: list[subprocess.Popen[bytes]] = []
    logs = bn_settings.data_dir / "worker-logs"
    logs.mkdir(parents=True, exist_ok=True)

    def spawn() -> subprocess.Popen[bytes]:
        log = (logs / f"worker-{len(processes)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "composition.cli", "worker", "--channels", "sms"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        processes.append(process)
        return process

    yield spawn
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


def test_killing_a_worker_mid_broadcast_neither_loses_nor_doubles_a_message(
    crowd: Crowd, fake_twilio: FakeTwilio, spawn_worker: Callable[[], subprocess.Popen[bytes]]
) -> None:
    crowd.add(PEOPLE, sms=True)
    first = spawn_worker()
    # Some answers get lost on the way back, so the dead worker surely leaves deliveries in
    # doubt: Twilio took them, the worker never recorded it.
    fake_twilio.lose_next_answers(3)

    action_id = crowd.action()
    (alert_id,) = crowd.broadcasts(action_id, "alert")
    fake_twilio.wait_for(lambda: len(fake_twilio.messages) >= 30, timeout=30, description="30 messages")
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    killed_at = len(fake_twilio.messages)
    assert killed_at < PEOPLE  # it really died mid-broadcast

    with session_scope(crowd.context.sessions) as session:
        left_sending = session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.broadcast_id == alert_id, Delivery.status == "sending")
        )
    second = spawn_worker()
    statuses = crowd.wait_done(alert_id, timeout=60)

    counts = Counter(message.to for message in fake_twilio.messages)
    assert len(counts) == PEOPLE, f"lost: {PEOPLE - len(counts)}"  # nobody missed
    assert max(counts.values()) == 1, [n for n, c in counts.items() if c > 1]  # nobody twice
    assert statuses == {"sent": PEOPLE}
    assert second.poll() is None  # the second worker is alive and well
    assert left_sending is not None and left_sending >= 1  # the kill left work in progress
    time.sleep(0.2)
    assert len(fake_twilio.messages) == PEOPLE  # and nothing trickles in afterwards
