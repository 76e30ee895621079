"""Routed calls per second through the Kamailio edge with 1 and with 2 Asterisk nodes, and the faults.

One run, one machine. Three measurements, each the baseline of the next:

* **the bare edge**: Kamailio's own forwarding rate, SIPp responders standing in for the nodes
  (``benchmarks/kamailio_edge.py``, run as it is, its JSON line read back);
* **the cluster** (:class:`composition.cluster.LocalCluster`, what ``burgernet cluster up --nodes 2``
  starts: Kamailio, two Asterisk nodes each with its ``burgernet serve``, PostgreSQL, Redis with
  a replica and three sentinels, a worker and the panel), in this process on free ports. SIPp
  plays the carrier (from 127.0.0.2, through the edge) with demo participants whose call the
  routing sends to exactly one active action, and centralist c-mn-1's phone is registered at the
  edge. The same load goes to **1 node** (node 2 disabled at the edge's dispatcher, idle) and to
  **2 nodes**. A call is *routed* when FastAGI decided it (``burgernet serve`` logged the hand-off);
* **CPU per call per component**: user + system CPU (``/proc/<pid>/stat``, the process and all its
  descendants, reaped children included) of Kamailio, each Asterisk, each serve, Redis (primary,
  replica, sentinels), PostgreSQL (postmaster and backends), the worker and panel, and SIPp
  itself, before and after each load step, divided by the calls routed. With it the calls per
  second one core of each component carries follow, and so the size of an N-machine cluster
  (the ``sizing`` object). On 2 shared cores the second node cannot add much: every component
  competes for the same two cores, which is why the CPU figures, not the 2-node rate, are the
  ones to scale with.

Then the faults, one after the other under a steady stream of callers (5 calls/s, --quick 3; the caller of
``benchmarks/faults.py``: keys their postcode when asked, speaks, gives up after a while), after
a baseline period without a fault: **one Asterisk node killed** (``kill -9``; its keeper starts it
again, the edge sends new calls to the other node meanwhile); **one serve killed** (``kill -9``);
**the Redis primary killed** (the keeper starts it again, or the sentinels promote the replica);
**PostgreSQL restarted** (stopped, down a few seconds, started). Per period: calls offered,
reached a centralist, tip recorded, no-action message, dead-ended (the goal is 0 for new calls;
calls inside an Asterisk when it is killed die with it: "cut", shown apart), the longest silence,
the seconds until every call was routed by FastAGI again (``recover_s``) and until every
component answered again (``whole_s``). Classified as ``benchmarks/faults.py`` does
(:mod:`testbed.faults`: SIPp's log of every call joined with each node's dialplan trace).

Prints a table on stderr and, as its last line, one JSON object. Everything started is stopped on
exit, also on Ctrl-C, SIGTERM and errors.

Load steps: 25, 50 and 75 calls/s for 20 s each, callers hanging up after 3 s (--quick: 15 calls/s
for 8 s, 2 s). The faults alone: ``--rates 15 --seconds 2``; the load steps alone: ``--faults ''``.

    python benchmarks/cluster.py [--quick] [--rates 25,50] [--seconds S] [--participants N] [--faults ...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any

from sqlalchemy import select

from asterisk_conf.instance import install_for, paths_for
from asterisk_conf.sipp import caller_scenario
from burgernet import health, repositories
from burgernet.db import session_scope
from burgernet.models import Participant
from burgernet.settings import load_settings
from composition.cluster import LOCAL_TRUNK_ADDRESS, ClusterPorts, LocalCluster
from composition.postgres_server import ManagedPostgres
from composition.redis_server import ManagedRedis, ManagedSentinel
from composition.supervision import fastagi_probe
from kamailio_conf.process import KamailioProcess, kamcmd_binary, options_ping
from kamailio_conf.render import NODE_SET
from routing import AreaIndex, Caller, CallerKind, Location

# The test bed (SIPp peers, the fault classification); a benchmark run as a script needs the repo
# on the path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from testbed.faults import (
    AsteriskCall,
    DialplanTrace,
    Phase,
    PhaseResult,
    assign_to_phases,
    join_calls,
    parse_caller_log,
    summarise,
    write_voice,
)
from testbed.faults import caller_scenario as fault_caller_scenario
from testbed.ports import free_base, free_port, port_block
from testbed.sipp import SIPP
from testbed.sipp_edge import EdgeSipp, register_scenario

REPO = Path(__file__).resolve().parent.parent
NODES = 2
PHONE = "c-mn-1"  # the demo centralist whose password `cluster up` makes (and we read)
HANDOFF = re.compile(r"ivr\.handoff: call \S+ from \w+: \w+")
FAULTS = ("asterisk_node_kill", "serve_kill", "redis_primary_kill", "postgres_restart")
TITLES = {
    "baseline": "no fault (baseline)",
    "asterisk_node_kill": "kill -9 Asterisk of node 2",
    "serve_kill": "kill -9 serve of node 1",
    "redis_primary_kill": "kill -9 Redis primary",
    "postgres_restart": "PostgreSQL restarted",
}
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

log = logging.getLogger("benchmarks.cluster")


@dataclass(frozen=True)
class Plan:
    rates: tuple[float, ...]  # offered calls/s of the load steps, each to 1 and to 2 nodes
    seconds: float  # of load per step
    hold_ms: int  # a routed caller hangs up after this long
    participants: int
    # Offered to the bare edge: a rate it keeps up with (offered far above it, SIPp's failed calls
    # wait out their timeouts and the achieved rate says little); its ceiling follows from its CPU
    # per call (sizing.cps_per_core.kamailio_bare).
    edge_rate: float
    edge_seconds: float
    idle_s: float
    fault_rate: float
    fault_hold_s: float  # a fault caller nobody hangs up on gives up after this long
    baseline_s: float
    lead_s: float  # calls running before the fault
    observe_s: float  # after the fault, before looking for the recovery
    recover_s: float  # at most this long for every call to be routed normally again
    postgres_down_s: float


QUICK = Plan(
    rates=(15.0,),
    seconds=8.0,
    hold_ms=2000,
    participants=5_000,
    edge_rate=300.0,
    edge_seconds=3.0,
    idle_s=3.0,
    fault_rate=3.0,
    fault_hold_s=10.0,
    baseline_s=5.0,
    lead_s=3.0,
    observe_s=8.0,
    recover_s=30.0,
    postgres_down_s=3.0,
)
FULL = Plan(
    rates=(25.0, 50.0, 75.0),  # this machine routes about 70 calls/s with one node
    seconds=20.0,
    hold_ms=3000,
    participants=20_000,
    edge_rate=300.0,
    edge_seconds=10.0,
    idle_s=10.0,
    fault_rate=5.0,
    fault_hold_s=20.0,
    baseline_s=20.0,
    lead_s=5.0,
    observe_s=20.0,
    recover_s=60.0,
    postgres_down_s=10.0,
)


# --- CPU from /proc ------------------------------------------------------------------------------


def process_table() -> dict[int, tuple[int, float]]:
    """Every process: (parent pid, CPU seconds of it and of its children it has reaped)."""
    table: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # Counted from the state field: ppid 1, utime 11, stime 12, cutime 13, cstime 14.
        ticks = sum(int(value) for value in fields[11:15])
        table[int(entry.name)] = (int(fields[1]), ticks / _CLOCK_TICKS)
    return table


def tree_cpu_seconds(roots: Iterable[int], table: dict[int, tuple[int, float]]) -> float:
    """CPU of ``roots`` and every live descendant (a wrapper's Asterisk, Kamailio's workers,
    PostgreSQL's backends); a child that ended counts through its parent's reaped-children time."""
    children: dict[int, list[int]] = {}
    for pid, (parent, _cpu) in table.items():
        children.setdefault(parent, []).append(pid)
    seen: set[int] = set()
    todo = [pid for pid in roots if pid in table]
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo.extend(children.get(pid, ()))
    return sum(table[pid][1] for pid in seen)


# --- the bare edge ---------------------------------------------------------------------------------


def bare_edge(rate: float, seconds: float) -> dict[str, Any]:
    """Kamailio's own forwarding rate with SIPp responders behind it: benchmarks/kamailio_edge.py."""
    command = [sys.executable, str(REPO / "benchmarks" / "kamailio_edge.py")]
    command += ["--rate", f"{rate:g}", "--seconds", f"{seconds:g}"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=seconds * 8 + 120)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"kamailio_edge.py failed: {done.stdout[-1500:]}{done.stderr[-1500:]}")
    figures = json.loads(lines[-1])
    edge: dict[str, Any] = dict(figures["edge"])
    edge["direct_sipp_cps"] = figures["direct"]["achieved_cps"]
    return edge


