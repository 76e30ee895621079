"""Fault injection under call load: does the free number survive every single fault?

One system, started the way a user starts it (``burgernet run``, the supervisor) in a temporary
data directory on free ports, by :class:`testbed.faults.FaultRig`:

* SIPp callers to the free number at a steady rate (20 calls/s; --quick 3), each a demo
  participant whose call the routing sends to exactly one active action, each keying their
  postcode if asked, sending a looped voice and giving up after 30 s if nobody hangs up on them;
  plus 0.5 calls/s from callers of their own whose audio is captured (the "heard" column);
* a SIPp phone registered for every centralist of those actions and their regions, answering
  after 0.5 s and hanging up after 2.5 s;
* for every period below, a new action started in an area far from the callers, so its alert
  broadcast (SMS to a Twilio-speaking test server, e-mail to a test SMTP server) is running
  while the fault happens.

Periods, one after the other, same load: first a **baseline** without a fault, then each fault:
``kill -9`` of ``burgernet serve``; ``SIGSTOP`` of serve for 10 s (then ``SIGCONT``); Redis
stopped for 30 s (--quick 10 s); Asterisk killed (the supervisor should start it again); the
worker killed (``kill -9``) mid-broadcast; every AMI session cut (``manager kick session``);
PostgreSQL stopped and started again (PostgreSQL mode, the default here: the whole run uses
PostgreSQL so every fault is in one run; ``--sqlite`` runs the others on SQLite). Redis and
PostgreSQL are servers of the rig's own that ``burgernet run`` finds answering, as a deployment
would have them. When ``burgernet run`` exits after a fault (it gives up on a dead child), the
rig starts it again, as an operator would, and says so in the "system" column.

Per period, the columns:

* **offered**: calls placed by SIPp (INVITE sent) during the period, or before it and still
  going when its fault came;
* **centralist / tip / no-action**: how many reached a centralist (the dialplan set
  ``BN_OUTCOME=connected``), the tip recording (``Record()`` ran) or the no-action message;
* **dead**: dead-ended calls (must be 0): the INVITE failed or was refused, or the channel
  ended without any of the three outcomes (hung up by us, or silence until the caller gave up);
  a call counts against the first fault it lived through;
* **cut**: of the dead-ended, calls that were inside Asterisk when Asterisk itself died: they
  go down with it whatever the rest of the system does (shown, but the target and the test
  leave them out for the Asterisk fault only);
* **silence s**: the longest silence any caller heard, from the answer until the call had an
  outcome (a centralist's phone ringing, the tip recording, the no-action message) or ended,
  from the dialplan's time stamps (every call);
* **heard s**: the same, measured in the audio the probe callers received: the longest run of
  20 ms frames without sound (a sample of the calls, the ground truth for the column before);
* **back s**: seconds from the fault until normal routing was back: after this moment every
  call was routed by FastAGI (``[burgernet-route]`` or a FastAGI-chosen tip), none by the
  failure path and none dead-ended ("never" when the period ended without it);
* **dial %**: share of the period's calls that FastAGI sent to ring a centralist (stale
  presence after an outage shows as fewer rings and more tips);
* **lost / doubled**: of the period's broadcast, recipients (per channel, from
  ``select_recipients`` on the action's area) who got nothing at the test SMS/SMTP server, and
  messages beyond the first to the same recipient (both must be 0);
* **resent**: e-mails received a second time with the *same* Message-ID. A worker killed
  between the SMTP server's "250" and reading it leaves no trace of the acceptance, and an
  SMTP server cannot be asked afterwards, so that e-mail is sent again, as the same message
  (mail systems that keep one copy per Message-ID show it once). Reported, not counted as
  doubled: no sender can tell a lost e-mail from an accepted one in that window.

How it is measured (see :mod:`testbed.faults` for details): the SIPp side logs every call (caller
ID, INVITE, answer, who hung up); Asterisk's ``console.log`` (verbose 3) has every dialplan step
of every channel with a millisecond time stamp, followed while the run goes on; the two are
joined on caller ID and time. The call log in the database is not used: ``burgernet serve``
writes it, and serve is one of the things we kill. Silence from the time stamps: an application
that plays (``Playback``, ``Background``, ``Dial``'s ringback) sounds until the next step, a
prompt FastAGI plays inside ``AGI()`` for the length of its file, everything else (waiting in
``AGI()``, ``Answer``, ``Set``...) is silence; silence from the audio: the probe callers' media
goes to an RTP endpoint of the rig that speaks for them and notes which frames carried sound.
The baseline period gives the figures of the same system without a fault. Prints a table and,
as its last line, one JSON object.

    python benchmarks/faults.py [--quick] [--sqlite] [--rate CPS] [--faults serve_kill,ami_cut]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from testbed.faults import FAULTS, RigOptions, Timing, format_table, run_suite

SILENCE_BOUND_S = 5.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="CI-sized: 3 calls/s, short periods")
    parser.add_argument(
        "--sqlite", action="store_true", help="SQLite instead of PostgreSQL (no PostgreSQL fault)"
    )
    parser.add_argument("--rate", type=float, help="calls per second to the free number")
    parser.add_argument("--participants", type=int)
    parser.add_argument("--faults", help=f"comma-separated subset of {','.join(FAULTS)}")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs) afterwards")
    args = parser.parse_args()

    faults = [f for f in (args.faults.split(",") if args.faults else FAULTS) if f]
    if args.sqlite:
        faults = [f for f in faults if f != "postgres_restart"]
    unknown = set(faults) - set(FAULTS)
    if unknown:
        parser.error(f"unknown faults: {', '.join(sorted(unknown))}")
    options = RigOptions(
        rate=args.rate or (3.0 if args.quick else 20.0),
        participants=args.participants or (40_000 if args.quick else 100_000),
        postgres=not args.sqlite,
        keep_workdir=args.keep,
    )
    timing = (
        Timing(baseline_s=20, lead_s=5, observe_s=15, recover_s=45, redis_down_s=10, postgres_down_s=5)
        if args.quick
        else Timing(baseline_s=60, lead_s=10, observe_s=40, recover_s=90, redis_down_s=30, postgres_down_s=10)
    )
    # Each period's broadcast lasts about as long as its lead-in, fault and a few seconds more.
    recipients = int(options.sms_per_second * (timing.lead_s + timing.redis_down_s + 10))
    started = time.monotonic()
    results, info = run_suite(options, timing, faults, recipients)
    print(format_table(results), file=sys.stderr)
    for r in results:
        if r.dead_end_examples:
            print(f"  dead-ended in {r.name}: {'; '.join(r.dead_end_examples)}", file=sys.stderr)
        if r.doubled_examples:
            print(f"  doubled in {r.name}: {'; '.join(r.doubled_examples)}", file=sys.stderr)
    baseline = next((r for r in results if r.name == "baseline"), None)
    faulted = [r for r in results if r.name != "baseline"]
    serve_stop = next((r for r in results if r.name == "serve_stop"), None)
    # Calls inside Asterisk when it is killed die with it (the "cut" column): reported, not counted
    # against the target, which is about every call after a fault getting through.
    target_met = all(
        r.dead_ended - (r.cut_by_crash if r.name == "asterisk_restart" else 0) == 0
        and r.deliveries_lost == 0
        and r.deliveries_doubled == 0
        for r in results
    ) and (
        serve_stop is None
        or max(serve_stop.longest_silence_s or 0, serve_stop.heard_silence_s or 0) <= SILENCE_BOUND_S
    )
    print(
        json.dumps(
            {
                "benchmark": "faults",
                "database": "sqlite" if args.sqlite else "postgresql",
                "rate_cps": options.rate,
                "participants": options.participants,
                "callers": info.get("callers"),
                "wall_s": round(time.monotonic() - started),
                "supervisor_starts": info.get("supervisor_starts"),
                "baseline": baseline.as_dict() if baseline else None,
                "faults": {r.name: r.as_dict() for r in faulted},
                "target": "every fault: 0 dead-ended calls, 0 lost or doubled deliveries "
                "(an e-mail sent again with the same Message-ID is reported as resent); "
                f"frozen serve: longest silence <= {SILENCE_BOUND_S:g} s",
                "target_met": target_met,
            }
        )
    )


if __name__ == "__main__":
    main()
