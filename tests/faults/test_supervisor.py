"""``burgernet run`` heals: a killed, frozen or crashed child is replaced, the rest keeps running.

One real ``burgernet run`` for the module (Redis, SQLite, prompts, the Asterisk sandbox, serve,
worker, panel), on spare ports in a temporary data folder; faults are injected with signals and
the replacement is proven the way Asterisk and the operator see it: the FastAGI probe answers,
AMI answers ``Ping``, the restart is in ``health.recent_restarts`` and in the supervisor's log.
The tests run in file order and share the one system; the last one stops it with SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from burgernet import health
from burgernet.settings import Settings, load_settings
from composition.runner import terminate
from composition.supervision import (
    AmiPinger,
    Backoff,
    CheckResult,
    ChildSpec,
    HealthPolicy,
    Keeper,
    Restart,
    beat_check,
    cpu_seconds,
    fastagi_probe,
    is_busy,
)
from testbed.ports import free_port, port_block
from testbed.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 240.0  # a first run builds the prompts and boots Asterisk
HEAL_TIMEOUT = 30.0  # generous: this test proves healing, benchmarks/faults.py measures it


@dataclass
class RunningSystem:
    process: subprocess.Popen[bytes]
    settings: Settings
    stderr: Path
    redis: redis.Redis

    def log(self) -> str:
        return self.stderr.read_text(errors="replace")

    def child(self, marker: str) -> int | None:
        """The pid of the supervisor's child whose command line contains ``marker`` (serve's
        marker is in the standby's command line too: it is told apart by ``--standby``)."""
        for pid in _children(self.process.pid):
            cmdline = _cmdline(pid)
            if marker in cmdline and ("--standby" in cmdline) == ("--standby" in marker):
                return pid
        return None

    def probe(self) -> bool:
        return bool(fastagi_probe("127.0.0.1", self.settings.asterisk.agi_port, 1.0).ok)

    def ami_ping(self) -> CheckResult:
        a = self.settings.asterisk
        pinger = AmiPinger("127.0.0.1", a.ami_port, a.ami_username, a.ami_secret)
        try:
            return pinger()
        finally:
            pinger.close()

    def supervised(self, component: str) -> tuple[str, int] | None:
        """The supervisor's last word on ``component``: its state and pid."""
        beat = health.read_beat(self.redis, self.settings.redis.key_prefix, health.SUPERVISOR)
        if beat is None or f"child:{component}" not in beat.details:
            return None
        return beat.details[f"child:{component}"], int(beat.details.get(f"pid:{component}", 0))

    def restarts(self, component: str) -> list[dict[str, object]]:
        found = health.recent_restarts(self.redis, self.settings.redis.key_prefix, 50)
        return [r for r in found if r["component"] == component]


SERVE = "composition.cli serve"
STANDBY = "composition.cli serve --standby"
ASTERISK = "asterisk -C"


def _children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after its closing bracket.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == parent:
            found.append(int(entry.name))
    return found


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    data_dir = tmp_path_factory.mktemp("run") / "data"
    environment = {
        "BURGERNET_DATA_DIR": str(data_dir),
        "BURGERNET_REDIS__URL": f"redis://127.0.0.1:{free_port()}/0",
        "BURGERNET_REDIS__KEY_PREFIX": f"run-{uuid.uuid4().hex[:8]}:",
        "BURGERNET_ASTERISK__INSTANCE_NAME": f"run{os.getpid()}",
        "BURGERNET_ASTERISK__SIP_PORT": str(free_port()),
        "BURGERNET_ASTERISK__AMI_PORT": str(free_port()),
        # The standby FastAGI server takes the port above it (block of four free ports).
        "BURGERNET_ASTERISK__AGI_PORT": str(port_block()),
        "BURGERNET_ASTERISK__TRUNK_PORT": str(free_port()),
        "BURGERNET_WEB__PORT": str(free_port()),
    }
    stderr = tmp_path_factory.mktemp("run-logs") / "run.stderr"
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        with stderr.open("wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "composition.cli", "run", "--participants", "0"],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=err,
            )
        try:
            assert process.stdout is not None
            started = time.monotonic()
            for raw in process.stdout:  # the summary is printed once everything is up
                if b"Burgernet is running" in raw:
                    break
                assert time.monotonic() - started < START_TIMEOUT, "burgernet run did not come up"
            else:
                raise AssertionError(f"burgernet run exited with {process.wait()}:\n{stderr.read_text()}")
            # The rest of the summary must not fill the pipe and block the supervisor.
            subprocess.Popen(["cat"], stdin=process.stdout, stdout=subprocess.DEVNULL)
            settings = load_settings()  # the same environment and data folder: the same secrets
            client = redis.Redis.from_url(settings.redis.url, socket_timeout=2)
            running = RunningSystem(process, settings, stderr, client)
            wait_for(running.probe, HEAL_TIMEOUT, "serve answers the FastAGI probe")
            yield running
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=90)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def test_back_off_doubles_up_to_its_ceiling() -> None:
    assert [Backoff().delay(n) for n in range(1, 10)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "60"])