# --- SIPp -------------------------------------------------------------------------------------------


def fault_caller_through_edge(number: str, hold_ms: int, voice: Path) -> str:
    """The caller of benchmarks/faults.py, with its requests inside the call following the route
    set Kamailio records (as ``caller_scenario(..., through_edge=True)`` does for the plain caller)."""
    text = fault_caller_scenario(number, hold_ms, voice)
    text = text.replace('<recv response="200" rtd="true"', '<recv response="200" rtd="true" rrs="true"', 1)
    # The ACK of a refused INVITE (after the label) goes to the edge as it is: no route set then.
    in_call, refused = text.split('<label id="ack_rejection"/>', 1)
    via = "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n"
    target = f" sip:{number}@[remote_ip]:[remote_port] SIP/2.0\n{via}"
    routed = f" [next_url] SIP/2.0\n{via}[routes]\n"
    for method in ("ACK", "INFO", "BYE"):
        if method + target not in in_call:
            raise RuntimeError(
                f"testbed.faults.caller_scenario changed: no {method} to route through the edge"
            )
        in_call = in_call.replace(method + target, method + routed)
    return in_call + '<label id="ack_rejection"/>' + refused


def sipp_totals(output: str) -> tuple[int, int]:
    """(successful, failed) from SIPp's final screen: the cumulative column of the last lines."""
    totals = {"Successful call": 0, "Failed call": 0}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("|")]
        if len(cells) >= 3 and cells[0] in totals and cells[2].isdigit():
            totals[cells[0]] = int(cells[2])
    return totals["Successful call"], totals["Failed call"]


