"""`burgernet cluster up --nodes 2`, started the way a user starts it, under real SIP calls.

One cluster for the module (PostgreSQL, Redis with three sentinels, Kamailio, two Asterisk nodes,
two serves, a worker and the panel). SIPp plays the carrier (from 127.0.0.2, through the edge)
and a centralist's phone that registers at the edge. The tests run in file order: the faults
come last, and each leaves the cluster serving calls for the next.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
import redis
import sqlalchemy
import sqlalchemy.pool

from asterisk_conf.sipp import caller_scenario
from composition.postgres_server import ManagedPostgres
from composition.supervision import fastagi_probe
from testbed.ports import free_base, free_port
from testbed.sipp_edge import EdgeSipp, register_scenario
from testbed.waiting import wait_for

pytestmark = pytest.mark.asterisk

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 300.0
CARRIER = "127.0.0.2"
FREE_NUMBER = "08000011"  # the default: the test leaves asterisk.free_number alone
HANDOFF = re.compile(r"ivr\.handoff: call (\S+) from \w+: (\w+)")


def _free_base() -> int:
    """A base port with the 30 above it free (the cluster's ports count up from it)."""
    return free_base(4100, 9000)


@dataclass
class Cluster:
    process: subprocess.Popen[bytes]
    data_dir: Path
    base_port: int
    summary: str
    environment: dict[str, str]

    @property
    def folder(self) -> Path:
        return self.data_dir / "cluster"

    @property
    def phone_password(self) -> str:
        found = re.search(r"as centralist c-mn-1, password (\S+) \(shown once\)", self.summary)
        assert found, self.summary
        return found[1]

    def node_port(self, node: int) -> int:
        return self.base_port + 10 * node

    def handoffs(self, node: int) -> list[tuple[str, str]]:
        log = self.folder / "logs" / f"n{node}" / "serve.log"
        return HANDOFF.findall(log.read_text()) if log.is_file() else []

    def start_calls(self, count: int, *, rate: float = 1.0, hold_ms: int = 10_000) -> subprocess.Popen[str]:
        """``count`` calls from the carrier through the edge, in the background."""
        # The demo callers `cluster up` wrote, with a scenario of our own: the caller hangs up
        # after ``hold_ms`` (a centralist's phone here never does).
        callers = self.folder / "sipp" / "callers.csv"
        scenario = self.folder / "sipp" / f"caller-{hold_ms}.xml"
        scenario.write_text(caller_scenario(FREE_NUMBER, "[field0]", (), hold_ms, None, through_edge=True))
        command = ["sipp", f"127.0.0.1:{self.base_port}", "-sf", str(scenario), "-inf", str(callers)]
        command += ["-i", CARRIER, "-p", str(free_port()), "-mp", str(free_port())]
        command += ["-m", str(count), "-r", str(rate), "-nostdin", "-timeout", "90", "-timeout_error"]
        return subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=self.folder
        )

    def finish(self, calls: subprocess.Popen[str]) -> tuple[int, int]:
        """(successful, failed) of calls started with :meth:`start_calls`, once they are over."""
        stdout, stderr = calls.communicate(timeout=120)
        successful = re.search(r"Successful call\s+\|\s+\d+\s+\|\s+(\d+)", stdout)
        failed = re.search(r"Failed call\s+\|\s+\d+\s+\|\s+(\d+)", stdout)
        assert successful and failed, stdout[-2000:] + stderr[-2000:]
        return int(successful[1]), int(failed[1])

    def calls(self, count: int, *, rate: float = 1.0, hold_ms: int = 10_000) -> tuple[int, int]:
        """``count`` calls from the carrier through the edge: (successful, failed)."""
        return self.finish(self.start_calls(count, rate=rate, hold_ms=hold_ms))

    def pid_of(self, pattern: str) -> int:
        found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
        assert found, f"no process matches {pattern!r}"
        return int(found[0])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    data_dir = tmp_path_factory.mktemp("cluster") / "var"
    base_port = _free_base()
    environment = {
        **os.environ,
        "BURGERNET_DATA_DIR": str(data_dir),
        "BURGERNET_WEB__PORT": str(free_port()),
        "BURGERNET_ASTERISK__INSTANCE_NAME": f"bn-cluster-{os.getpid()}",
    }
    stderr = data_dir.parent / "cluster.err"
    with stderr.open("wb") as err:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "composition.cli",
                "cluster",
                "up",
                "--nodes",
                "2",
                "--participants",
                "1000",
                "--base-port",
                str(base_port),
            ],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=err,
        )
    summary = ""
    try:
        assert process.stdout is not None
        started = time.monotonic()
        for raw in process.stdout:
            summary += raw.decode(errors="replace")
            if "Register a softphone at the edge" in summary:
                break
            assert time.monotonic() - started < START_TIMEOUT, "cluster up did not come up"
        else:
            raise AssertionError(f"cluster up exited with {process.wait()}:\n{stderr.read_text()[-4000:]}")
        # The rest of the output must not fill the pipe and block the cluster.
        subprocess.Popen(["cat"], stdin=process.stdout, stdout=subprocess.DEVNULL)
        # Like `burgernet run`, the summary comes as the children start: wait until both nodes'
        # FastAGI servers answer, or the first calls take the (working) failure path.
        for port in (base_port + 12, base_port + 22):  # node n's FastAGI: base + 10 n + 2
            wait_for(partial(_fastagi_answers, port), 120, f"FastAGI on {port}")
        yield Cluster(process, data_dir, base_port, summary, environment)
    finally:
        if process.poll() is None:
            down = subprocess.run(
                [sys.executable, "-m", "composition.cli", "cluster", "down"],
                cwd=ROOT,
                env=environment,
                capture_output=True,
                text=True,
                timeout=180,
            )
            process.wait(timeout=60)
            assert "stopped" in down.stdout, down.stdout + down.stderr
        instance = environment["BURGERNET_ASTERISK__INSTANCE_NAME"]
        left = subprocess.run(["pgrep", "-f", instance], capture_output=True, text=True).stdout.split()
        assert not left, f"processes of the cluster left after cluster down: {left}"


