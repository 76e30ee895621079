"""Calls per second through the Kamailio edge, beside the same calls straight to the responder.

One run, same machine, same SIPp load for both: a SIPp caller on the carrier's address places
calls to the free number (INVITE, 200, ACK, BYE) at the offered rate, answered by SIPp
responders standing in for the Asterisk nodes:

* ``direct``: the caller talks to one responder itself (the baseline: SIPp against SIPp);
* ``edge``: the caller talks to Kamailio (the rendered kamailio.cfg, 4 workers), which spreads
  the calls over two responders (dispatcher, round robin) and stays in the dialog
  (Record-Route: ACK and BYE cross it too).

Reports, per variant, the offered and achieved call rate and the failed calls, and for the
edge the CPU Kamailio used per call (all its processes, from /proc), so the edge's share of a
machine at N calls per second can be computed. The last line is one JSON object.

    python benchmarks/kamailio_edge.py [--quick] [--rate CPS] [--seconds S]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from burgernet.settings import load_settings
from kamailio_conf.process import KamailioProcess
from kamailio_conf.render import KamailioPlan, render

# The SIP test peers live in the testbed package; a benchmark run as a script needs the repo on the path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from testbed.ports import port_block
from testbed.sipp_edge import EdgeSipp, call_scenario

CARRIER = "127.0.0.3"
FREE_NUMBER = "08000011"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_group_cpu_seconds(group: int) -> float:
    """User + system CPU of every live process in ``group`` (Kamailio's main process and workers)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state ppid pgrp ... utime(12th) stime(13th), counted from state.
        if int(fields[2]) == group:
            total += int(fields[11]) + int(fields[12])
    return total / _CLOCK_TICKS


def run_load(sipp: EdgeSipp, name: str, rate: float, seconds: float) -> dict[str, float]:
    calls = max(1, int(rate * seconds))
    started = time.monotonic()
    result = sipp.run(
        name,
        call_scenario(hold_ms=0),
        host=CARRIER,
        port=port_block(),
        media_port=port_block(),
        service=FREE_NUMBER,
        calls=calls,
        rate=rate,
        concurrent=max(10, int(rate * 2)),
        timeout_s=seconds * 3 + 30,
    )
    elapsed = time.monotonic() - started
    successful = _successful_calls(result.output)
    return {
        "offered_cps": rate,
        "calls": calls,
        "failed": calls - successful,  # failed, timed out or never finished
        "achieved_cps": round(successful / elapsed, 1),
        "seconds": round(elapsed, 2),
    }


def _successful_calls(output: str) -> int:
    # SIPp's final screen: "Successful call | <periodic> | <cumulative>"; the last such line wins.
    successful = 0
    for line in output.splitlines():
        if line.strip().startswith("Successful call"):
            cells = [cell.strip() for cell in line.split("|")]
            if len(cells) >= 3 and cells[2].isdigit():
                successful = int(cells[2])
    return successful


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (for CI and a first look)")
    parser.add_argument("--rate", type=float, default=None, help="offered calls per second")
    parser.add_argument("--seconds", type=float, default=None, help="seconds of load per variant")
    arguments = parser.parse_args()
    rate = arguments.rate or (50.0 if arguments.quick else 150.0)
    seconds = arguments.seconds or (4.0 if arguments.quick else 20.0)

    workdir = Path(tempfile.mkdtemp(prefix="bn-bench-edge-"))
    nodes = (port_block(), port_block())
    settings = load_settings(
        data_dir=workdir,
        kamailio={
            "listen_port": port_block(),
            "asterisk_nodes": [f"127.0.0.1:{port}" for port in nodes],
            "trunk_networks": [f"{CARRIER}/32"],
            "dispatcher_algorithm": "round_robin",
            "log_level": "warning",
        },
        asterisk={"free_number": FREE_NUMBER, "centralist_networks": ["127.0.0.1/32"]},
    )
    edge = render(workdir / "edge", settings, KamailioPlan(()))
    kamailio = KamailioProcess(edge, workdir / "kamailio.log")
    through_edge = EdgeSipp(edge.listen_address, edge.listen_port)
    direct = EdgeSipp("127.0.0.1", nodes[0])
    kamailio.start()
    try:
        for number, port in enumerate(nodes, start=1):
            through_edge.answerer(f"node{number}", "127.0.0.1", port, port_block())
        time.sleep(1.0)
        baseline = run_load(direct, "direct", rate, seconds)
        assert kamailio.process is not None
        cpu_before = process_group_cpu_seconds(kamailio.process.pid)
        measured = run_load(through_edge, "edge", rate, seconds)
        cpu = process_group_cpu_seconds(kamailio.process.pid) - cpu_before
        answered = measured["calls"] - measured["failed"]
        measured["kamailio_cpu_ms_per_call"] = round(cpu * 1000 / answered, 3) if answered else 0.0
    finally:
        through_edge.cleanup()
        direct.cleanup()
        kamailio.stop()
        shutil.rmtree(workdir, ignore_errors=True)  # one folder per run otherwise piles up in /tmp

    print(f"direct (SIPp to SIPp): {baseline}")
    print(f"through the edge:      {measured}")
    print(
        json.dumps(
            {
                "benchmark": "kamailio_edge",
                "quick": arguments.quick,
                "cores": os.cpu_count(),
                "direct": baseline,
                "edge": measured,
                "edge_vs_direct": round(measured["achieved_cps"] / baseline["achieved_cps"], 3)
                if baseline["achieved_cps"]
                else None,
            }
        )
    )


if __name__ == "__main__":
    main()
