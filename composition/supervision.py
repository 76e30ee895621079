"""Keeping ``burgernet run``'s children alive: restarts with back-off, health checks, confirmation.

Each long-running child has a :class:`Keeper`, a thread that watches it and only it: when the
process exits, or fails its health check :attr:`HealthPolicy.failures_to_confirm` times in a
row, the keeper kills what is left of it (``SIGKILL``: a hung or ``SIGSTOP``ped process ignores
``SIGTERM``, and only a dead process closes its listening socket, which is what makes
Asterisk's waiting AGI connections fail over at once), waits a back-off delay and starts it
again. A child that fails its check while it is visibly working (it uses CPU and is not
stopped) is overloaded rather than hung: it gets :attr:`HealthPolicy.busy_patience` before the
kill, because a restart under load drops its work and adds a cold start to the load (a death
spiral: the new process is checked, and killed, before it is up). One child's trouble never
touches another child: a dead ``burgernet serve`` is
replaced while Asterisk keeps running and answering the free number through its failure path.

The checks (:func:`fastagi_probe`, :func:`http_probe`, :class:`AmiPinger`,
:func:`beat_check`) answer ``ok=True`` (healthy), ``ok=False`` (a failure, counted) or
``ok=None`` ("this check says nothing right now", e.g. a heartbeat check while Redis is down),
which neither counts as a failure nor resets the count.

Nothing here knows which child is which: :mod:`composition.runner` wires them up.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import redis

from burgernet import health

log = logging.getLogger(__name__)

# The FastAGI health probe (the contract with ivr/server.py): a request for the script
# ``healthz``, answered from the serving event loop with ``NOOP burgernet-healthy``.
FASTAGI_PROBE_REQUEST = (
    b"agi_network: yes\n"
    b"agi_network_script: healthz\n"
    b"agi_request: agi://127.0.0.1/healthz\n"
    b"agi_uniqueid: probe\n"
    b"agi_channel: probe\n"
    b"\n"
)
FASTAGI_PROBE_ANSWER = "NOOP burgernet-healthy"

# Keeper states, as the supervisor's heartbeat reports them to the panel.
STARTING = "starting"
RUNNING = "running"
RESTARTING = "restarting"
DOWN = "down"
STOPPED = "stopped"

# How often a keeper looks whether its process is still there.
POLL_SECONDS = 0.2


class Process(Protocol):
    """What a keeper needs of a child process (``subprocess.Popen`` has it)."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...

    def wait(self, timeout: float | None = None) -> int: ...


class Restartable(Protocol):
    """A server object that starts and stops its own process (ManagedRedis, KamailioProcess,
    an Asterisk instance)."""

    @property
    def process(self) -> Process | None: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


def restart_in_place(server: Restartable) -> Callable[[], Process]:
    """A keeper's ``start``: the same server object (folders, configuration) with a new process."""

    def restart() -> Process:
        server.stop()
        server.start()
        assert server.process is not None
        return server.process

    return restart


@dataclass(frozen=True)
class CheckResult:
    ok: bool | None
    detail: str = ""


Check = Callable[[], CheckResult]


@dataclass(frozen=True)
class Backoff:
    """0.5 s, 1 s, 2 s, ... up to 30 s between restarts of a child that keeps failing; a child
    that stayed up for ``stable_after`` seconds starts again at the first delay."""

    initial: float = 0.5
    maximum: float = 30.0
    stable_after: float = 60.0

    def delay(self, failures_in_a_row: int) -> float:
        return min(self.maximum, self.initial * 2 ** max(0, failures_in_a_row - 1))


@dataclass(frozen=True)
class HealthPolicy:
    """How a child is checked. A failed check is confirmed before the child is killed: one slow
    answer under load must not cost every call in progress. Right after a start, failures do
    not count until the check passed once or ``start_grace`` seconds went by (imports, boot)."""

    check: Check
    interval: float = 2.0
    retry_interval: float = 0.25
    failures_to_confirm: int = 3
    start_grace: float = 20.0
    # A child that failed its check but is working (it used CPU since the first failure and is
    # not stopped) is overloaded, not hung: killing it would drop what it is doing and put a
    # cold start on top of the load. It gets this long before it is killed all the same. A
    # stopped (SIGSTOP) or idle child is killed after ``failures_to_confirm`` as before.
    busy_patience: float = 30.0


