"""Alert calls of `burgernet cluster up --nodes 2` go out through both Asterisk nodes, only
through the live one while a node is down, and through both again once it is back.

The cluster is started by test_local_cluster's fixture, the way a user starts it. SIPp plays the
carrier's trunk for alert calls: every node's trunk points at it, and each INVITE's Via names the
node (its SIP port) that placed the call. The participants answer and hang up after a few seconds.
The tests run in file order, each on the state the one before left.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from burgernet.actions import AreaSpec
from burgernet.db import session_scope
from burgernet.domain import AreaKind
from burgernet.models import Broadcast, Delivery, Participant
from burgernet.settings import Settings, load_settings
from composition.cluster import ClusterPorts, node_settings
from composition.context import Context
from composition.postgres_server import ManagedPostgres
from testbed.ports import free_port
from testbed.sipp import SIPP
from testbed.sipp_phone import phone_scenario
from testbed.waiting import wait_for
from tests.cluster.test_local_cluster import (
    Cluster,
    _redis_password,
    cluster,  # noqa: F401 (the fixture: this module's cluster)
)

pytestmark = pytest.mark.asterisk

# Streets of their own near Eindhoven, one per broadcast, 1.4 km apart. The cluster's PostgreSQL
# keeps its data between runs (same base port, same folder): each run takes another latitude, so
# an earlier run's participants are not in this run's circles. 1000 demo participants are spread
# over the whole country, so a circle of 150 m rarely holds one; only our participants are checked.
_LATITUDE = 51.30 + 0.005 * (os.getpid() % 100)
SPOTS = [(5.4712 + 0.02 * street, _LATITUDE) for street in range(3)]
PARTICIPANTS = 6
HANG_UP_AFTER_MS = 4000
INVITE = re.compile(r"INVITE sip:(\d+)@")
VIA_PORT = re.compile(r"Via: SIP/2\.0/UDP [^:\s]+:(\d+)")


@dataclass
class Trunk:
    """The carrier's end of every node's trunk: SIPp answering each alert call, tracing its messages."""

    port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def trace(self) -> Path:
        return self.folder / "trunk-messages.log"

    def start(self) -> None:
        scenario = self.folder / "participant.xml"
        scenario.write_text(phone_scenario(f"answer-hangup-{HANG_UP_AFTER_MS}", 300))
        command = [SIPP, "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(self.port)]
        command += ["-mp", str(free_port()), "-nostdin", "-trace_msg", "-message_file", str(self.trace)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.folder
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def wait_traced(self, numbers: list[str]) -> dict[str, set[int]]:
        """:meth:`node_ports_of`, once SIPp has written every number's INVITE to its trace."""
        wait_for(lambda: all(self.node_ports_of(numbers).values()), 30, "every INVITE in the trunk's trace")
        return self.node_ports_of(numbers)

    def node_ports_of(self, numbers: list[str]) -> dict[str, set[int]]:
        """National number → the SIP ports of the nodes that sent it an INVITE."""
        text = self.trace.read_text(errors="replace") if self.trace.is_file() else ""
        seen: dict[str, set[int]] = {number: set() for number in numbers}
        invited: str | None = None  # the number of the INVITE being read, until its Via
        for line in text.splitlines():
            if (request := INVITE.match(line)) is not None:
                invited = request[1]
            elif invited is not None and (via := VIA_PORT.match(line)) is not None:
                if invited in seen:
                    seen[invited].add(int(via[1]))
                invited = None
        return seen


@pytest.fixture(scope="module", autouse=True)
def trunk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trunk]:
    """Before the cluster starts (autouse fixtures come first): its nodes' trunk is this SIPp."""
    trunk = Trunk(free_port(), tmp_path_factory.mktemp("trunk"))
    wanted = {
        "BURGERNET_ASTERISK__TRUNK_PORT": str(trunk.port),
        # Quick enough for the test; the calls of one broadcast still overlap (4 s each).
        "BURGERNET_BROADCAST__VOICE_CALLS_PER_SECOND": "3",
    }
    before = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    trunk.start()
    try:
        yield trunk
    finally:
        trunk.stop()
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass
class Alerts:
    """Participants and actions in the cluster's database, as the panel would make them."""

    context: Context
    made: list[str] = field(default_factory=list)

    def participants(self, spot: tuple[float, float], count: int) -> list[str]:
        """``count`` participants on ``spot`` who take alert calls; their national numbers."""
        # 06-1…: a mobile range phonenumbers knows (06-9… is not one; a stem from the clock
        # starting with 9 made every number invalid).
        stem = int(time.time()) % 10_000
        numbers = [f"+3161{stem:04d}{len(self.made) + n:03d}" for n in range(count)]
        self.made += numbers
        with session_scope(self.context.sessions) as session:
            for number in numbers:
                session.add(
                    Participant(
                        phone_e164=number,
                        postcode="5611AB",
                        lat=spot[1],
                        lon=spot[0],
                        channel_voice=True,
                        channel_sms=False,
                        created_at=datetime.now(UTC),
                    )
                )
        return ["0" + number.removeprefix("+31") for number in numbers]

    def start_action(self, spot: tuple[float, float]) -> int:
        view = self.context.actions.create(
            action_type="missing_child",
            title="Vermist kind Eindhoven",
            description="Jongen van acht met een rode fiets",
            region_code="OB",
            area=AreaSpec(AreaKind.CIRCLE, centre=spot, radius_m=150),
            actor="test",
        )
        self.context.actions.start(view.id, actor="test")
        return view.id

    def deliveries(self, action_id: int, numbers: list[str]) -> list[Delivery]:
        """The action's deliveries to the participants with these national numbers."""
        e164 = ["+31" + number.removeprefix("0") for number in numbers]
        with session_scope(self.context.sessions) as session:
            found = session.scalars(
                select(Delivery)
                .join(Broadcast)
                .join(Participant, Delivery.participant_id == Participant.id)
                .where(Broadcast.action_id == action_id, Participant.phone_e164.in_(e164))
            ).all()
            session.expunge_all()
            return list(found)

    def wait_answered(self, action_id: int, numbers: list[str], timeout: float = 90) -> list[Delivery]:
        def all_answered() -> bool:
            found = self.deliveries(action_id, numbers)
            return len(found) == len(numbers) and all(d.status == "answered" for d in found)

        try:
            wait_for(all_answered, timeout, "every participant's alert call answered")
        except AssertionError:
            states = [(d.id, d.status, d.attempts, d.last_error) for d in self.deliveries(action_id, numbers)]
            raise AssertionError(f"deliveries of action {action_id}: {states}") from None
        return self.deliveries(action_id, numbers)

    def leases(self, node: str) -> int:
        key = f"{self.context.settings.redis.key_prefix}slots:voice:trunk:{node}"
        return int(self.context.live.client.zcard(key))


