"""What the system status shows, read from the heartbeats and restart records in Redis
(:mod:`burgernet.health`), and the panel's own health for ``/healthz``."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from sqlalchemy import text

from burgernet import health
from burgernet.redis_clients import redis_client
from burgernet.services import Services

# The processes of one installation, in the order a reader thinks of them. Asterisk and Redis
# have no heartbeat of their own: the supervisor (``burgernet run``) reports their state; under
# systemd, serve's AMI connection and the panel's own Redis connection say what we know.
ASTERISK = "asterisk"
REDIS = "redis"
COMPONENTS = (ASTERISK, REDIS, health.SERVE, health.WORKER, health.PANEL, health.SUPERVISOR)
LABELS = {
    ASTERISK: "Asterisk",
    REDIS: "Redis",
    health.SERVE: "FastAGI/AMI (burgernet serve)",
    health.WORKER: "Broadcast worker",
    health.PANEL: "Control panel",
    health.SUPERVISOR: "Supervisor (burgernet run)",
}
# A beat older than this (seconds) counts as missing: several beats in a row did not come.
STALE_AFTER = 10.0
# /healthz gives the database this long (seconds) before it reports it unreachable.
DATABASE_PROBE_SECONDS = 1.0


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    label: str
    state: str  # running | starting | restarting | down | no heartbeat | unknown
    beat_age: float | None  # seconds since its last heartbeat; None: it has none
    pid: int | None
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RestartRow:
    at: datetime
    component: str
    reason: str
    attempt: int
    backoff_s: float


@dataclass(frozen=True)
class SystemStatus:
    redis_reachable: bool
    supervised: bool  # a `burgernet run` supervisor beats (else: systemd or by hand)
    components: list[ComponentStatus]
    restarts: list[RestartRow]


class SystemStatusService:
    def __init__(self, services: Services) -> None:
        self._client = services.live.client
        self._prefix = services.settings.redis.key_prefix

    def status(self, restarts_shown: int = 20) -> SystemStatus:
        try:
            beats = {name: health.read_beat(self._client, self._prefix, name) for name in health.COMPONENTS}
            restarts = health.recent_restarts(self._client, self._prefix, restarts_shown)
        except redis.RedisError:
            unknown = [ComponentStatus(n, LABELS[n], "unknown", None, None) for n in COMPONENTS]
            return SystemStatus(False, False, unknown, [])
        supervisor = beats[health.SUPERVISOR]
        supervised = supervisor is not None and supervisor.age() <= STALE_AFTER
        components = [self._component(name, beats, supervisor if supervised else None) for name in COMPONENTS]
        return SystemStatus(True, supervised, components, [_restart_row(r) for r in restarts])

    def _component(
        self, name: str, beats: dict[str, health.Beat | None], supervisor: health.Beat | None
    ) -> ComponentStatus:
        beat = beats.get(name)
        age = beat.age() if beat is not None else None
        fresh = age is not None and age <= STALE_AFTER
        if name == health.SUPERVISOR:
            state = "running" if fresh else "down"
        elif supervisor is not None and f"child:{name}" in supervisor.details:
            state = supervisor.details[f"child:{name}"]
            if state == "running" and beat is not None and not fresh:
                state = "no heartbeat"
        elif name == REDIS:
            state = "running"  # we just read from it
        elif name == ASTERISK:
            serve = beats.get(health.SERVE)
            connected = (
                serve is not None and serve.age() <= STALE_AFTER and serve.details.get("ami") == "connected"
            )
            state = "running" if connected else "unknown"
        else:
            state = "running" if fresh else ("no heartbeat" if beat is not None else "down")
        pid = (
            beat.pid
            if beat is not None
            else _int(supervisor.details.get(f"pid:{name}") if supervisor else None)
        )
        details = {k: v for k, v in (beat.details.items() if beat and name != health.SUPERVISOR else ())}
        return ComponentStatus(name, LABELS[name], state, age, pid, details)


def _restart_row(record: dict[str, Any]) -> RestartRow:
    return RestartRow(
        at=datetime.fromtimestamp(float(record.get("at", 0)), UTC),
        component=str(record.get("component", "?")),
        reason=str(record.get("reason", "")),
        attempt=int(record.get("attempt", 0)),
        backoff_s=float(record.get("backoff_s", 0)),
    )


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


class PanelHealth:
    """The panel's own health for ``/healthz``: can it reach the database and Redis?

    Both are reported, never failed on: the panel still serves (its pages say what is down),
    and restarting it would not bring a database back. A stalled database costs the caller of
    ``/healthz`` at most :data:`DATABASE_PROBE_SECONDS`, and at most one probe is in flight, so
    a supervisor asking every two seconds cannot pile up threads on a hung connection.
    """

    def __init__(self, services: Services) -> None:
        self._services = services
        self._client = redis_client(services.settings.redis, timeout=0.5)
        self._prefix = services.settings.redis.key_prefix
        self._lock = threading.Lock()
        self._database_probe: threading.Thread | None = None
        self._database_state = "unknown"

    def report(self) -> dict[str, str]:
        database = self._database()
        try:
            # The beat is written while answering a request: it proves the serving path works.
            health.beat(self._client, self._prefix, health.PANEL, {"database": database})
            redis_state = "ok"
        except redis.RedisError:
            redis_state = "unreachable"
        return {"status": "ok", "database": database, "redis": redis_state}

    def _database(self) -> str:
        with self._lock:
            probe = self._database_probe
            if probe is None or not probe.is_alive():
                probe = threading.Thread(target=self._probe_database, name="healthz-db", daemon=True)
                self._database_probe = probe
                probe.start()
        probe.join(DATABASE_PROBE_SECONDS)
        return "unreachable" if probe.is_alive() else self._database_state

    def _probe_database(self) -> None:
        try:
            with self._services.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            self._database_state = "ok"
        except Exception:
            self._database_state = "unreachable"
