"""The scheduled jobs every ``burgernet worker`` carries: retention and the facts refresh.

APScheduler (a background scheduler: its own threads, never the worker's event loop) fires

* **retention** on ``retention.schedule``, a crontab line in Europe/Amsterdam time (daily at
  03:30 by default): :meth:`burgernet.retention.Retention.run`;
* **facts** every ``retention.facts_refresh_seconds`` (a minute by default):
  :meth:`burgernet.facts.ActionFacts.refresh_open`, the catch-up for a moment whose refresh
  was missed (a worker that died between a broadcast's end and its refresh);
* **approvals** every minute: requests to start an action past ``actions.approval_minutes``
  are marked expired (:meth:`burgernet.approvals.ApprovalService.expire_stale`; reading them
  does the same, this keeps the audit log's time of expiry close to the real one).

Several workers may run on several machines: each job takes a Redis lock first (redis-py's
``Lock``, non-blocking), so one worker runs it and the others skip that turn. A lock outlives
its holder by at most its timeout. What a run did is left in Redis (``<prefix>housekeeping:
<job>``: when, which worker, the counts) for the panel and for anyone asking.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import redis
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from burgernet.approvals import ApprovalService
from burgernet.db import session_scope
from burgernet.push_subscriptions import expire_idle
from burgernet.redis_clients import redis_client
from burgernet.retention import Retention
from burgernet.services import Services

log = logging.getLogger(__name__)
# APScheduler logs every run at INFO (each minute's facts refresh): only its warnings matter.
logging.getLogger("apscheduler").setLevel(logging.WARNING)

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
# How long a job's lock can outlive a worker that died holding it.
RETENTION_LOCK_SECONDS = 3600
RETENTION_JOB, FACTS_JOB, APPROVALS_JOB = "retention", "facts", "approvals"
APPROVALS_SWEEP_SECONDS = 60


def schedule_trigger(line: str) -> CronTrigger:
    """A crontab line in Amsterdam time: five fields, or six with seconds first."""
    fields = line.split()
    if len(fields) == 5:
        return CronTrigger.from_crontab(line, timezone=AMSTERDAM)
    if len(fields) == 6:
        second, minute, hour, day, month, day_of_week = fields
        return CronTrigger(
            second=second,
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=day_of_week,
            timezone=AMSTERDAM,
        )
    raise ValueError(f"schedule {line!r}: a crontab line of 5 fields (or 6, seconds first)")


class Housekeeping:
    def __init__(self, context: Services, *, name: str | None = None) -> None:
        self.context = context
        self.settings = context.settings
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        # Through Sentinel when it is configured, like every other client (its locks follow the primary).
        self.redis = redis_client(self.settings.redis, timeout=5)
        self.prefix = f"{self.settings.redis.key_prefix}housekeeping:"
        self.retention = Retention(context.sessions, self.settings, context.facts)
        self.scheduler = BackgroundScheduler(
            timezone=AMSTERDAM,
            # A turn missed (the worker was down at 03:30) runs once when it can, not many times.
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 6 * 3600},
        )
        self.approvals = ApprovalService(
            context.sessions, context.actions, approval_minutes=self.settings.actions.approval_minutes
        )
        # Runs by this process, for tests.
        self.runs: dict[str, int] = {RETENTION_JOB: 0, FACTS_JOB: 0, APPROVALS_JOB: 0}
        self._ran = threading.Condition()

    def start(self) -> None:
        r = self.settings.retention
        self.scheduler.add_job(
            self._guarded,
            schedule_trigger(r.schedule),
            args=(RETENTION_JOB, RETENTION_LOCK_SECONDS, self._run_retention),
            id=RETENTION_JOB,
        )
        self.scheduler.add_job(
            self._guarded,
            IntervalTrigger(seconds=r.facts_refresh_seconds, timezone=AMSTERDAM),
            args=(FACTS_JOB, max(1, r.facts_refresh_seconds), self._run_facts),
            id=FACTS_JOB,
            next_run_time=datetime.now(UTC),  # once at start, then every interval
        )
        self.scheduler.add_job(
            self._guarded,
            IntervalTrigger(seconds=APPROVALS_SWEEP_SECONDS, timezone=AMSTERDAM),
            args=(APPROVALS_JOB, APPROVALS_SWEEP_SECONDS, self._run_approvals),
            id=APPROVALS_JOB,
        )
        self.scheduler.start()
        log.info(
            "housekeeping: retention on %r (Europe/Amsterdam), facts every %s s",
            r.schedule,
            r.facts_refresh_seconds,
        )

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self.redis.close()

    def next_run(self, job: str) -> datetime | None:
        found = self.scheduler.get_job(job)
        return found.next_run_time if found is not None else None

    def wait_for_run(self, job: str, count: int, timeout: float) -> bool:
        """Until this process has run ``job`` ``count`` times (tests and ``--once``)."""
        deadline = time.monotonic() + timeout
        with self._ran:
            while self.runs[job] < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._ran.wait(left)
        return True

    def last_run(self, job: str) -> dict[str, Any] | None:
        raw = self.redis.get(self.prefix + job)
        return json.loads(raw) if raw else None

    # -- the jobs ------------------------------------------------------------------------------
    def _guarded(self, job: str, lock_seconds: int, work: Callable[[], dict[str, Any]]) -> None:
        """Run ``work`` if this worker gets the job's lock; log, never raise (the next turn retries)."""
        try:
            lock = self.redis.lock(self.prefix + job + ":lock", timeout=lock_seconds, blocking=False)
            if not lock.acquire():
                log.debug("housekeeping %s: another worker has it", job)
                return
        except redis.RedisError as exc:
            log.warning("housekeeping %s skipped: Redis unavailable (%s)", job, exc)
            return
        started = time.monotonic()
        try:
            summary = work()
            record = {
                "at": datetime.now(UTC).isoformat(),
                "by": self.name,
                "seconds": round(time.monotonic() - started, 3),
                **summary,
            }
            # The job ran; a Redis hiccup only loses its note for the panel.
            with contextlib.suppress(redis.RedisError):
                self.redis.set(self.prefix + job, json.dumps(record))
        except Exception:
            log.exception("housekeeping %s failed; the next turn tries again", job)
        finally:
            with contextlib.suppress(redis.RedisError):  # else it expires by itself
                lock.release()
            with self._ran:
                self.runs[job] += 1
                self._ran.notify_all()

    def _run_retention(self) -> dict[str, Any]:
        report = self.retention.run()
        counts: dict[str, Any] = {k.kind: k.counts for k in report.kinds}
        failed = {k.kind: k.failed for k in report.kinds if k.failed}
        # Push subscriptions that keep failing or went unused (push.max_failures,
        # push.idle_expiry_days); a 404/410 from the push service deletes one at once.
        try:
            with session_scope(self.context.sessions) as session:
                counts["push_subscriptions"] = {"expired": expire_idle(session, self.settings.push)}
        except Exception as exc:  # the next run tries again
            log.exception("expiring push subscriptions failed")
            failed["push_subscriptions"] = [f"{type(exc).__name__}: {exc}"]
        log.info("retention: %s", ", ".join(f"{k.kind} {k.removed}" for k in report.kinds))
        return {"removed": counts, **({"failed": failed} if failed else {})}

    def _run_facts(self) -> dict[str, Any]:
        return {"actions": self.context.facts.refresh_open()}

    def _run_approvals(self) -> dict[str, Any]:
        return {"expired": self.approvals.expire_stale()}
