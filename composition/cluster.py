"""``burgernet cluster up --nodes N``: a whole Burgernet cluster on one machine, in the foreground.

What a national platform runs on several machines, started here side by side so that it can be
tried, tested and failed over without them:

* **PostgreSQL** (:class:`composition.postgres_server.ManagedPostgres`): SQLite is refused in a
  cluster (``cluster.enabled``), since only one machine can open a file;
* **Redis with Sentinel**: a primary, a replica and three sentinels; every process finds the
  primary through the sentinels (``redis.sentinels``);
* **N Asterisk nodes**, each its own instance (folders ``<instance>-n<i>``, ports, RTP range)
  with the same rendered configuration, sharing their centralists' device states with each other
  (``asterisk.peer_nodes``) and reaching the phones through the edge (``asterisk.phone_proxy``);
* **N FastAGI/AMI servers** (``burgernet serve``), one per node;
* **Kamailio** in front: the carrier's calls are spread over the nodes, the phones register here;
* **a broadcast worker and the panel**, next to node 1; the worker places alert calls through
  every node's AMI (``asterisk.alert_nodes``), each on the node with the most free trunk channels.

Each node is a :class:`composition.runner.Supervisor` of its own (the one ``burgernet run``
uses), with that node's settings handed to its children as ``BURGERNET_*`` variables; the
engines (PostgreSQL, Redis, Kamailio) are kept by keepers of their own. SIGTERM or Ctrl-C stops
everything; ``burgernet cluster down`` sends that SIGTERM to a cluster started elsewhere.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

from burgernet.db import session_scope
from burgernet.secrets import SECRETS, create_missing_secrets, ensure_data_dir
from burgernet.settings import Settings, as_environment, load_settings
from composition.context import Context
from composition.postgres_server import ManagedPostgres, PostgresServerError
from composition.redis_server import ManagedRedis, ManagedSentinel, RedisServerError
from composition.runner import SUPERVISOR_BEAT_SECONDS, Supervisor
from composition.supervision import (
    Check,
    CheckResult,
    ChildSpec,
    HealthPolicy,
    Keeper,
    Restartable,
    restart_in_place,
)

if TYPE_CHECKING:  # imported where Kamailio is started: only a cluster needs it
    from kamailio_conf.process import KamailioProcess

log = logging.getLogger(__name__)

# Everything of the local cluster lives here, under the data folder: shared by the nodes.
CLUSTER_FOLDER = "cluster"
PID_FILE = "cluster.pid"
SENTINEL_SERVICE = "burgernet"
SENTINELS = 3
# Where a carrier's calls come from in the local cluster: a loopback address of their own, so
# Kamailio tells them from the phones (which register from 127.0.0.1) and from the nodes.
LOCAL_TRUNK_ADDRESS = "127.0.0.2"
MAX_NODES = 9


class ClusterError(click.ClickException):
    """The cluster cannot start (or stop); the message says why and what to do."""


@dataclass(frozen=True)
class ClusterPorts:
    """Every port of a local cluster, counted up from ``base`` (default 5100)."""

    base: int

    @property
    def kamailio(self) -> int:
        return self.base

    @property
    def postgres(self) -> int:
        return self.base + 1

    @property
    def redis_primary(self) -> int:
        return self.base + 2

    @property
    def redis_replica(self) -> int:
        return self.base + 3

    def sentinel(self, index: int) -> int:
        return self.base + 4 + index

    def sip(self, node: int) -> int:
        return self.base + 10 * node

    def ami(self, node: int) -> int:
        return self.base + 10 * node + 1

    def agi(self, node: int) -> int:
        return self.base + 10 * node + 2

    def rtp(self, node: int) -> tuple[int, int]:
        # 500 ports (250 calls) each, from 12500: clear of a single `burgernet run` (10000-10999).
        start = 12_000 + 500 * node
        return start, start + 499


def node_name(node: int) -> str:
    return f"n{node}"


def node_settings(
    base: Settings,
    node: int,
    nodes: int,
    ports: ClusterPorts,
    *,
    database_url: str,
    redis_password: str,
) -> Settings:
    """The settings of node ``node`` of ``nodes``: its own Asterisk instance and ports, the rest shared."""
    rtp_start, rtp_end = ports.rtp(node)
    asterisk = {
        "node_name": node_name(node),
        "instance_name": f"{base.asterisk.instance_name}-{node_name(node)}",
        "sip_port": ports.sip(node),
        "ami_port": ports.ami(node),
        "agi_port": ports.agi(node),
        # Each node falls back on the next node's FastAGI server (the last on the first's): a
        # serve that died or froze costs its callers one retry, not the failure path.
        "agi_backup": f"127.0.0.1:{ports.agi(node % nodes + 1)}" if nodes > 1 else "",
        "rtp_start": rtp_start,
        "rtp_end": rtp_end,
        "peer_nodes": [
            f"{node_name(other)}@127.0.0.1:{ports.sip(other)}"
            for other in range(1, nodes + 1)
            if other != node
        ],
        "phone_proxy": f"127.0.0.1:{ports.kamailio}",
        # The broadcast worker places alert calls on every node, each on the one with the most
        # free trunk channels (asterisk.trunk_channels on each node).
        "alert_nodes": [
            {"name": node_name(other), "ami_host": "127.0.0.1", "ami_port": ports.ami(other)}
            for other in range(1, nodes + 1)
        ],
        # The trunk, for a node, is the edge: carrier calls arrive from Kamailio's address.
        "trunk_host": "127.0.0.1",
    }
    return load_settings(
        data_dir=base.data_dir / CLUSTER_FOLDER,
        database={"url": database_url},
        redis={
            "url": f"redis://:{redis_password}@127.0.0.1:{ports.redis_primary}/0",
            "sentinels": [f"127.0.0.1:{ports.sentinel(index)}" for index in range(SENTINELS)],
            "sentinel_service": SENTINEL_SERVICE,
        },
        asterisk=asterisk,
        kamailio={
            "listen_port": ports.kamailio,
            "asterisk_nodes": [f"127.0.0.1:{ports.sip(other)}" for other in range(1, nodes + 1)],
            "trunk_networks": [f"{LOCAL_TRUNK_ADDRESS}/32"],
        },
        cluster={"enabled": True},
    )


def child_environment(settings: Settings) -> dict[str, str]:
    """A node's settings for its children, without the secrets: they read the secrets file."""
    secret_names = {spec.env_name for spec in SECRETS}
    return {name: value for name, value in as_environment(settings).items() if name not in secret_names}


