"""The SIP edge for real: Kamailio running the rendered configuration, SIPp on every side of it."""

from __future__ import annotations

import socket
import time

from kamailio_conf.process import options_ping
from testbed.ports import port_block
from testbed.sipp_edge import (
    call_scenario,
    phone_call_scenario,
    refused_scenario,
    register_scenario,
    unchallenged_register_scenario,
)

from .conftest import (
    FREE_NUMBER,
    PHONE_HOST,
    STRANGER_HOST,
    TRUNK_HOST,
    Edge,
    StartEdge,
    sip_password,
)


def _invites(edge: Edge, node: str) -> int:
    return edge.sipp.messages(node).count("INVITE sip:")


def _trunk_calls(edge: Edge, calls: int, name: str = "trunk", **options: object) -> None:
    result = edge.sipp.run(
        name,
        call_scenario(**options),  # type: ignore[arg-type]
        host=TRUNK_HOST,
        port=port_block(),
        media_port=port_block(),
        service=FREE_NUMBER,
        calls=calls,
    )
    assert result.ok, result.output + edge.process.log_tail()


def _wait_for_flags(edge: Edge, port: int, wanted: str, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if edge.node_flags().get(port) == wanted:
            return
        time.sleep(0.2)
    raise AssertionError(
        f"node {port} is {edge.node_flags().get(port)}, not {wanted}:\n{edge.process.log_tail()}"
    )


def test_the_carrier_s_calls_to_the_free_number_are_spread_over_the_nodes(start_edge: StartEdge) -> None:
    edge = start_edge()
    edge.start_nodes()
    _wait_for_flags(edge, edge.node_ports[0], "AP", within_s=5)

    _trunk_calls(edge, calls=4)

    # Round robin: both nodes took calls, and every call was answered through the edge.
    assert _invites(edge, "node1") == 2
    assert _invites(edge, "node2") == 2
    assert "Record-Route: <sip:127.0.0.1:" in edge.sipp.messages("node1")


def test_only_the_carrier_may_call_and_only_the_free_number(start_edge: StartEdge) -> None:
    edge = start_edge()
    edge.start_nodes()
    stranger = edge.sipp.run(
        "stranger",
        refused_scenario(403),
        host=STRANGER_HOST,
        port=port_block(),
        media_port=port_block(),
        service=FREE_NUMBER,
    )
    other_number = edge.sipp.run(
        "other-number",
        refused_scenario(404),
        host=TRUNK_HOST,
        port=port_block(),
        media_port=port_block(),
        service="0201234567",
    )

    assert stranger.ok, stranger.output
    assert other_number.ok, other_number.output
    assert _invites(edge, "node1") + _invites(edge, "node2") == 0
    # Kamailio answers OPTIONS sent to itself, from anyone (keepalives).
    assert options_ping(edge.rendered.listen_address, edge.port) == 200


def _forged_in_dialog_request(edge: Edge, source: str, target_port: int) -> int | None:
    """A BYE that pretends to belong to a dialog through the edge, aimed at a node."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(1.0)
        host, port = sock.getsockname()
        request = (
            f"BYE sip:x@127.0.0.1:{target_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bKforged{port};rport\r\n"
            f"Route: <sip:{edge.rendered.listen_address}:{edge.port};lr>\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:a@{host}>;tag=forged\r\n"
            f"To: <sip:x@127.0.0.1>;tag=forged-too\r\n"
            f"Call-ID: forged-{port}\r\n"
            "CSeq: 2 BYE\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        sock.sendto(request.encode(), (edge.rendered.listen_address, edge.port))
        try:
            return int(sock.recv(65535).split(b" ", 2)[1])
        except TimeoutError:
            return None


def test_a_stranger_cannot_use_the_edge_as_a_relay(start_edge: StartEdge) -> None:
    edge = start_edge()
    edge.start_nodes()

    assert _forged_in_dialog_request(edge, STRANGER_HOST, edge.node_ports[0]) == 403

    assert "forged" not in edge.sipp.messages("node1")


def test_a_dead_node_is_probed_out_and_new_calls_reach_the_other(start_edge: StartEdge) -> None:
    edge = start_edge(probe_interval_seconds=1)
    edge.start_nodes()
    dead, alive = edge.node_ports
    _wait_for_flags(edge, dead, "AP", within_s=5)

    edge.sipp.kill("node1")
    # One probe interval, plus the probe's own timeout (failover_timeout_ms), and a margin.
    _wait_for_flags(edge, dead, "IP", within_s=1 + 1.0 + 6)
    _trunk_calls(edge, calls=3, name="after-probe")

    assert _invites(edge, "node2") == 3
    assert edge.node_flags()[alive] == "AP"
    # The calls went straight to the live node: none needed the failure route.
    assert "goes to the next node" not in edge.log()


def test_a_call_to_a_node_that_died_unnoticed_fails_over_within_the_call(start_edge: StartEdge) -> None:
    # Probes far apart: the dead node is still marked active when the calls come.
    edge = start_edge(probe_interval_seconds=300, failover_timeout_ms=1000)
    edge.start_nodes()
    dead = edge.node_ports[0]
    edge.sipp.kill("node1")
    assert edge.node_flags()[dead].startswith("A")  # active (not probed yet)

    # Round robin hands one of the two calls to the dead node first; the caller must still be
    # answered, by the other node, well before its own 4 s patience runs out.
    _trunk_calls(edge, calls=2, name="unnoticed", answer_within_ms=4000)

    assert _invites(edge, "node2") == 2
    assert "goes to the next node" in edge.log()
    # The failure route took the dead node out until a probe succeeds again.
    assert edge.node_flags()[dead].startswith("I")


def test_a_call_gets_503_when_every_node_is_down(start_edge: StartEdge) -> None:
    edge = start_edge(failover_timeout_ms=500)  # nodes never started

    refused = edge.sipp.run(
        "no-nodes",
        refused_scenario(503),
        host=TRUNK_HOST,
        port=port_block(),
        media_port=port_block(),
        service=FREE_NUMBER,
        timeout_s=15,
    )

    assert refused.ok, refused.output + edge.process.log_tail()


def _register(edge: Edge, endpoint: str, password: str, contact_port: int, expected: int, name: str) -> bool:
    contact = f"sip:{endpoint}@{PHONE_HOST}:{contact_port}"
    result = edge.sipp.run(
        name,
        register_scenario(endpoint, password, contact, expected),
        host=PHONE_HOST,
        port=port_block(),
        media_port=port_block(),
    )
    return result.ok


def test_phones_register_with_their_digest_and_nodes_reach_them_through_the_edge(
    start_edge: StartEdge,
) -> None:
    edge = start_edge(nodes=1)
    phone_port = port_block()
    edge.sipp.answerer("phone", PHONE_HOST, phone_port, port_block())

    assert _register(edge, "c-mn-1", sip_password("c-mn-1"), phone_port, 200, "register")
    assert f"sip:c-mn-1@{PHONE_HOST}:{phone_port}" in edge.rpc("ul.dump")

    # The node (on its own address and port) calls the centralist by name at the edge.
    node_port = edge.node_ports[0]
    call = edge.sipp.run(
        "node-calls-centralist",
        call_scenario(),
        host="127.0.0.1",
        port=node_port,
        media_port=port_block(),
        service="c-mn-1",
    )
    assert call.ok, call.output + edge.process.log_tail()
    assert "INVITE sip:c-mn-1@" in edge.sipp.messages("phone")

    # A centralist whose phone is not registered is "not found": Asterisk rings the next one.
    unregistered = edge.sipp.run(
        "node-calls-absent",
        refused_scenario(404),
        host="127.0.0.1",
        port=node_port,
        media_port=port_block(),
        service="c-mn-2",
    )
    assert unregistered.ok, unregistered.output


def test_a_phone_s_call_out_is_authenticated_and_goes_to_a_node(start_edge: StartEdge) -> None:
    edge = start_edge()
    edge.start_nodes()

    call = edge.sipp.run(
        "call-back",
        phone_call_scenario("c-mn-1", sip_password("c-mn-1")),
        host=PHONE_HOST,
        port=port_block(),
        media_port=port_block(),
        service="0612345678",
    )
    wrong = edge.sipp.run(
        "call-back-wrong-password",
        phone_call_scenario("c-mn-1", "not-the-password", expected=403),
        host=PHONE_HOST,
        port=port_block(),
        media_port=port_block(),
        service="0612345678",
    )

    assert call.ok, call.output + edge.process.log_tail()
    assert wrong.ok, wrong.output
    node_side = edge.sipp.messages("node1") + edge.sipp.messages("node2")
    assert node_side.count("INVITE sip:0612345678@") == 1
    # The edge kept the phone's credentials to itself.
    assert "Proxy-Authorization" not in node_side


def test_a_wrong_password_a_foreign_account_or_a_foreign_network_is_refused(start_edge: StartEdge) -> None:
    edge = start_edge(nodes=1)  # phones: 127.0.0.1 only
    phone_port = port_block()

    assert _register(edge, "c-mn-1", "not-the-password", phone_port, 403, "wrong-password")
    assert _register(edge, "c-xx-9", "whatever", phone_port, 403, "unknown-account")
    # The right account from outside the phone networks is not even challenged.
    outside = edge.sipp.run(
        "outside-network",
        unchallenged_register_scenario("c-mn-1", 403),
        host=STRANGER_HOST,
        port=port_block(),
        media_port=port_block(),
    )
    assert outside.ok, outside.output
    assert "c-mn-1" not in edge.rpc("ul.dump")
    assert "not-the-password" not in edge.log()


def test_a_flood_from_one_address_is_banned(start_edge: StartEdge) -> None:
    edge = start_edge(nodes=1, pike_window_seconds=2, pike_max_requests=20, ban_seconds=60)
    flooder = "127.0.0.5"
    assert options_ping(edge.rendered.listen_address, edge.port) == 200

    # 100 INVITEs a second for two seconds from one address: far over 20 in 2 s.
    edge.sipp.run(
        "flood",
        refused_scenario(403),
        host=flooder,
        port=port_block(),
        media_port=port_block(),
        service=FREE_NUMBER,
        calls=200,
        rate=100,
        concurrent=200,
        timeout_s=4,
    )

    assert "edge: flood from 127.0.0.5" in edge.log()
    # Banned: nothing at all comes back to that address any more, not even for OPTIONS...
    assert options_ping(edge.rendered.listen_address, edge.port, timeout=1.0, source=flooder) is None
    # ...while everyone else is still served.
    assert options_ping(edge.rendered.listen_address, edge.port, source=STRANGER_HOST) == 200
    assert edge.sipp.run(
        "stranger-after-ban",
        refused_scenario(403),
        host=STRANGER_HOST,
        port=port_block(),
        media_port=port_block(),
        service=FREE_NUMBER,
    ).ok