@dataclass
class ChildSpec:
    name: str  # for people: "burgernet serve"
    component: str  # for the health records: "serve"
    start: Callable[[], Process]  # (re)starts the child; raises when it cannot
    stop: Callable[[Process], None]  # a graceful stop, for shutdown
    health: HealthPolicy | None = None
    # After a kill or an exit, before the next start (e.g. unmount what the child used).
    cleanup: Callable[[], None] | None = None


@dataclass(frozen=True)
class Restart:
    component: str
    reason: str
    attempt: int
    backoff_s: float


class RestartLog:
    """Restarts into ``health.record_restart``; kept in memory while Redis cannot take them (the
    restart *of* Redis is the usual case) and written once it answers again."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._pending: deque[Restart] = deque(maxlen=health.RESTARTS_KEPT)
        self._lock = threading.Lock()

    def record(self, restart: Restart) -> None:
        with self._lock:
            self._pending.append(restart)
        self.flush()

    def flush(self) -> None:
        with self._lock:
            while self._pending:
                restart = self._pending[0]
                try:
                    health.record_restart(
                        self.client,
                        self.prefix,
                        restart.component,
                        restart.reason,
                        restart.attempt,
                        restart.backoff_s,
                    )
                except redis.RedisError:
                    return
                self._pending.popleft()


@dataclass
class Keeper:
    """Keeps one child running until ``stopping`` is set (see the module docstring)."""

    spec: ChildSpec
    process: Process | None
    stopping: threading.Event
    on_restart: Callable[[Restart], None]
    backoff: Backoff = field(default_factory=Backoff)
    state: str = RUNNING
    attempt: int = 1  # how many times the child was started (the first start counts)
    _thread: threading.Thread | None = None

    def start_thread(self) -> None:
        self._thread = threading.Thread(target=self.run, name=f"keeper-{self.spec.component}", daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        failures_in_a_row = 0
        while not self.stopping.is_set():
            started = time.monotonic()
            if self.process is None:
                reason = self._start()
            if self.process is not None:
                reason = self._watch()
            if self.stopping.is_set():
                return
            if time.monotonic() - started >= self.backoff.stable_after:
                failures_in_a_row = 0
            failures_in_a_row += 1
            delay = self.backoff.delay(failures_in_a_row)
            self.state = RESTARTING
            log.warning(
                "%s %s; restarting in %g s (attempt %d)", self.spec.name, reason, delay, self.attempt + 1
            )
            self.on_restart(Restart(self.spec.component, reason, self.attempt + 1, delay))
            if self.stopping.wait(delay):
                return

    def _start(self) -> str:
        self.attempt += 1
        self.state = STARTING
        if self.spec.cleanup is not None:
            try:
                self.spec.cleanup()
            except Exception:
                log.exception("cleaning up after %s failed", self.spec.name)
        try:
            self.process = self.spec.start()
        except Exception as exc:
            self.state = DOWN
            return f"could not start ({exc})"
        log.warning("%s started again (pid %d)", self.spec.name, self.process.pid)
        return ""

    def _watch(self) -> str:
        """Until the process exits or fails its check: the reason it is no more (it is dead)."""
        assert self.process is not None
        process = self.process
        policy = self.spec.health
        started = time.monotonic()
        passed_once = False
        failed: list[str] = []
        first_failure, cpu_at_first_failure = started, None
        next_check = started + (policy.interval if policy else 0.0)
        self.state = STARTING if policy else RUNNING
        while not self.stopping.is_set():
            if process.poll() is not None:
                # Ctrl-C reaches the children of a terminal too: give the stop a moment to show.
                if self.stopping.wait(POLL_SECONDS):
                    return ""
                self.process = None
                self.state = DOWN
                return f"exited with {process.returncode}"
            now = time.monotonic()
            if policy is not None and now >= next_check:
                result = _run_check(policy.check)
                if result.ok:
                    passed_once = True
                    failed.clear()
                    self.state = RUNNING
                elif result.ok is False and (passed_once or now - started >= policy.start_grace):
                    if not failed:
                        first_failure, cpu_at_first_failure = now, cpu_seconds(process.pid)
                    failed.append(result.detail)
                    if len(failed) <= policy.failures_to_confirm:  # then once more, if it is busy
                        log.warning(
                            "%s failed its health check (%d of %d): %s",
                            self.spec.name,
                            len(failed),
                            policy.failures_to_confirm,
                            result.detail,
                        )
                    busy = is_busy(process.pid, cpu_at_first_failure)
                    if (
                        len(failed) >= policy.failures_to_confirm
                        and busy is not None
                        and now - first_failure < policy.busy_patience
                    ):
                        if len(failed) == policy.failures_to_confirm:
                            log.warning(
                                "%s is not answering but working (%s); waiting up to %.0f s before a kill",
                                self.spec.name,
                                busy,
                                policy.busy_patience,
                            )
                    elif len(failed) >= policy.failures_to_confirm:
                        self._kill(process)
                        return (
                            f"failed its health check {len(failed)} times ({result.detail}); "
                            f"killed it (exit {process.returncode})"
                        )
                # Quick again after a failure (to confirm it), and until a fresh start first passed.
                quick = failed or not passed_once
                next_check = time.monotonic() + (policy.retry_interval if quick else policy.interval)
            self.stopping.wait(POLL_SECONDS)
        return ""

    def _kill(self, process: Process) -> None:
        with contextlib.suppress(ProcessLookupError, OSError):
            process.kill()  # SIGKILL: also ends a stopped (SIGSTOP) or hung process
        with contextlib.suppress(Exception):
            process.wait(timeout=10)
        self.process = None
        self.state = DOWN

    def stop_child(self) -> None:
        """The graceful stop at shutdown (after the keeper's thread has ended)."""
        self.state = STOPPED
        if self.process is not None:
            try:
                self.spec.stop(self.process)
            finally:
                self.process = None


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces), or None."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def cpu_seconds(pid: int) -> float | None:
    """CPU time the process has used (user + system), or None where /proc cannot say."""
    fields = _proc_stat(pid)
    if fields is None or len(fields) < 13:
        return None
    # utime and stime are fields 14 and 15 of stat(5): 12 and 13 after the state field.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def is_busy(pid: int, cpu_before: float | None) -> str | None:
    """Why a process that fails its check still looks alive ("used 1.4 s of CPU"), or None when
    it is stopped, gone, idle since ``cpu_before``, or /proc cannot tell (then a kill is right)."""
    fields = _proc_stat(pid)
    if fields is None or fields[0] in ("T", "t", "Z", "X"):  # stopped, traced, dead
        return None
    cpu_now = cpu_seconds(pid)
    if cpu_before is None or cpu_now is None or cpu_now <= cpu_before:
        return None
    return f"used {cpu_now - cpu_before:.1f} s of CPU since its first failed check"