def cluster_settings(started: Cluster) -> Settings:
    """Node 1's settings, as `cluster up` made them: the shared database and Redis."""
    ports = ClusterPorts(started.base_port)
    postgres_folder = (
        Path("/var/lib/burgernet") / f"postgres-{ports.postgres}"
        if os.geteuid() == 0
        else started.folder / "postgres"
    )
    return node_settings(
        load_settings(data_dir=started.data_dir),
        1,
        2,
        ports,
        database_url=ManagedPostgres(postgres_folder, ports.postgres).url,
        redis_password=_redis_password(started),
    )


@pytest.fixture(scope="module")
def alerts(cluster: Cluster) -> Iterator[Alerts]:  # noqa: F811
    context = Context(cluster_settings(cluster))
    try:
        yield Alerts(context)
    finally:
        context.close()


def test_alert_calls_go_out_through_both_nodes(
    cluster: Cluster,  # noqa: F811
    trunk: Trunk,
    alerts: Alerts,
) -> None:
    numbers = alerts.participants(SPOTS[0], PARTICIPANTS)
    action = alerts.start_action(SPOTS[0])
    answered = alerts.wait_answered(action, numbers)
    assert all(d.attempts == 1 for d in answered), [(d.id, d.attempts, d.last_error) for d in answered]
    through = trunk.wait_traced(numbers)
    assert all(len(ports) == 1 for ports in through.values()), through  # one call each, no double
    used = {port for ports in through.values() for port in ports}
    assert used == {cluster.node_port(1), cluster.node_port(2)}, f"through one node only: {through}"
    # Each node's channels are leased and given back on that node's hang-ups.
    wait_for(lambda: alerts.leases("n1") == alerts.leases("n2") == 0, 30, "every trunk channel released")


def test_a_node_that_is_down_gets_no_alert_call_and_none_is_lost(
    cluster: Cluster,  # noqa: F811
    trunk: Trunk,
    alerts: Alerts,
) -> None:
    # Node 1's Asterisk goes down, and stays down: its keeper (in `cluster up`) is held still.
    node1 = cluster.pid_of(_asterisk(cluster, 1))
    os.kill(cluster.process.pid, signal.SIGSTOP)
    try:
        os.kill(node1, signal.SIGKILL)
        time.sleep(1)  # the worker's AMI connection to node 1 closes with it
        numbers = alerts.participants(SPOTS[1], PARTICIPANTS)
        action = alerts.start_action(SPOTS[1])
        answered = alerts.wait_answered(action, numbers)
        # None lost, none failed first on the dead node: node 1 was never chosen.
        assert all(d.attempts == 1 for d in answered), [(d.id, d.attempts, d.last_error) for d in answered]
        through = trunk.wait_traced(numbers)
        assert through == {number: {cluster.node_port(2)} for number in numbers}, through
        wait_for(lambda: alerts.leases("n2") == 0, 30, "node 2's trunk channels released")
        assert alerts.leases("n1") == 0
    finally:
        os.kill(cluster.process.pid, signal.SIGCONT)
    # The node's supervisor brings it back.
    wait_for(lambda: _pids(_asterisk(cluster, 1)) - {node1}, 60, "node 1 restarted")


def test_a_node_that_is_back_takes_alert_calls_again(
    cluster: Cluster,  # noqa: F811
    trunk: Trunk,
    alerts: Alerts,
) -> None:
    # The worker's AMI client logs in again by itself (its back-off is at most 30 s).
    ami = f"127.0.0.1:{cluster.base_port + 11}"  # node 1's AMI: base + 10 n + 1
    worker_log = cluster.folder / "logs" / "n1" / "worker.log"

    def logged_in_again() -> bool:
        about_node1 = [line for line in worker_log.read_text().splitlines() if ami in line]
        return bool(about_node1) and f"AMI logged in to {ami}" in about_node1[-1]

    wait_for(logged_in_again, 90, "the worker's AMI connection to node 1 back")
    numbers = alerts.participants(SPOTS[2], PARTICIPANTS)
    action = alerts.start_action(SPOTS[2])
    alerts.wait_answered(action, numbers)
    through = trunk.wait_traced(numbers)
    used = {port for ports in through.values() for port in ports}
    assert used == {cluster.node_port(1), cluster.node_port(2)}, f"through one node only: {through}"


def _asterisk(started: Cluster, node: int) -> str:
    """What `pgrep -f` finds node ``node``'s Asterisk by."""
    return f"{started.environment['BURGERNET_ASTERISK__INSTANCE_NAME']}-n{node}/etc/asterisk.conf"


def _pids(pattern: str) -> set[int]:
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
    return {int(pid) for pid in found}
