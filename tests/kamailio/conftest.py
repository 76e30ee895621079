"""A real Kamailio edge, rendered by kamailio_conf, with SIPp peers on their own loopback addresses.

Who is who is decided by source address, as on a real network:

- Kamailio listens on 127.0.0.1:<edge port>;
- the "Asterisk nodes" are SIPp answerers on 127.0.0.1:<node ports> (dispatcher set 1);
- the carrier sends from 127.0.0.3 (kamailio.trunk_networks); a stranger from 127.0.0.4;
- the centralists' phones are on 127.0.0.1 (asterisk.centralist_networks 127.0.0.0/8).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from burgernet.centralists import sip_digest
from burgernet.settings import Settings, load_settings
from kamailio_conf.process import KamailioProcess
from kamailio_conf.render import CentralistCredential, KamailioPlan, RenderedEdge, render
from testbed.ports import port_block
from testbed.sipp_edge import EdgeSipp
from tests.asterisk.conftest import start_asterisk  # noqa: F401 - the real Asterisk node fixture

EDGE_HOST = "127.0.0.1"
TRUNK_HOST = "127.0.0.3"
STRANGER_HOST = "127.0.0.4"
PHONE_HOST = "127.0.0.1"
REALM = "burgernet"
FREE_NUMBER = "08000011"
CENTRALISTS = ("c-mn-1", "c-mn-2")


def sip_password(endpoint: str) -> str:
    return f"secret-{endpoint}"


def edge_plan() -> KamailioPlan:
    return KamailioPlan(
        tuple(CentralistCredential(e, sip_digest(e, REALM, sip_password(e))) for e in CENTRALISTS)
    )


def edge_settings(
    data_dir: Path,
    edge_port: int,
    node_ports: tuple[int, ...],
    asterisk: dict[str, object] | None = None,
    **kamailio: object,
) -> Settings:
    values: dict[str, object] = {
        "listen_address": EDGE_HOST,
        "listen_port": edge_port,
        "asterisk_nodes": [f"127.0.0.1:{port}" for port in node_ports],
        "trunk_networks": [f"{TRUNK_HOST}/32"],
        "probe_interval_seconds": 1,
        "failover_timeout_ms": 1000,
        "workers": 2,
        "log_level": "info",
    }
    values.update(kamailio)
    return load_settings(
        data_dir=data_dir,
        kamailio=values,
        asterisk={
            "sip_realm": REALM,
            "free_number": FREE_NUMBER,
            # The phones' network is 127.0.0.1 alone: the stranger and the flooder are outside it.
            "centralist_networks": [f"{PHONE_HOST}/32"],
            **(asterisk or {}),
        },
    )


def kamcmd(process: KamailioProcess, *command: str) -> str:
    """A kamcmd command on that instance's ctl socket (dispatcher.list, ul.dump, ...)."""
    completed = subprocess.run(
        ["kamcmd", "-s", f"unix:{process.ctl_socket}", *command],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    return completed.stdout


@dataclass
class Edge:
    """A running Kamailio and the SIPp peers around it."""

    rendered: RenderedEdge
    process: KamailioProcess
    sipp: EdgeSipp
    node_ports: tuple[int, ...]

    @property
    def port(self) -> int:
        return self.rendered.listen_port

    def rpc(self, *command: str) -> str:
        return kamcmd(self.process, *command)

    def node_flags(self) -> dict[int, str]:
        """Each node's dispatcher flags by port: "AP" active, "IP" inactive (both probing)."""
        flags: dict[int, str] = {}
        port = None
        for line in self.rpc("dispatcher.list").splitlines():
            line = line.strip()
            if line.startswith("URI:"):
                port = int(line.rsplit(":", 1)[1])
            elif line.startswith("FLAGS:") and port is not None:
                flags[port] = line.split(":", 1)[1].strip()
        return flags

    def start_nodes(self) -> None:
        for number, port in enumerate(self.node_ports, start=1):
            self.sipp.answerer(f"node{number}", "127.0.0.1", port, port_block())

    def log(self) -> str:
        return self.process.log_file.read_text(errors="replace")


StartEdge = Callable[..., Edge]


@pytest.fixture
def start_edge(tmp_path: Path) -> Iterator[StartEdge]:
    """Render and start an edge with two node ports (nodes not started); stopped after the test."""
    started: list[Edge] = []

    def start(nodes: int = 2, asterisk: dict[str, object] | None = None, **kamailio: object) -> Edge:
        directory = tmp_path / f"edge{len(started) + 1}"
        node_ports = tuple(port_block() for _ in range(nodes))
        settings = edge_settings(tmp_path, port_block(), node_ports, asterisk, **kamailio)
        rendered = render(directory, settings, edge_plan())
        process = KamailioProcess(rendered, directory / "kamailio.log")
        edge = Edge(rendered, process, EdgeSipp(EDGE_HOST, rendered.listen_port), node_ports)
        started.append(edge)
        process.start()
        return edge

    yield start
    for edge in started:
        edge.sipp.cleanup()
        edge.process.stop()