@pytest.fixture(scope="module")
def phone(cluster: Cluster) -> Iterator[EdgeSipp]:
    """Centralist c-mn-1's phone, registered at the edge, answering every call."""
    sipp = EdgeSipp("127.0.0.1", cluster.base_port)
    port = free_port()
    sipp.answerer("phone", "127.0.0.1", port, free_port())
    registered = sipp.run(
        "register",
        register_scenario("c-mn-1", cluster.phone_password, f"sip:c-mn-1@127.0.0.1:{port}", 200),
        host="127.0.0.1",
        port=free_port(),
        media_port=free_port(),
    )
    assert registered.ok, registered.output
    yield sipp
    sipp.cleanup()


def test_the_summary_says_where_everything_is(cluster: Cluster) -> None:
    for part in ("PostgreSQL: 127.0.0.1", "sentinels", "SIP edge (Kamailio)", "Node n1", "Node n2", "Panel:"):
        assert part in cluster.summary, cluster.summary
    assert "sqlite" not in cluster.summary  # a cluster refuses SQLite


def test_calls_through_the_edge_are_spread_over_both_nodes(cluster: Cluster) -> None:
    successful, failed = cluster.calls(6, rate=3)
    assert (successful, failed) == (6, 0)
    wait_for(lambda: len(cluster.handoffs(1)) + len(cluster.handoffs(2)) >= 6, 30, "six calls routed")
    assert cluster.handoffs(1) and cluster.handoffs(2), "one node took every call"


def test_a_centralist_in_a_call_on_one_node_is_not_rung_by_the_other(
    cluster: Cluster, phone: EdgeSipp
) -> None:
    # Both nodes learn the registration through the edge (their qualify of the phone).
    time.sleep(12)
    before = {node: len(cluster.handoffs(node)) for node in (1, 2)}
    # The first call rings c-mn-1, who answers and stays on the line; the next call, which the
    # edge gives to the other node (round robin), must not ring c-mn-1 again.
    first = cluster.start_calls(1, hold_ms=25_000)
    wait_for(
        lambda: any(d == "dial" for n in (1, 2) for _c, d in cluster.handoffs(n)[before[n] :]), 30, "dialled"
    )
    time.sleep(3)  # c-mn-1 answers; its state reaches the other node and Redis
    successful, failed = cluster.calls(1)
    assert (successful, failed) == (1, 0)
    assert cluster.finish(first) == (1, 0)
    new = {node: [decision for _call, decision in cluster.handoffs(node)[before[node] :]] for node in (1, 2)}
    assert sorted(new[1] + new[2]) == ["dial", "tip"], new
    assert new[1] and new[2], f"both calls on one node: {new}"


def test_a_frozen_serve_costs_its_node_s_callers_one_retry_on_the_other_node_s_serve(
    cluster: Cluster,
) -> None:
    """Node 1's FastAGI server freezes (SIGSTOP: its socket still accepts). The calls the edge
    gives node 1 meanwhile wait out the AGI deadline and are routed by node 2's serve
    (asterisk.agi_backup): none takes the failure path."""
    serve = _serve_pid(cluster, 1)
    console = _asterisk_console(cluster, 1)
    already = len(console.read_text())
    before = {node: len(cluster.handoffs(node)) for node in (1, 2)}
    os.kill(serve, signal.SIGSTOP)
    try:
        successful, failed = cluster.calls(6, rate=2, hold_ms=8000)
    finally:
        with contextlib.suppress(ProcessLookupError):  # its supervisor may have replaced it already
            os.kill(serve, signal.SIGCONT)
    assert (successful, failed) == (6, 0)
    log = console.read_text()[already:]
    backup = f"agi://127.0.0.1:{cluster.base_port + 22}"  # node 2's FastAGI
    assert f"trying {backup}" in log, log[-3000:]
    assert "failure path" not in log, log[-3000:]
    wait_for(
        lambda: sum(len(cluster.handoffs(node)) - before[node] for node in (1, 2)) >= 6,
        30,
        "the six calls routed by FastAGI",
    )