@dataclass
class LocalCluster:
    base: Settings
    nodes: int
    ports: ClusterPorts
    participants: int
    stopping: threading.Event = field(default_factory=threading.Event)
    keepers: list[Keeper] = field(default_factory=list)
    supervisors: list[Supervisor] = field(default_factory=list)
    stops: list[tuple[str, object]] = field(default_factory=list)  # (what, stop()) in start order
    notes: list[str] = field(default_factory=list)
    # The engines it started, for whoever breaks them on purpose (benchmarks/cluster.py).
    postgres: ManagedPostgres | None = None
    redis_servers: dict[str, ManagedRedis] = field(default_factory=dict)
    kamailio: KamailioProcess | None = None

    @property
    def folder(self) -> Path:
        return self.base.data_dir / CLUSTER_FOLDER

    # -- engines ---------------------------------------------------------------------------------
    def keep(self, name: str, server: Restartable, check: Check) -> None:
        """A keeper for an engine this cluster started: restarted in place when it dies or fails."""
        assert server.process is not None
        spec = ChildSpec(
            name,
            name,
            start=restart_in_place(server),
            stop=lambda _process: server.stop(),
            health=HealthPolicy(check, start_grace=15.0),
        )
        self.keepers.append(Keeper(spec, server.process, self.stopping, lambda restart: None))

    def start_postgres(self) -> ManagedPostgres:
        # PostgreSQL runs as the postgres user, which may not enter the data folder (0750).
        folder = (
            Path("/var/lib/burgernet") / f"postgres-{self.ports.postgres}"
            if os.geteuid() == 0
            else self.folder / "postgres"
        )
        server = ManagedPostgres(folder, self.ports.postgres)
        try:
            server.start()
            server.wait_ready()
        except PostgresServerError as exc:
            raise ClusterError(f"PostgreSQL did not start: {exc}") from None
        self.postgres = server
        self.stops.append(("PostgreSQL", server.stop))
        self.notes.append(f"PostgreSQL: 127.0.0.1:{self.ports.postgres} (data in {server.data_dir})")
        return server

    def start_redis(self, password: str) -> None:
        redis_folder = self.folder / "redis"
        primary = ManagedRedis(self.ports.redis_primary, redis_folder / "primary", password=password)
        replica = ManagedRedis(
            self.ports.redis_replica,
            redis_folder / "replica",
            password=password,
            replica_of=("127.0.0.1", self.ports.redis_primary),
        )
        sentinels = [
            ManagedSentinel(
                self.ports.sentinel(index),
                redis_folder / f"sentinel-{index + 1}",
                ("127.0.0.1", self.ports.redis_primary),
                SENTINEL_SERVICE,
                password,
            )
            for index in range(SENTINELS)
        ]
        servers: list[tuple[str, ManagedRedis]] = [("redis primary", primary), ("redis replica", replica)]
        servers += [(f"sentinel {index + 1}", sentinel) for index, sentinel in enumerate(sentinels)]
        self.redis_servers = dict(servers)
        for name, server in servers:
            server.data_dir.mkdir(parents=True, exist_ok=True)
            try:
                server.start()
            except RedisServerError as exc:
                raise ClusterError(f"{name} did not start: {exc}") from None
            self.stops.append((name, server.stop))
            self._keep_redis(name, server)
        deadline = time.monotonic() + 15
        while sentinels[0].primary_address() is None:
            if time.monotonic() > deadline:
                raise ClusterError("the sentinels do not agree on a Redis primary")
            time.sleep(0.2)
        self.notes.append(
            f"Redis: primary 127.0.0.1:{self.ports.redis_primary}, "
            f"replica 127.0.0.1:{self.ports.redis_replica}, "
            f"sentinels {', '.join(str(self.ports.sentinel(i)) for i in range(SENTINELS))} "
            f"(service {SENTINEL_SERVICE})"
        )

    def _keep_redis(self, name: str, server: ManagedRedis) -> None:
        def pings() -> CheckResult:
            answered = server.ping()
            return CheckResult(answered, "" if answered else "no PONG")

        self.keep(name, server, pings)

    def start_kamailio(self, settings: Settings, context: Context) -> None:
        from kamailio_conf.plan import plan_from_database
        from kamailio_conf.process import KamailioError, KamailioProcess
        from kamailio_conf.render import KamailioRenderError, render

        with session_scope(context.sessions) as session:
            plan = plan_from_database(session)
        try:
            edge = render(self.folder / "kamailio", settings, plan)
        except KamailioRenderError as exc:
            raise ClusterError(str(exc)) from None
        process = KamailioProcess(edge, self.folder / "logs" / "kamailio.log")
        try:
            process.start()
        except KamailioError as exc:
            raise ClusterError(f"Kamailio did not start: {exc}") from None
        self.stops.append(("Kamailio", process.stop))
        self.kamailio = process

        self.keep(
            "kamailio",
            process,
            lambda: CheckResult(process.process is not None and process.process.poll() is None, "exited"),
        )
        self.notes.append(
            f"SIP edge (Kamailio): 127.0.0.1:{self.ports.kamailio}, dispatching to "
            + ", ".join(f"{host}:{port}" for host, port in edge.nodes)
        )

    # -- the whole ------------------------------------------------------------------------------
    def up(self) -> None:
        ensure_data_dir(self.folder)
        create_missing_secrets(self.folder)
        secrets = load_settings(data_dir=self.folder)
        postgres = self.start_postgres()
        self.start_redis(secrets.redis.password or _password_from(secrets.redis.url))
        settings = [
            node_settings(
                self.base,
                node,
                self.nodes,
                self.ports,
                database_url=postgres.url,
                redis_password=secrets.redis.password or _password_from(secrets.redis.url),
            )
            for node in range(1, self.nodes + 1)
        ]
        for node_number, node in enumerate(settings, start=1):
            supervisor = Supervisor(
                Context(node),
                self.participants if node_number == 1 else 0,
                stopping=self.stopping,
                child_environment=child_environment(node),
            )
            self.supervisors.append(supervisor)
        first = self.supervisors[0]
        first.ensure_redis()
        first.ensure_database()
        first.build_prompts()
        first.make_demo_phone()
        self.start_kamailio(settings[0], first.context)
        for supervisor in self.supervisors:
            supervisor.start_asterisk()
            supervisor.start_serve()
        first.start_worker()
        first.start_panel()

    def print_summary(self) -> None:
        first = self.supervisors[0]
        click.echo(f"\nBurgernet cluster is running: {self.nodes} Asterisk nodes. Ctrl-C stops everything.\n")
        for note in self.notes:
            click.echo(f"  {note}")
        for number, supervisor in enumerate(self.supervisors, start=1):
            a = supervisor.settings.asterisk
            click.echo(
                f"  Node {node_name(number)}: Asterisk SIP 127.0.0.1:{a.sip_port}, AMI {a.ami_port}, "
                f"FastAGI {a.agi_port}, logs {supervisor.logs_dir}"
            )
        for note in first.notes:
            click.echo(f"  {note}")
        free_number = first.settings.asterisk.free_number
        numbers = [number for number, _title in first.demo_callers()]
        if numbers:
            scenario, callers = self.write_caller_scenario(free_number, numbers)
            click.echo(
                "\n  The carrier's calls go to the edge; calls from "
                f"{LOCAL_TRUNK_ADDRESS} are the carrier's. Call as a demo participant:"
            )
            click.echo(
                f"    sipp 127.0.0.1:{self.ports.kamailio} -sf {scenario} -inf {callers} "
                f"-i {LOCAL_TRUNK_ADDRESS} -p 5099 -m 1"
            )
        if first.demo_phone_password is not None:
            click.echo(
                f"  Register a softphone at the edge 127.0.0.1:{self.ports.kamailio} as centralist c-mn-1, "
                f"password {first.demo_phone_password} (shown once)."
            )
        click.echo("")

    def write_caller_scenario(self, free_number: str, numbers: list[str]) -> tuple[Path, Path]:
        from asterisk_conf.sipp import caller_scenario

        folder = (self.folder / "sipp").resolve()
        folder.mkdir(parents=True, exist_ok=True)
        scenario = folder / "caller.xml"
        scenario.write_text(caller_scenario(free_number, "[field0]", (), 60_000, None, through_edge=True))
        callers = folder / "callers.csv"
        callers.write_text("SEQUENTIAL\n" + "".join(f"{number};\n" for number in numbers))
        return scenario, callers

    def wait(self) -> None:
        def request_stop(_signum: int, _frame: object) -> None:
            self.stopping.set()

        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, request_stop)
        for keeper in self.all_keepers():
            keeper.start_thread()
        while not self.stopping.wait(SUPERVISOR_BEAT_SECONDS):
            self.supervisors[0].beat()

    def all_keepers(self) -> list[Keeper]:
        return [*self.keepers, *(k for s in self.supervisors for k in s.keepers)]

    def down(self) -> None:
        """Stop the nodes (panel, worker, serve, Asterisk), then Kamailio, Redis and PostgreSQL."""
        self.stopping.set()
        for number, supervisor in reversed(list(enumerate(self.supervisors, start=1))):
            log.info("stopping node %s", node_name(number))
            with contextlib.suppress(Exception):
                supervisor.stop_all()
        for keeper in self.keepers:
            keeper.join(10)
        for name, stop in reversed(self.stops):
            log.info("stopping %s", name)
            with contextlib.suppress(Exception):
                stop()  # type: ignore[operator]
        log.info("the cluster has stopped")


