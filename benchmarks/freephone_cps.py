"""Calls per second to the free number: routed by our FastAGI, beside a static dialplan.

One run, same machine, same SIPp load for both: the real Asterisk sandbox, our FastAGI/AMI
service in this process, SIPp placing calls from registered participants (caller IDs from a
list) and one SIPp answering for every centralist. The two numbers dialled:

* the free number: Answer → AGI(freephone) (participant look-up, area match, team) →
  [burgernet-route] (prompt, Dial the owner);
* a static number: Answer → the same BN_TARGET variables set by the dialplan itself →
  the same [burgernet-route]. Everything but the FastAGI decision is identical.

Prints, per variant, the offered and achieved call rate, successful and failed calls, and
the FastAGI decision time (p50/p99) measured inside the server under that load; the last
line is one JSON object.

    python benchmarks/freephone_cps.py [--quick] [--rate CPS] [--seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from sqlalchemy import select, update

from asterisk_conf.instance import prepare
from asterisk_conf.plan import plan_from_database
from burgernet import db
from burgernet.actions import AreaSpec
from burgernet.db import session_scope
from burgernet.domain import AreaKind
from burgernet.models import Centralist, Participant
from burgernet.secrets import create_missing_secrets
from burgernet.settings import load_settings
from composition import demo
from composition.context import Context
from composition.redis_server import ManagedRedis
from ivr.app import TelephonyService
from recordings.catalogue import build_catalogue

# The SIP test peers live in the testbed package; a benchmark run as a script needs the repo on the path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from testbed.ports import port_block
from testbed.sipp import Sipp

STATIC_NUMBER = "08009999"
UTRECHT = (5.1214, 52.0907)


def static_dialplan(phone_contact_endpoint: str) -> str:
    # The same route context, with the targets fixed in the dialplan instead of decided by FastAGI.
    return f"""
[burgernet-freephone]
exten => {STATIC_NUMBER},1,Answer()
 same => n,Set(BN_CALL_KIND=inbound)
 same => n,Set(BN_TARGET_COUNT=1)
 same => n,Set(BN_TARGET_1=PJSIP/{phone_contact_endpoint})
 same => n,Set(BN_TIMEOUT_1=15)
 same => n,Goto(burgernet-route,s,1)
"""


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rate", type=float, help="calls per second offered")
    parser.add_argument("--seconds", type=float, help="how long the load lasts")
    parser.add_argument("--participants", type=int)
    args = parser.parse_args()
    rate = args.rate or (20.0 if args.quick else 60.0)
    seconds = args.seconds or (10.0 if args.quick else 30.0)
    participants = args.participants or (20_000 if args.quick else 200_000)
    calls = int(rate * seconds)

    workdir = Path(tempfile.mkdtemp(prefix="bn-bench-cps-"))
    redis_server = ManagedRedis(port_block(), workdir / "redis")
    redis_server.start()
    sipp = Sipp(0)
    try:
        create_missing_secrets(workdir)  # Asterisk's AMI user needs its secret
        settings = load_settings(
            data_dir=workdir,
            log_level="WARNING",
            database={"url": f"sqlite:///{workdir / 'bench.db'}"},
            redis={"url": redis_server.url, "key_prefix": "bench:"},
            asterisk={
                "sip_port": port_block(),
                "ami_port": port_block(),
                "agi_port": port_block(),
                "trunk_port": port_block(),
                "rtp_start": 20000,
                "rtp_end": 40000,
                "instance_name": f"bench-{port_block()}",
                "owner_ring_seconds": 15,
            },
        )
        sipp.asterisk_port = settings.asterisk.sip_port
        context = Context(settings)
        db.upgrade(settings.database_url)
        rng = np.random.default_rng(3)
        with session_scope(context.sessions) as session:
            demo.seed_regions(session, rng)
        with session_scope(context.sessions) as session:
            demo.seed_participants(session, participants, rng)
        # One action around Utrecht; every caller lives inside it.
        view = context.actions.create(
            action_type="missing_child",
            title="Benchmark",
            region_code="MN",
            area=AreaSpec(AreaKind.CIRCLE, centre=UTRECHT, radius_m=300_000),
            team=["c-mn-1"],
            actor="bench",
        )
        context.actions.start(view.id, actor="bench")
        phone_port = port_block()
        with session_scope(context.sessions) as session:
            session.execute(update(Centralist).values(sip_contact=f"sip:phone@127.0.0.1:{phone_port}"))
            plan = plan_from_database(session, settings)
            numbers = [
                "0" + phone[3:]
                for phone in session.scalars(
                    select(Participant.phone_e164).where(Participant.opted_out.is_(False)).limit(calls)
                )
            ]
        build_catalogue(settings=settings, langs=["nl"])
        asterisk = prepare(settings, plan, log=lambda line: print(line, file=sys.stderr))
        (asterisk.config_dir / "extensions_custom.conf").write_text(static_dialplan("c-mn-1"))
        asterisk.instance.start()

        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        service = TelephonyService(Context(settings))
        asyncio.run_coroutine_threadsafe(service.start(), loop).result(30)
        sipp.answer_all(phone_port, port_block())
        time.sleep(0.5)

        results: dict[str, dict[str, float | int]] = {}
        for name, number in (("static", STATIC_NUMBER), ("fastagi", settings.asterisk.free_number)):
            before = len(service.agi.flow_durations)
            started = time.perf_counter()
            result = sipp.call(
                "unused",
                number,
                local_port=port_block(),
                media_port=port_block(),
                hold_ms=4500,
                calls=calls,
                rate=rate,
                timeout_s=seconds * 4 + 60,
                callers=numbers,
            )
            elapsed = time.perf_counter() - started
            decisions = [d * 1000 for d in list(service.agi.flow_durations)[before:]]
            figures: dict[str, float | int] = {
                "offered_cps": rate,
                "calls": calls,
                "successful": result.successful,
                "failed": result.failed,
                "achieved_cps": round(result.successful / seconds, 1),
                "wall_s": round(elapsed, 1),
            }
            if decisions:
                figures["agi_p50_ms"] = round(statistics.median(decisions), 2)
                figures["agi_p99_ms"] = round(percentile(decisions, 0.99), 2)
            results[name] = figures
            print(f"{name}: {figures}", file=sys.stderr)
            time.sleep(2)

        asyncio.run_coroutine_threadsafe(service.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        asterisk.instance.remove()
        context.close()
        static_ok = max(1, int(results["static"]["successful"]))
        ratio = round(int(results["fastagi"]["successful"]) / static_ok, 3)
        print(
            json.dumps(
                {
                    "benchmark": "freephone_cps",
                    "participants": participants,
                    "rate_cps": rate,
                    "seconds": seconds,
                    "static": results["static"],
                    "fastagi": results["fastagi"],
                    "fastagi_vs_static": ratio,
                    "target": ">= 0.9 of static with 0 failed calls",
                    "target_met": ratio >= 0.9 and results["fastagi"]["failed"] == 0,
                }
            )
        )
    finally:
        sipp.cleanup()
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