# --- the cluster -----------------------------------------------------------------------------------


def free_base_port() -> int:
    """A base port with the 30 above it free (a cluster's ports count up from it)."""
    return free_base(6100, 9900)


@dataclass
class LoadStep:
    nodes: int
    offered_cps: float
    seconds: float
    calls: int
    successful: int
    failed: int
    routed: int
    routed_by_node: list[int]
    wall_s: float
    cpu_s: dict[str, float]

    @property
    def routed_cps(self) -> float:
        return round(self.routed / self.seconds, 1)

    def cpu_ms_per_call(self) -> dict[str, float]:
        return {
            name: round(cpu * 1000 / self.routed, 3) if self.routed else 0.0
            for name, cpu in self.cpu_s.items()
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "nodes": self.nodes,
            "offered_cps": self.offered_cps,
            "seconds": self.seconds,
            "calls": self.calls,
            "successful": self.successful,
            "failed": self.failed,
            "routed": self.routed,
            "routed_by_node": self.routed_by_node,
            "routed_cps": self.routed_cps,
            "wall_s": round(self.wall_s, 1),
            "cpu_ms_per_call": self.cpu_ms_per_call(),
        }


@dataclass
class ClusterBench:
    plan: Plan
    workdir: Path
    cluster: LocalCluster | None = None
    phone: EdgeSipp | None = None
    callers_csv: Path | None = None
    traces: list[DialplanTrace] = field(default_factory=list)
    fault_callers: subprocess.Popen[bytes] | None = None
    fault_log: Path | None = None
    asterisk_deaths: list[float] = field(default_factory=list)
    sipp: list[subprocess.Popen[str]] = field(default_factory=list)
    sandbox_twin: Path | None = None
    postgres_folder_made: Path | None = None

    # -- up ---------------------------------------------------------------------------------------
    def up(self) -> None:
        data_dir = self.workdir / "data"
        data_dir.mkdir(parents=True)
        base = load_settings(
            data_dir=data_dir,
            log_level="WARNING",
            asterisk={"instance_name": f"bn-bench-cluster-{os.getpid()}"},
            web={"port": free_port()},
        )
        ports = ClusterPorts(free_base_port())
        # As root `cluster up` keeps PostgreSQL outside the data folder; ours goes when we go.
        postgres_folder = Path("/var/lib/burgernet") / f"postgres-{ports.postgres}"
        if os.geteuid() == 0 and not postgres_folder.exists():
            self.postgres_folder_made = postgres_folder
        self.cluster = LocalCluster(base, NODES, ports, self.plan.participants)
        self.cluster.up()
        # What `cluster up`'s wait() does, without taking over our signals: the keepers restart
        # what dies (the faults below rely on them).
        for keeper in self.cluster.all_keepers():
            keeper.start_thread()
        first = self.cluster.supervisors[0]
        install = install_for(first.settings, log=lambda _line: None)
        if install.root is not None:
            self.sandbox_twin = install.root / str(self.workdir.resolve()).lstrip("/")
        for supervisor in self.cluster.supervisors:
            log_dir = install.inside(paths_for(supervisor.settings, install).layout.log)
            self.traces.append(DialplanTrace(log_dir))
        self.wait_until(self.whole, 180, "every serve answers FastAGI and every node SIP")
        self.callers_csv = self.write_callers()
        self.register_phone()

    def write_callers(self) -> Path:
        """Demo participants whose call the routing sends to exactly one active action (no
        menu), with the four digits of their postcode (keyed in if FastAGI has to ask)."""
        assert self.cluster is not None
        context = self.cluster.supervisors[0].context
        found: list[tuple[str, str]] = []
        with session_scope(context.sessions) as session:
            index = AreaIndex(repositories.active_actions(session))
            rows = session.execute(
                select(Participant.phone_e164, Participant.lon, Participant.lat, Participant.postcode).where(
                    Participant.opted_out.is_(False)
                )
            )
            for phone, lon, lat, postcode in rows:
                caller = Caller(kind=CallerKind.KNOWN, location=Location(lon, lat), postcode=postcode)
                if len(index.covering(caller)) == 1:
                    found.append(("0" + phone[3:], postcode[:4]))
        if len(found) < 10:
            raise RuntimeError(f"only {len(found)} demo participants are inside exactly one active action")
        log.warning("bench: %d callers routed to one action", len(found))
        path = self.workdir / "callers.csv"
        path.write_text("SEQUENTIAL\n" + "".join(f"{number};{';'.join(pc4)};\n" for number, pc4 in found))
        return path

    def register_phone(self) -> None:
        """c-mn-1's phone registers at the edge and answers every call it gets."""
        assert self.cluster is not None
        password = self.cluster.supervisors[0].demo_phone_password
        assert password is not None, "cluster up made no demo phone password"
        self.phone = EdgeSipp("127.0.0.1", self.cluster.ports.kamailio)
        port = port_block()
        self.phone.answerer("phone", "127.0.0.1", port, port_block())
        registered = self.phone.run(
            "register",
            register_scenario(PHONE, password, f"sip:{PHONE}@127.0.0.1:{port}", 200),
            host="127.0.0.1",
            port=port_block(),
            media_port=port_block(),
        )
        if not registered.ok:
            raise RuntimeError(f"{PHONE} did not register at the edge: {registered.output}")
        time.sleep(3)  # the nodes' qualify learns the phone's state

    # -- what runs where ----------------------------------------------------------------------------
    @property
    def kamailio(self) -> KamailioProcess:
        assert self.cluster is not None and self.cluster.kamailio is not None
        return self.cluster.kamailio

    @property
    def postgres(self) -> ManagedPostgres:
        assert self.cluster is not None and self.cluster.postgres is not None
        return self.cluster.postgres

    def redis_servers(self) -> dict[str, ManagedRedis]:
        assert self.cluster is not None
        return self.cluster.redis_servers

    def postmaster_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int((self.postgres.data_dir / "postmaster.pid").read_text().split()[0])
        return None

    def components(self) -> dict[str, list[int]]:
        """The root pids of each component, as they are now."""
        assert self.cluster is not None
        found: dict[str, list[int]] = {}

        def add(name: str, pid: int | None) -> None:
            if pid is not None:
                found.setdefault(name, []).append(pid)

        add("kamailio", self.kamailio.process.pid if self.kamailio.process is not None else None)
        for number, supervisor in enumerate(self.cluster.supervisors, start=1):
            add(f"asterisk_n{number}", supervisor.pid_of("asterisk"))
            add(f"serve_n{number}", supervisor.pid_of(health.SERVE))
            add("worker_panel", supervisor.pid_of(health.WORKER))
            add("worker_panel", supervisor.pid_of(health.PANEL))
        for server in self.redis_servers().values():
            add("redis", server.process.pid if server.process is not None else None)
        add("postgres", self.postmaster_pid())
        found.setdefault("worker_panel", [])
        return found

    def cpu(self, extra: dict[str, list[int]] | None = None) -> dict[str, float]:
        table = process_table()
        return {
            name: tree_cpu_seconds(pids, table)
            for name, pids in {**self.components(), **(extra or {})}.items()
        }

    def routed_so_far(self) -> list[int]:
        """Hand-offs (FastAGI decisions) each node's serve has logged."""
        assert self.cluster is not None
        counts = []
        for supervisor in self.cluster.supervisors:
            path = supervisor.logs_dir / "serve.log"
            counts.append(len(HANDOFF.findall(path.read_text(errors="replace"))) if path.is_file() else 0)
        return counts

    def whole(self) -> bool:
        """Every node answers SIP, every serve FastAGI, PostgreSQL and the Redis primary answer."""
        assert self.cluster is not None
        for supervisor in self.cluster.supervisors:
            a = supervisor.settings.asterisk
            if options_ping("127.0.0.1", a.sip_port, timeout=1.0) is None:
                return False
            if fastagi_probe("127.0.0.1", a.agi_port, 1.0).ok is not True:
                return False
        if not self.postgres.ping():
            return False
        sentinel = next(s for s in self.redis_servers().values() if isinstance(s, ManagedSentinel))
        primary = sentinel.primary_address()
        return primary is not None and any(
            s.port == primary[1] and s.ping()
            for s in self.redis_servers().values()
            if not isinstance(s, ManagedSentinel)
        )

    @staticmethod
    def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
        started = time.monotonic()
        while not condition():
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"{what}: not within {timeout:.0f} s")
            time.sleep(0.5)
        return time.monotonic() - started

    # -- the edge's node set ---------------------------------------------------------------------------
    def set_active_nodes(self, count: int) -> None:
        """Nodes 1..count take the carrier's calls; the others are disabled at the dispatcher
        (not probed, never chosen: idle, as a node not yet added would be)."""
        assert self.cluster is not None
        for node in range(1, NODES + 1):
            state = "a" if node <= count else "d"
            self._kamcmd(
                "dispatcher.set_state", state, str(NODE_SET), f"sip:127.0.0.1:{self.cluster.ports.sip(node)}"
            )
        listing = self._kamcmd("dispatcher.list")
        log.warning("bench: %d node(s) active at the edge", count)
        log.debug("%s", listing)

    def _kamcmd(self, *command: str) -> str:
        done = subprocess.run(
            [str(kamcmd_binary()), "-s", f"unix:{self.kamailio.ctl_socket}", *command],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if done.returncode != 0:
            raise RuntimeError(f"kamcmd {' '.join(command)}: {done.stdout}{done.stderr}")
        return done.stdout

    # -- load ---------------------------------------------------------------------------------------
    def _sipp_command(self, scenario: Path, rate: float, calls: int, limit: int) -> list[str]:
        assert self.cluster is not None and self.callers_csv is not None
        command = [SIPP, f"127.0.0.1:{self.cluster.ports.kamailio}", "-sf", str(scenario)]
        command += ["-inf", str(self.callers_csv), "-i", LOCAL_TRUNK_ADDRESS]
        command += ["-p", str(port_block()), "-mp", str(port_block())]
        command += ["-r", f"{rate:g}", "-m", str(calls), "-l", str(limit), "-nostdin"]
        return command

    def load_step(self, nodes: int, rate: float, seconds: float) -> LoadStep:
        """``rate`` calls/s from the carrier for ``seconds``; once every call is over, what was routed."""
        assert self.cluster is not None
        free_number = self.cluster.supervisors[0].settings.asterisk.free_number
        scenario = self.workdir / f"routed-{self.plan.hold_ms}.xml"
        scenario.write_text(
            caller_scenario(free_number, "[field0]", (), self.plan.hold_ms, None, through_edge=True)
        )
        calls = max(1, int(rate * seconds))
        limit = max(50, int(rate * (self.plan.hold_ms / 1000 + 10)))
        command = self._sipp_command(scenario, rate, calls, limit)
        command += ["-timeout", f"{int(seconds * 3 + 60)}s", "-timeout_error"]
        before_routed = self.routed_so_far()
        started = time.monotonic()
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=self.workdir
        )
        self.sipp.append(process)
        before_cpu = self.cpu({"sipp_load": [process.pid]})
        # Read SIPp's CPU before it exits (afterwards only we, its parent, could account for it).
        sipp_cpu = 0.0
        while process.poll() is None:
            sipp_cpu = tree_cpu_seconds([process.pid], process_table()) or sipp_cpu
            time.sleep(0.5)
        stdout, stderr = process.communicate()
        wall = time.monotonic() - started
        after_cpu = self.cpu()
        time.sleep(1.0)  # the last hand-offs reach the serve logs
        after_routed = self.routed_so_far()
        self.sipp.remove(process)
        successful, failed = sipp_totals(stdout)
        if successful + failed == 0:
            raise RuntimeError(f"SIPp said nothing useful: {stdout[-1500:]}{stderr[-1500:]}")
        cpu = {name: max(0.0, after_cpu.get(name, 0.0) - value) for name, value in before_cpu.items()}
        cpu["sipp_load"] = sipp_cpu - before_cpu["sipp_load"]
        routed_by_node = [after - before for after, before in zip(after_routed, before_routed, strict=True)]
        step = LoadStep(
            nodes, rate, seconds, calls, successful, failed, sum(routed_by_node), routed_by_node, wall, cpu
        )
        log.warning("bench: %s", step.as_dict())
        return step

    def idle_cpu(self, seconds: float) -> dict[str, float]:
        """Each component's CPU with no calls, in per cent of one core."""
        before = self.cpu()
        time.sleep(seconds)
        after = self.cpu()
        return {
            name: round((after.get(name, 0.0) - value) * 100 / seconds, 1) for name, value in before.items()
        }

    # -- faults ---------------------------------------------------------------------------------------
    def start_fault_callers(self) -> None:
        assert self.cluster is not None
        for trace in self.traces:
            trace.start()
        voice = write_voice(self.workdir / "voice.alaw")
        free_number = self.cluster.supervisors[0].settings.asterisk.free_number
        scenario = self.workdir / "fault-callers.xml"
        scenario.write_text(fault_caller_through_edge(free_number, int(self.plan.fault_hold_s * 1000), voice))
        self.fault_log = self.workdir / "fault-callers.log"
        command = self._sipp_command(scenario, self.plan.fault_rate, 10_000_000, 2000)
        command += ["-trace_logs", "-log_file", str(self.fault_log), "-recv_timeout", "60000"]
        command += ["-max_recv_loops", "10000", "-max_sched_loops", "10000"]
        self.fault_callers = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.workdir
        )

    def stop_fault_callers(self) -> None:
        """No new calls; the ones in progress end (or their caller gives up)."""
        process = self.fault_callers
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGUSR1)  # SIPp: place no more calls, finish the others
        try:
            process.wait(self.plan.fault_hold_s + 15)
        except subprocess.TimeoutExpired:
            process.terminate()
            process.wait(10)

    def inject(self, fault: str) -> float:
        """Break one thing; returns when the breaking is done (PostgreSQL started again...)."""
        assert self.cluster is not None
        if fault == "asterisk_node_kill":
            pid = self.cluster.supervisors[1].pid_of("asterisk")
            assert pid is not None
            # The keeper's process may be a wrapper (chroot): the whole tree dies, as in a crash.
            for victim in self._tree(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(victim, signal.SIGKILL)
            self.asterisk_deaths.append(time.time())
        elif fault == "serve_kill":
            pid = self.cluster.supervisors[0].pid_of(health.SERVE)
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
        elif fault == "redis_primary_kill":
            sentinel = next(s for s in self.redis_servers().values() if isinstance(s, ManagedSentinel))
            primary = sentinel.primary_address()
            assert primary is not None
            server = next(
                s
                for s in self.redis_servers().values()
                if not isinstance(s, ManagedSentinel) and s.port == primary[1]
            )
            assert server.process is not None
            os.kill(server.process.pid, signal.SIGKILL)
        elif fault == "postgres_restart":
            postgres = self.postgres
            postgres.stop()
            time.sleep(self.plan.postgres_down_s)
            postgres.start()
        else:
            raise ValueError(f"unknown fault {fault}")
        return time.time()

    @staticmethod
    def _tree(root: int) -> list[int]:
        table = process_table()
        tree, todo = [], [root]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(child for child, (parent, _cpu) in table.items() if parent == pid)
        return tree

    def routed_normally_since(self, since: float) -> bool:
        for trace in self.traces:
            trace.poll()
            if any(call.started_at >= since and call.routed_normally for call in trace.snapshot()):
                return True
        return False

    def run_period(self, name: str) -> tuple[Phase, float | None]:
        """One period of the steady callers; ``name`` a fault or "baseline". Also returns the
        seconds from the fault until every component answered again."""
        started = time.time()
        phase = Phase(name, started, started, started)
        whole_s: float | None = 0.0
        if name == "baseline":
            time.sleep(self.plan.baseline_s)
            phase.fault_at = phase.fault_done_at = time.time()
        else:
            time.sleep(self.plan.lead_s)
            phase.fault_at = time.time()
            try:
                phase.fault_done_at = self.inject(name)
            except Exception as exc:
                phase.error = f"fault not injected: {exc}"
                phase.fault_done_at = time.time()
            time.sleep(0.5)  # a killed process is gone, its port closed
            try:
                self.wait_until(self.whole, self.plan.recover_s, "whole again")
                whole_s = round(time.time() - phase.fault_at, 1)
            except RuntimeError:
                whole_s = None
                phase.system = "down"
            time.sleep(max(0.0, phase.fault_done_at + self.plan.observe_s - time.time()))
        now = time.time()
        with contextlib.suppress(RuntimeError):
            self.wait_until(lambda: self.routed_normally_since(now), self.plan.recover_s, "routing")
        phase.ended_at = time.time()
        log.warning("bench: period %s done after %.0f s", name, phase.ended_at - started)
        return phase, whole_s

    def run_faults(self, faults: Iterable[str]) -> list[tuple[PhaseResult, float | None]]:
        self.start_fault_callers()
        self.wait_until(
            lambda: self.routed_normally_since(time.time() - 5), 60, "the first routed fault call"
        )
        periods = [self.run_period(name) for name in ("baseline", *faults)]
        self.stop_fault_callers()
        seen: list[AsteriskCall] = []
        for trace in self.traces:
            trace.stop()
            seen += trace.snapshot()
        assert self.fault_log is not None
        offered = (
            parse_caller_log(self.fault_log.read_text(errors="replace")) if self.fault_log.exists() else []
        )
        phases = [phase for phase, _whole in periods]
        assigned = assign_to_phases(phases, join_calls(offered, seen))
        return [
            (
                summarise(phase, assigned[phase.name], self.asterisk_deaths, None, self.plan.fault_hold_s),
                whole_s,
            )
            for phase, whole_s in periods
        ]

    # -- down -----------------------------------------------------------------------------------------
    def down(self) -> None:
        for process in [*self.sipp, self.fault_callers]:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(10)
        for trace in self.traces:
            with contextlib.suppress(Exception):
                trace.stop()
        if self.phone is not None:
            self.phone.cleanup()
        if self.cluster is not None:
            self.cluster.down()
            for supervisor in self.cluster.supervisors:
                with contextlib.suppress(Exception):
                    supervisor.context.close()
        if self.postgres_folder_made is not None:
            shutil.rmtree(self.postgres_folder_made, ignore_errors=True)
        # The work folder's twin inside Asterisk's chroot (its data folder was bind-mounted
        # there): removed once nothing is mounted under it any more.
        twin = self.sandbox_twin
        if twin is not None:
            mounted = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
            if not any(point == str(twin) or point.startswith(f"{twin}/") for point in mounted):
                shutil.rmtree(twin, ignore_errors=True)


# --- figures ------------------------------------------------------------------------------------------


def sizing(step: LoadStep, edge: dict[str, Any]) -> dict[str, Any]:
    """Calls per second one core of each component carries, from the 2-node step's CPU per call:
    an Asterisk machine runs Asterisk and serve; the edge, Redis and PostgreSQL are shared."""
    per_call = step.cpu_ms_per_call()
    nodes = max(1, step.nodes)
    asterisk_ms = sum(per_call.get(f"asterisk_n{n}", 0.0) for n in range(1, nodes + 1))
    serve_ms = sum(per_call.get(f"serve_n{n}", 0.0) for n in range(1, nodes + 1))

    def per_core(ms: float) -> float | None:
        return round(1000 / ms, 1) if ms > 0 else None

    return {
        "from_step": {"nodes": step.nodes, "offered_cps": step.offered_cps},
        "ms_per_call": {
            "asterisk": round(asterisk_ms, 3),
            "serve": round(serve_ms, 3),
            "asterisk_machine": round(asterisk_ms + serve_ms, 3),
            "kamailio": per_call.get("kamailio", 0.0),
            "kamailio_bare": edge.get("kamailio_cpu_ms_per_call"),
            "redis": per_call.get("redis", 0.0),
            "postgres": per_call.get("postgres", 0.0),
        },
        "cps_per_core": {
            "asterisk_machine": per_core(asterisk_ms + serve_ms),
            "kamailio": per_core(per_call.get("kamailio", 0.0)),
            "kamailio_bare": per_core(float(edge.get("kamailio_cpu_ms_per_call") or 0.0)),
            "redis": per_core(per_call.get("redis", 0.0)),
            "postgres": per_core(per_call.get("postgres", 0.0)),
        },
        "rule": "calls/s of N Asterisk machines with C cores = N * C * cps_per_core.asterisk_machine, "
        "as long as the edge (cps_per_core.kamailio * its cores), Redis and PostgreSQL keep up; "
        "plan for about 70 % of it",
    }


def sizing_step(steps: list[LoadStep]) -> LoadStep:
    """The 2-node step that routed the most calls without a failed one (else the most routed):
    its CPU per call is the system's under load, not under overload."""
    two = [step for step in steps if step.nodes == NODES]
    clean = [step for step in two if step.failed == 0 and step.routed == step.calls]
    return max(clean or two, key=lambda step: step.routed)


def fault_table(results: list[tuple[PhaseResult, float | None]]) -> str:
    header = (
        f"{'period':<28} {'offered':>7} {'reached':>7} {'tip':>5} {'no-act':>6} {'dead':>5} {'cut':>4} "
        f"{'silence s':>9} {'recover s':>9} {'whole s':>7}"
    )
    lines = [header, "-" * len(header)]
    for r, whole_s in results:
        silence = f"{r.longest_silence_s:.1f}" if r.longest_silence_s is not None else "-"
        back = f"{r.routing_back_s:.1f}" if r.routing_back_s is not None else "never"
        whole = f"{whole_s:.1f}" if whole_s is not None else "never"
        lines.append(
            f"{r.title:<28} {r.offered:>7} {r.centralist:>7} {r.tip:>5} {r.no_action:>6} {r.dead_ended:>5} "
            f"{r.cut_by_crash:>4} {silence:>9} {back:>9} {whole:>7}{'  (' + r.error + ')' if r.error else ''}"
        )
    return "\n".join(lines)


def fault_figures(result: PhaseResult, whole_s: float | None) -> dict[str, Any]:
    return {
        "title": TITLES.get(result.name, result.name),
        "offered": result.offered,
        "reached": result.centralist,
        "tip": result.tip,
        "no_action": result.no_action,
        "dead_ended": result.dead_ended,
        "cut_by_crash": result.cut_by_crash,
        "new_calls_dead_ended": result.dead_ended - result.cut_by_crash,
        "longest_silence_s": result.longest_silence_s,
        "recover_s": result.routing_back_s,
        "whole_s": whole_s,
        "dead_end_examples": result.dead_end_examples,
        "error": result.error,
    }


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP end the run like Ctrl-C does: through the clean-up below."""

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {signum: signal.signal(signum, interrupt) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="CI-sized: one load step, short fault periods")
    parser.add_argument("--rates", help="offered calls/s of the load steps, comma-separated")
    parser.add_argument("--seconds", type=float, help="seconds of load per step")
    parser.add_argument("--participants", type=int)
    parser.add_argument("--faults", help=f"comma-separated subset of {','.join(FAULTS)} ('' for none)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs) afterwards")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    if args.rates:
        plan = replace(plan, rates=tuple(float(rate) for rate in args.rates.split(",")))
    if args.seconds:
        plan = replace(plan, seconds=args.seconds)
    if args.participants:
        plan = replace(plan, participants=args.participants)
    faults = FAULTS if args.faults is None else tuple(f for f in args.faults.split(",") if f)
    unknown = set(faults) - set(FAULTS)
    if unknown:
        parser.error(f"unknown faults: {', '.join(sorted(unknown))}")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)

    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="bn-bench-cluster-"))
    workdir.chmod(0o755)  # Asterisk (its own user) passes through it to the data folder
    bench = ClusterBench(plan, workdir)
    with stop_on_signals():
        try:
            edge = bare_edge(plan.edge_rate, plan.edge_seconds)
            log.warning("bench: bare edge %s", edge)
            bench.up()
            up_s = round(time.monotonic() - started)
            idle = bench.idle_cpu(plan.idle_s)
            steps: list[LoadStep] = []
            for rate in plan.rates:
                for nodes in (1, NODES):
                    bench.set_active_nodes(nodes)
                    time.sleep(1)
                    steps.append(bench.load_step(nodes, rate, plan.seconds))
            bench.set_active_nodes(NODES)
            results = bench.run_faults(faults) if faults else []
        finally:
            # A second Ctrl-C (a terminal sends one to SIPp and us alike; `timeout` sends two)
            # must not cut the clean-up short and leave the cluster running.
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(signum, signal.SIG_IGN)
            bench.down()
            if not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)

    best = {
        nodes: max((s for s in steps if s.nodes == nodes), key=lambda s: s.routed) for nodes in (1, NODES)
    }
    print("load steps:", file=sys.stderr)
    for step in steps:
        print(f"  {step.as_dict()}", file=sys.stderr)
    print(fault_table(results), file=sys.stderr)
    faulted = [(r, w) for r, w in results if r.name != "baseline"]
    print(
        json.dumps(
            {
                "benchmark": "cluster",
                "quick": args.quick,
                "cores": os.cpu_count(),
                "participants": plan.participants,
                "hold_ms": plan.hold_ms,
                "edge_bare": edge,
                "steps": [step.as_dict() for step in steps],
                "routed_cps": {f"nodes_{n}": best[n].routed_cps for n in best},
                "two_vs_one": round(best[NODES].routed / best[1].routed, 3) if best[1].routed else None,
                "cluster_vs_bare_edge": round(best[NODES].routed_cps / edge["achieved_cps"], 3)
                if edge.get("achieved_cps")
                else None,
                "idle_cpu_pct": idle,
                "sizing": sizing(sizing_step(steps), edge),
                "fault_rate_cps": plan.fault_rate,
                "faults": {r.name: fault_figures(r, w) for r, w in results},
                "target": "every fault: 0 new calls dead-ended (calls inside a killed Asterisk excepted)",
                "target_met": all(r.dead_ended - r.cut_by_crash == 0 for r, _w in faulted)
                if faulted
                else None,
                "up_s": up_s,
                "wall_s": round(time.monotonic() - started),
            }
        )
    )


if __name__ == "__main__":
    main()
