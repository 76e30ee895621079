"""Retention and the facts refresh run by themselves: a real ``burgernet worker`` process, its
schedule set to every second, purges an expired log file and brings an active action's figures
up to date without anyone calling either, and waits while another worker holds the job's lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import redis
from sqlalchemy import delete, func, select

from burgernet.actions import AreaSpec
from burgernet.db import session_scope
from burgernet.domain import AreaKind
from burgernet.housekeeping import schedule_trigger
from burgernet.models import ActionFact, AuditEvent
from burgernet.settings import Settings, as_environment
from composition.context import Context
from testbed.waiting import wait_for


def purges(context: Context, kind: str) -> list[dict[str, object]]:
    with session_scope(context.sessions) as session:
        return [
            json.loads(detail or "{}")
            for detail in session.scalars(
                select(AuditEvent.detail).where(
                    AuditEvent.entity == "retention", AuditEvent.entity_id == kind
                )
            )
        ]


def test_a_six_field_schedule_counts_seconds_in_amsterdam_time() -> None:
    trigger = schedule_trigger("30 3 * * *")
    after = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    # 03:30 in Amsterdam is 02:30 UTC in winter.
    assert trigger.get_next_fire_time(None, after) == datetime(2026, 12, 3, 2, 30, tzinfo=UTC)
    every_two = schedule_trigger("*/2 * * * * *")
    fire = every_two.get_next_fire_time(None, after)
    assert fire is not None and fire - after <= timedelta(seconds=2)


def test_the_worker_runs_retention_and_the_facts_refresh_by_itself(
    bn_settings: Settings, bn_context: Context
) -> None:
    logs = bn_settings.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    old_log, fresh_log = logs / "serve.log.1", logs / "serve.log"
    old_log.write_text("+31612340000 called\n")
    fresh_log.write_text("today\n")
    expired = (datetime.now(UTC) - timedelta(days=bn_settings.retention.logs_days + 1)).timestamp()
    os.utime(old_log, (expired, expired))

    view = bn_context.actions.create(
        action_type="vehicle",
        title="Witte bestelbus",
        region_code="MN",
        area=AreaSpec(AreaKind.POSTCODES, postcodes=("3511",)),
        actor="t",
    )
    bn_context.actions.start(view.id, actor="t", broadcast=False)
    with session_scope(bn_context.sessions) as session:  # as if its refresh at the start was missed
        session.execute(delete(ActionFact).where(ActionFact.action_id == view.id))

    # Another worker holds the retention job: this one must wait its turn.
    client = redis.Redis.from_url(bn_settings.redis.url)
    held = client.lock(f"{bn_settings.redis.key_prefix}housekeeping:retention:lock", timeout=60)
    assert held.acquire(blocking=False)

    env = {
        **os.environ,
        **as_environment(bn_settings),
        "BURGERNET_RETENTION__SCHEDULE": "*/1 * * * * *",
        "BURGERNET_RETENTION__FACTS_REFRESH_SECONDS": "1",
    }
    output = (bn_settings.data_dir / "worker.out").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "composition.cli", "worker", "--channels", "email"],
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    try:

        def refreshed() -> bool:
            with session_scope(bn_context.sessions) as session:
                return session.get(ActionFact, view.id) is not None

        wait_for(refreshed, 30, "the periodic facts refresh")
        time.sleep(2.5)  # two retention turns come and go while the lock is held elsewhere
        assert purges(bn_context, "logs") == [] and old_log.exists()

        held.release()
        wait_for(lambda: not old_log.exists(), 15, "the scheduled purge of the old log")
        assert fresh_log.exists()
        assert purges(bn_context, "logs")[0]["files"] == 1
        note = json.loads(client.get(f"{bn_settings.redis.key_prefix}housekeeping:retention") or b"{}")
        assert note["removed"]["logs"] == {"files": 1}
        assert worker.poll() is None  # still working
    finally:
        worker.terminate()
        worker.wait(20)
        output.close()
        client.close()
    with session_scope(bn_context.sessions) as session:
        fact = session.get(ActionFact, view.id)
        assert fact is not None and fact.action_type == "vehicle" and fact.started_at is not None
        runs = session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.entity == "retention"))
        assert (runs or 0) >= 7  # one audited purge per kind and run, counts only