def _keeper(check: Callable[[], CheckResult], restarts: list[Restart]) -> Keeper:
    policy = HealthPolicy(check, interval=0.05, retry_interval=0.05, start_grace=0)
    spec = ChildSpec("sleeper", "sleeper", start=_sleeper, stop=terminate, health=policy)
    return Keeper(spec, _sleeper(), threading.Event(), restarts.append, Backoff(initial=0.1))


def test_only_a_confirmed_failure_kills_and_an_unknown_never_does() -> None:
    answers = iter([CheckResult(False, "one"), CheckResult(True), *[CheckResult(None, "Redis down")] * 10])
    restarts: list[Restart] = []
    keeper = _keeper(lambda: next(answers, CheckResult(None, "Redis down")), restarts)
    first = keeper.process
    keeper.start_thread()
    try:
        time.sleep(1.0)
        assert restarts == [] and keeper.process is first and first is not None and first.poll() is None
    finally:
        keeper.stopping.set()
        keeper.join(5)
        keeper.stop_child()


def test_three_failures_in_a_row_kill_even_a_stopped_process_and_start_a_new_one() -> None:
    restarts: list[Restart] = []
    keeper = _keeper(lambda: CheckResult(False, "no answer"), restarts)
    first = keeper.process
    assert first is not None
    os.kill(first.pid, signal.SIGSTOP)
    keeper.start_thread()
    try:
        wait_for(lambda: keeper.process not in (None, first), 5, "a new process")
        assert first.returncode == -signal.SIGKILL
        assert restarts[0] == Restart(
            "sleeper", "failed its health check 3 times (no answer); killed it (exit -9)", 2, 0.1
        )
    finally:
        keeper.stopping.set()
        keeper.join(5)
        keeper.stop_child()


def _busy_worker() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def test_a_child_that_fails_its_check_while_working_gets_patience_then_is_killed() -> None:
    """Overloaded is not hung: a process that burns CPU keeps its place for busy_patience."""
    restarts: list[Restart] = []
    policy = HealthPolicy(
        lambda: CheckResult(False, "no answer"),
        interval=0.05,
        retry_interval=0.05,
        start_grace=0,
        busy_patience=2.0,
    )
    spec = ChildSpec("busy", "busy", start=_busy_worker, stop=terminate, health=policy)
    keeper = Keeper(spec, _busy_worker(), threading.Event(), restarts.append, Backoff(initial=0.1))
    first = keeper.process
    assert first is not None
    keeper.start_thread()
    try:
        time.sleep(1.0)  # far more than three failed checks
        assert restarts == [] and keeper.process is first and first.poll() is None
        wait_for(lambda: keeper.process not in (None, first), 5, "a new process after the patience")
        assert first.returncode == -signal.SIGKILL
        assert restarts[0].reason.startswith("failed its health check")
    finally:
        keeper.stopping.set()
        keeper.join(5)
        keeper.stop_child()


def test_a_stopped_or_idle_process_is_not_busy() -> None:
    idle = _sleeper()
    busy = _busy_worker()
    try:
        before_idle, before_busy = cpu_seconds(idle.pid), cpu_seconds(busy.pid)
        time.sleep(0.5)
        assert is_busy(idle.pid, before_idle) is None  # sleeping and using no CPU: hung or idle
        assert is_busy(busy.pid, before_busy) is not None
        os.kill(busy.pid, signal.SIGSTOP)
        time.sleep(0.1)
        assert is_busy(busy.pid, before_busy) is None  # stopped: frozen whatever it used before
        assert is_busy(2**22 + 12345, 0.0) is None  # no such process
    finally:
        for process in (idle, busy):
            process.kill()
            process.wait()


def test_a_heartbeat_cannot_fail_while_redis_is_down() -> None:
    unreachable = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5)
    result = beat_check(unreachable, "x:", health.WORKER, lambda: 1, 10.0)
    assert result.ok is None and "Redis unreachable" in result.detail


def test_kill_9_of_serve_is_replaced_and_asterisk_keeps_running(system: RunningSystem) -> None:
    serve, asterisk = system.child(SERVE), system.child(ASTERISK)
    assert serve is not None and asterisk is not None, f"children: {_children(system.process.pid)}"

    os.kill(serve, signal.SIGKILL)
    healed = wait_for(
        lambda: system.child(SERVE) not in (None, serve) and system.probe(),
        HEAL_TIMEOUT,
        "a new serve answers the FastAGI probe",
    )
    print(f"kill -9 of serve: a new serve answered the FastAGI probe after {healed:.1f} s")

    assert system.child(ASTERISK) == asterisk  # the free number stayed up
    wait_for(lambda: system.ami_ping().ok, 5, "Asterisk answers AMI Ping")
    assert system.process.poll() is None
    assert "burgernet serve exited with -9; restarting in 0.5 s (attempt 2)" in system.log()
    wait_for(lambda: system.restarts(health.SERVE), 5, "the restart is recorded in Redis")
    restart = system.restarts(health.SERVE)[0]
    assert restart["reason"] == "exited with -9" and restart["attempt"] == 2 and restart["backoff_s"] == 0.5