def _run_check(check: Check) -> CheckResult:
    try:
        return check()
    except Exception as exc:  # a bug in a check must not kill the keeper
        log.exception("health check failed unexpectedly")
        return CheckResult(None, f"check error: {exc}")


# --- checks -------------------------------------------------------------------------------------
def loopback_if_any(host: str) -> str:
    """Where to reach a server bound to ``host`` from this machine."""
    # Compared, never bound: a wildcard bind address is reached on loopback.
    return "127.0.0.1" if host in {"", "0.0.0.0", "::", "*"} else host  # nosec B104


def fastagi_probe(host: str, port: int, timeout: float = 1.0) -> CheckResult:
    """One FastAGI "call" to the script ``healthz``: proves the serving event loop answers."""
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.sendall(FASTAGI_PROBE_REQUEST)
            received = b""
            while b"\n" not in received:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                conn.settimeout(remaining)
                chunk = conn.recv(512)
                if not chunk:
                    return CheckResult(False, "FastAGI closed the probe without an answer")
                received += chunk
            line = received.split(b"\n", 1)[0].decode(errors="replace").strip()
            with contextlib.suppress(OSError):
                conn.sendall(b"200 result=0\n")
            if line != FASTAGI_PROBE_ANSWER:
                return CheckResult(False, f"FastAGI answered the probe with {line[:60]!r}")
            return CheckResult(True)
    except TimeoutError:
        return CheckResult(False, f"FastAGI probe got no answer within {timeout:g} s")
    except OSError as exc:
        return CheckResult(False, f"FastAGI probe: {exc.strerror or exc}")