def test_a_killed_node_loses_no_new_call(cluster: Cluster) -> None:
    instance = cluster.environment["BURGERNET_ASTERISK__INSTANCE_NAME"]
    node2 = cluster.pid_of(f"{instance}-n2/etc/asterisk.conf")
    os.kill(node2, signal.SIGKILL)
    # Calls right after the kill: the edge tries node 2, gets no answer within its failover
    # timeout and sends the same call on to node 1; from the next probe on node 2 is skipped.
    successful, failed = cluster.calls(8, rate=2)
    assert (successful, failed) == (8, 0)
    # The node's supervisor brings it back.
    wait_for(lambda: cluster.pid_of(f"{instance}-n2/etc/asterisk.conf") != node2, 60, "node 2 restarted")


def test_calls_are_routed_while_the_redis_primary_is_killed(cluster: Cluster) -> None:
    """The primary dies: the cluster's keeper starts it again within seconds, or the sentinels
    promote the replica first (tests/core/test_redis_sentinel.py shows that failover on its
    own); either way the serves follow the sentinels and keep routing."""
    password = _redis_password(cluster)
    sentinel = redis.Redis(host="127.0.0.1", port=cluster.base_port + 4, password=password, socket_timeout=2)
    os.kill(cluster.pid_of(f"redis-server 127.0.0.1:{cluster.base_port + 2}"), signal.SIGKILL)
    before = {node: len(cluster.handoffs(node)) for node in (1, 2)}
    successful, failed = cluster.calls(4, rate=2)
    assert (successful, failed) == (4, 0)
    wait_for(
        lambda: sum(len(cluster.handoffs(node)) - before[node] for node in (1, 2)) >= 4,
        30,
        "the calls are routed by FastAGI, not the failure path",
    )
    primary = redis.Redis(host="127.0.0.1", port=_primary_port(sentinel), password=password, socket_timeout=2)
    wait_for(lambda: primary.ping(), 30, "the primary the sentinels name answers")


def test_calls_are_routed_while_postgresql_restarts_and_writes_resume(cluster: Cluster) -> None:
    """PostgreSQL goes away for the length of four calls: FastAGI routes them from its cached
    action snapshot (a stalled database costs a caller at most 3 s), and once PostgreSQL is back
    the call log is written again."""
    found = re.search(r"PostgreSQL: 127\.0\.0\.1:(\d+) \(data in (\S+)\)", cluster.summary)
    assert found, cluster.summary
    postgres = ManagedPostgres(Path(found[2]).parent, int(found[1]))
    logged = partial(_calls_logged, postgres.url.replace("postgresql://", "postgresql+psycopg2://", 1))
    before = {node: len(cluster.handoffs(node)) for node in (1, 2)}
    postgres.stop()
    try:
        assert not postgres.ping()
        successful, failed = cluster.calls(4, rate=2)
    finally:
        postgres.start()
        postgres.wait_ready()
    assert (successful, failed) == (4, 0)
    wait_for(
        lambda: sum(len(cluster.handoffs(node)) - before[node] for node in (1, 2)) >= 4,
        30,
        "the calls during the outage are routed by FastAGI, not the failure path",
    )
    logged_before = logged()
    assert cluster.calls(2, rate=2) == (2, 0)
    wait_for(lambda: logged() >= logged_before + 2, 60, "the calls after the restart are in the call log")


def _calls_logged(url: str) -> int:
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            return int(connection.execute(sqlalchemy.text("SELECT count(*) FROM calls")).scalar_one())
    finally:
        engine.dispose()


def _serve_pid(cluster: Cluster, node: int) -> int:
    """The serve process of ``node``: the one whose environment names its FastAGI port."""
    port = f"BURGERNET_ASTERISK__AGI_PORT={cluster.base_port + 10 * node + 2}".encode()
    for pid in subprocess.run(
        ["pgrep", "-f", "composition.cli serve"], capture_output=True, text=True
    ).stdout.split():
        try:
            if port in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                return int(pid)
        except OSError:
            continue
    raise AssertionError(f"no serve process for node {node}")


def _asterisk_console(cluster: Cluster, node: int) -> Path:
    """Node ``node``'s Asterisk console log, seen through the process's own root (its chroot)."""
    instance = cluster.environment["BURGERNET_ASTERISK__INSTANCE_NAME"]
    pid = cluster.pid_of(f"{instance}-n{node}/etc/asterisk.conf")
    arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    config = Path(arguments[arguments.index(b"-C") + 1].decode())
    return Path(f"/proc/{pid}/root") / config.parent.parent.relative_to("/") / "log" / "console.log"


def _fastagi_answers(port: int) -> bool:
    return fastagi_probe("127.0.0.1", port, 1.0).ok is True


def _primary_port(sentinel: redis.Redis) -> int:
    address = sentinel.sentinel_get_master_addr_by_name("burgernet")
    assert isinstance(address, tuple | list), address
    return int(address[1])


def _redis_password(cluster: Cluster) -> str:
    secrets = tomllib.loads((cluster.folder / "secrets.toml").read_text())
    return str(secrets["redis"]["password"])