def test_a_frozen_serve_is_killed_and_replaced(system: RunningSystem) -> None:
    serve, asterisk = system.child(SERVE), system.child(ASTERISK)
    assert serve is not None
    # From a steady state: the supervisor has seen this serve healthy (not in its start-up grace).
    wait_for(lambda: system.supervised(health.SERVE) == ("running", serve), HEAL_TIMEOUT, "serve is running")

    os.kill(serve, signal.SIGSTOP)  # the socket stays open, nothing answers: the worst hang
    frozen = time.monotonic()
    assert not system.probe()
    wait_for(lambda: not _alive(serve), HEAL_TIMEOUT, "the frozen serve is killed")
    killed = time.monotonic() - frozen
    wait_for(
        lambda: system.child(SERVE) is not None and system.probe(),
        HEAL_TIMEOUT,
        "a new serve answers the FastAGI probe",
    )
    replaced = time.monotonic() - frozen
    print(f"SIGSTOP of serve: killed after {killed:.1f} s, a new serve answered after {replaced:.1f} s")

    assert system.child(ASTERISK) == asterisk
    reasons = [str(r["reason"]) for r in system.restarts(health.SERVE)]
    assert any("failed its health check 3 times" in reason and "-9" in reason for reason in reasons), reasons
    assert "burgernet serve failed its health check (3 of 3)" in system.log()


def test_the_standby_fastagi_server_answers_beside_serve_and_is_kept_too(system: RunningSystem) -> None:
    """`burgernet run` starts a second FastAGI server on the port after serve's (what Asterisk's
    dialplan tries when serve fails: asterisk.agi_backup); it is restarted like the others."""
    port = system.settings.asterisk.agi_port + 1
    standby = system.child(STANDBY)
    assert standby is not None and standby != system.child(SERVE)
    wait_for(lambda: fastagi_probe("127.0.0.1", port, 1.0).ok, HEAL_TIMEOUT, "the standby answers")
    os.kill(standby, signal.SIGKILL)
    wait_for(
        lambda: system.child(STANDBY) not in (None, standby) and fastagi_probe("127.0.0.1", port, 1.0).ok,
        HEAL_TIMEOUT,
        "a new standby answers the FastAGI probe",
    )
    wait_for(lambda: system.restarts(health.SERVE_STANDBY), 5, "the restart is recorded in Redis")
    assert "burgernet serve --standby exited with -9" in system.log()


def test_a_killed_asterisk_is_restarted_and_answers(system: RunningSystem) -> None:
    asterisk, serve = system.child(ASTERISK), system.child(SERVE)
    assert asterisk is not None

    os.kill(asterisk, signal.SIGKILL)
    healed = wait_for(
        lambda: system.child(ASTERISK) not in (None, asterisk) and system.ami_ping().ok,
        HEAL_TIMEOUT,
        "a new Asterisk answers AMI Ping",
    )
    print(f"kill -9 of Asterisk: a new Asterisk answered AMI Ping after {healed:.1f} s")

    assert system.child(SERVE) == serve and system.probe()  # serve is not touched
    wait_for(lambda: system.restarts("asterisk"), 5, "the Asterisk restart is recorded")
    assert system.restarts("asterisk")[0]["reason"] == "exited with -9"


def test_the_supervisor_beats_with_its_childrens_states(system: RunningSystem) -> None:
    def all_running() -> bool:
        beat = health.read_beat(system.redis, system.settings.redis.key_prefix, health.SUPERVISOR)
        states = {k: v for k, v in beat.details.items() if k.startswith("child:")} if beat else {}
        return beat is not None and beat.pid == system.process.pid and set(states.values()) == {"running"}

    wait_for(all_running, HEAL_TIMEOUT, "the supervisor reports every child running")
    beat = health.read_beat(system.redis, system.settings.redis.key_prefix, health.SUPERVISOR)
    assert beat is not None
    assert {k for k in beat.details if k.startswith("child:")} == {
        "child:redis",
        "child:asterisk",
        "child:serve",
        "child:serve_standby",
        "child:worker",
        "child:panel",
    }


def test_sigterm_stops_everything_and_leaves_no_process(system: RunningSystem) -> None:
    # redis, asterisk, serve, its standby, worker, panel. A short-lived seventh may be there for
    # a moment: `asterisk -rx` (the log rotation check, a restarted Asterisk's boot wait) or a
    # killed child not reaped yet.
    long_lived = 6
    with contextlib.suppress(AssertionError):
        wait_for(lambda: len(_children(system.process.pid)) == long_lived, 15, "six children")
    children = _children(system.process.pid)
    assert len(children) == long_lived, [_cmdline(pid) for pid in children]

    system.process.send_signal(signal.SIGTERM)

    assert system.process.wait(timeout=90) == 0
    assert [pid for pid in children if _alive(pid)] == []
    mounts = Path("/proc/mounts").read_text()
    assert str(system.settings.data_dir.resolve()) not in mounts  # the sandbox's bind mount is gone