def _password_from(url: str) -> str:
    from burgernet.settings import redis_url_password

    return redis_url_password(url) or ""


def pid_file(base: Settings) -> Path:
    return base.data_dir / CLUSTER_FOLDER / PID_FILE


def run_cluster(base: Settings, nodes: int, base_port: int, participants: int) -> None:
    if not 1 <= nodes <= MAX_NODES:
        raise ClusterError(f"--nodes must be 1 to {MAX_NODES}")
    marker = pid_file(base)
    if marker.exists() and _alive(int(marker.read_text().strip() or 0)):
        raise ClusterError(f"a cluster is already running here (pid in {marker}): burgernet cluster down")
    cluster = LocalCluster(base, nodes, ClusterPorts(base_port), participants)
    try:
        cluster.up()
        ensure_data_dir(marker.parent)
        marker.write_text(f"{os.getpid()}\n")
        cluster.print_summary()
        cluster.wait()
    finally:
        cluster.down()
        marker.unlink(missing_ok=True)


def stop_cluster(base: Settings, timeout: float = 120.0) -> int | None:
    """SIGTERM to the running `cluster up`; its pid, or None when none runs."""
    marker = pid_file(base)
    if not marker.exists():
        return None
    pid = int(marker.read_text().strip() or 0)
    if not _alive(pid):
        marker.unlink(missing_ok=True)
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            raise ClusterError(f"the cluster (pid {pid}) did not stop within {timeout:.0f} s")
        time.sleep(0.5)
    return pid


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (it exited, its parent has not reaped it yet) does not."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust the signal
    return stat[stat.rfind(")") + 2 :].split()[0] not in ("Z", "X")