def http_probe(url: str, timeout: float = 2.0) -> CheckResult:
    """``GET url`` answers 200 (the panel's ``/healthz``)."""
    if not url.startswith(("http://", "https://")):
        return CheckResult(False, f"{url}: not an http(s) URL")
    try:
        # The scheme is checked above (no file: or custom schemes); the URL is built from settings.
        with urllib.request.urlopen(url, timeout=timeout) as response:  # nosec B310
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        return CheckResult(False, f"{url} answered {exc.code}")
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return CheckResult(False, f"{url}: {reason}")
    return CheckResult(status == 200, f"{url} answered {status}")


def redis_ping(client: redis.Redis) -> CheckResult:
    try:
        client.ping()
    except redis.RedisError as exc:
        return CheckResult(False, f"Redis does not answer PING ({exc.__class__.__name__})")
    return CheckResult(True)


def beat_check(
    client: redis.Redis, prefix: str, component: str, pid: Callable[[], int | None], max_age: float
) -> CheckResult:
    """The component's own heartbeat is fresh and comes from the process we started.

    While Redis is unreachable the answer is "unknown", not a failure: no beat can arrive then,
    so a missing one says nothing about the component, and restarting it would not bring Redis
    back (it would only drop the work it holds). Redis is a fault of its own: our managed
    redis-server has its own check, and the components ride out an outage themselves.
    """
    try:
        beat = health.read_beat(client, prefix, component)
    except redis.RedisError:
        return CheckResult(None, "Redis unreachable: no heartbeat can be read")
    expected = pid()
    if beat is None:
        return CheckResult(False, f"no {component} heartbeat in Redis")
    if expected is not None and beat.pid != expected:
        return CheckResult(False, f"no heartbeat from pid {expected} (the last one is from pid {beat.pid})")
    age = beat.age()
    if age > max_age:
        return CheckResult(False, f"{component} heartbeat is {age:.0f} s old")
    return CheckResult(True)


class AmiPinger:
    """Asterisk's health: ``Ping`` over one AMI session kept open (a login every check would put
    a line in Asterisk's security log every time), with events switched off for it."""

    def __init__(self, host: str, port: int, username: str, secret: str, timeout: float = 1.5) -> None:
        self.host = host
        self.port = port
        self.username = username
        self.secret = secret
        self.timeout = timeout
        self._conn: socket.socket | None = None
        self._buffer = b""
        self._action = 0

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
        self._conn = None
        self._buffer = b""

    def __call__(self) -> CheckResult:
        try:
            if self._conn is None:
                refused = self._connect()
                if refused is not None:
                    return refused
            answer = self._request("Ping")
        except (OSError, ConnectionError) as exc:
            self.close()
            what = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
            return CheckResult(False, f"AMI Ping: {what}")
        if answer.get("Response") != "Success":
            self.close()
            return CheckResult(False, f"AMI Ping answered {answer.get('Response')!r}")
        return CheckResult(True)

    def _connect(self) -> CheckResult | None:
        self._conn = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self._conn.settimeout(self.timeout)
        self._read_line()  # "Asterisk Call Manager/x.y.z"
        login = self._request("Login", Username=self.username, Secret=self.secret, Events="off")
        if login.get("Response") != "Success":
            self.close()
            # Asterisk answers, so it is alive; restarting it would not fix our credentials.
            log.error("AMI login as %r refused: %s", self.username, login.get("Message", "?"))
            return CheckResult(None, "AMI login refused")
        return None

    def _request(self, action: str, **fields: str) -> dict[str, str]:
        assert self._conn is not None
        self._action += 1
        action_id = f"supervisor-{self._action}"
        lines = [f"Action: {action}", f"ActionID: {action_id}", *(f"{k}: {v}" for k, v in fields.items())]
        self._conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while True:
            message = self._read_message()
            if message.get("ActionID") == action_id:
                return message

    def _read_message(self) -> dict[str, str]:
        message: dict[str, str] = {}
        while True:
            line = self._read_line()
            if not line:
                if message:
                    return message
                continue
            key, _, value = line.partition(":")
            message[key.strip()] = value.strip()

    def _read_line(self) -> str:
        assert self._conn is not None
        while b"\n" not in self._buffer:
            chunk = self._conn.recv(4096)
            if not chunk:
                raise ConnectionError("AMI closed the connection")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode(errors="replace").rstrip("\r")
