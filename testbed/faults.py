"""A whole Burgernet under call load and a broadcast, and the faults we inject into it.

What :class:`FaultRig` sets up, the way a user runs the system:

* ``burgernet demo seed``, new SIP passwords for the centralists (what ``burgernet centralist
  new-password`` does) and then ``burgernet run`` (the supervisor) as a child process, in a
  temporary data directory on free ports, with settings given as ``BURGERNET_*`` variables
  (:func:`burgernet.settings.as_environment`);
* Redis (and, in PostgreSQL mode, PostgreSQL) run by the rig itself, as a server of its own
  that ``burgernet run`` finds answering, so the rig can stop and start it as a fault;
* the worker pointed at a Twilio-speaking test server (SMS) and a test SMTP server (e-mail);
  participants' voice channel is switched off (no phone behind the trunk for alert calls);
* a SIPp phone for c-mn-1..3 and c-am-1..3, registered with its SIP password (re-registering
  every 10 s, so a restarted Asterisk learns them again), answering after half a second and
  hanging up itself after ``phone_talk_ms``;
* SIPp callers placing calls to the free number at a steady rate, from demo participants whose
  call the routing sends to exactly one active action (no menu). Each caller keys their postcode
  1.5 s after the answer (heard only when FastAGI asks, e.g. with the database down), sends a
  looped "voice" (a tone, then silence: a spoken tip ends on Record()'s silence detection) and
  hangs up after ``hold_s`` if nobody has hung up on them;
* a few of those callers (``probe_rate`` calls/s, their own caller IDs) have their audio sent to
  an :class:`RtpProbe` instead, which speaks for them and records which 20 ms frames carried
  sound: what a caller really heard.

How calls are classified (the call log in the database is written by ``burgernet serve``,
which is one of the things we kill, so it is not the ground truth):

* the SIPp side: per call, the caller ID, when the INVITE left, the answer, who hung up, or
  that the INVITE was refused (SIPp's own log, ``-trace_logs``);
* the Asterisk side: Asterisk's ``console.log`` at verbose level 3 holds every dialplan step of
  every channel with a millisecond time stamp, and the "answered" and "Playing" lines; the rig
  follows that file while it runs (:class:`DialplanTrace`). A call reached a centralist when a
  phone answered it (or the dialplan set ``BN_OUTCOME=connected``), the tip recording when
  ``Record()`` ran, the no-action message when ``[burgernet-no-action]`` played. It was routed
  normally when FastAGI decided (``[burgernet-route]``, or a tip or no-action chosen by
  FastAGI) and not ``[burgernet-failure]``.
* The two sides are joined on caller ID and time. A SIPp call with no Asterisk channel, a
  refused one, or one whose channel reached none of the three outcomes, was dead-ended. A call
  counts against the first fault it lived through, else the period it was placed in. Killing
  Asterisk ends every call in progress, so that fault waits until the calls of the fault before
  it are over: they are not cut by a fault they are not counted against.

The longest silence a caller heard, two ways, from the answer until the call has an outcome (a
centralist's phone rings, the tip recording, the no-action message) or ends:

* from the time stamps, for every call (:meth:`AsteriskCall.longest_silence`): an application
  that plays (``Playback``, ``Background``, ``Dial``'s ringback...) sounds until the next step,
  a prompt FastAGI plays inside ``AGI()`` for the length of its sound file; everything else
  (waiting in ``AGI()``, ``Answer``, ``Set``...) is silence, and so is a call cut by Asterisk
  dying, from the kill until the caller gives up;
* from the audio, for the probe callers (:meth:`RtpProbe.longest_silence`): the longest run of
  frames without sound (Asterisk sends silence frames while it waits, ``transmit_silence``).
"""

from __future__ import annotations

import calendar
import contextlib
import functools
import math
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from asterisk_conf.instance import install_for, paths_for
from asterisk_conf.sandbox import AsteriskInstance, SandboxError
from asterisk_conf.sipp import SDP
from burgernet.actions import AreaSpec
from burgernet.db import session_scope
from burgernet.domain import AreaKind
from burgernet.models import Action, Broadcast, Delivery, Participant
from burgernet.secrets import create_missing_secrets
from burgernet.settings import Settings, as_environment, load_settings
from composition.context import Context
from composition.redis_server import ManagedRedis
from testbed.fake_twilio import FakeTwilio
from testbed.ports import port_block
from testbed.postgres import ManagedPostgres, _pg_bin
from testbed.sipp import SIPP
from testbed.sipp_phone import phone_scenario
from testbed.smtp import SmtpServer

REPO = Path(__file__).resolve().parent.parent
PHONES = ("c-mn-1", "c-mn-2", "c-mn-3", "c-am-1", "c-am-2", "c-am-3")
DEMO_PHONE = "c-mn-1"  # `burgernet run` gives this one a new password at every start and prints it

FAULTS = (
    "serve_kill",
    "serve_stop",
    "redis_stop",
    "asterisk_restart",
    "worker_kill",
    "ami_cut",
    "postgres_restart",
)
FAULT_TITLES = {
    "baseline": "no fault (baseline)",
    "serve_kill": "kill -9 burgernet serve",
    "serve_stop": "SIGSTOP burgernet serve",
    "redis_stop": "Redis stopped",
    "asterisk_restart": "Asterisk killed (restart)",
    "worker_kill": "kill -9 worker mid-broadcast",
    "ami_cut": "AMI connections cut",
    "postgres_restart": "PostgreSQL restarted",
}


# --- SIPp scenarios --------------------------------------------------------------------------


def _log(message: str) -> str:
    return f'  <nop><action><log message="{message}"/></action></nop>\n'


_REJECT_CODES = (403, 404, 408, 480, 486, 487, 488, 500, 502, 503, 504, 603)


def caller_scenario(number: str, hold_ms: int, voice_file: Path, listen_port: int | None = None) -> str:
    """A caller to ``number`` as ``[field0]`` who logs each step of the call (``-trace_logs``)
    and keys the four digits of their postcode (``[field1]`` .. ``[field4]``) after 1.5 s.

    Log lines: ``BN_CALL <call_number> <event> [field0] <epoch>`` with events INVITE, ANSWER,
    BYE (we hung up on them), HANGUP (they gave up after ``hold_ms``), REJECTED <code>, END.
    A call that logs no END failed inside SIPp (no answer to the INVITE, a lost BYE...).

    With ``listen_port`` the call's audio goes to that port (an :class:`RtpProbe`, which also
    speaks for the caller) instead of SIPp, and the caller logs Asterisk's RTP port as
    (``BN_RTP <call_number> <port>``): what the caller heard can then be measured.
    """

    def stamp(event: str) -> str:
        return _log(f"BN_CALL [call_number] {event} [field0] [timestamp]")

    sdp = SDP
    if listen_port is not None:
        sdp = (
            SDP.replace("[media_port]", str(listen_port))
            .replace("[media_ip_type]", "4")
            .replace("[media_ip]", "127.0.0.1")
        )
    head = f"""INVITE sip:{number}@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:[field0]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:{number}@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:[field0]@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

{sdp}"""
    in_dialog = """ sip:{number}@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:[field0]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:{number}@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: {cseq} {method}
Contact: <sip:[field0]@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0

"""
    if listen_port is None:
        answer = '  <recv response="200" rtd="true"/>'
        voice = f'  <nop><action><exec rtp_stream="{voice_file},-1,8"/></action></nop>\n'
    else:
        answer = (
            '  <recv response="200" rtd="true"><action>\n'
            '    <ereg regexp="m=audio ([0-9]+)" search_in="body" check_it="true" assign_to="m,rtp"/>\n'
            "  </action></recv>\n" + _log("BN_RTP [call_number] [$rtp] ([$m])").rstrip("\n")
        )
        voice = ""
    rejections = "".join(
        f'  <recv response="{code}" optional="true" next="rejected{code}"/>\n' for code in _REJECT_CODES
    )
    rejected = "".join(
        f'  <label id="rejected{code}"/>\n'
        + _log(f"BN_CALL [call_number] REJECTED{code} [field0] [timestamp]")
        + '  <nop next="ack_rejection"/>\n'
        for code in _REJECT_CODES
    )
    ack_error = "ACK" + in_dialog.format(number=number, cseq=1, method="ACK")
    # A caller asked for a postcode keys it in (when FastAGI cannot tell who they are, e.g.
    # with the database down); a caller who is not asked has keyed digits nobody listens to.
    info = in_dialog.replace(
        "Content-Length: 0", "Content-Type: application/dtmf-relay\nContent-Length: [len]"
    )
    keys = '  <pause milliseconds="1500"/>\n' + "".join(
        f"""  <send><![CDATA[
{"INFO" + info.format(number=number, cseq=10 + n, method="INFO")}Signal=[field{n + 1}]
Duration=160
]]></send>
  <recv response="200" timeout="2000" ontimeout="key{n}"/>
  <label id="key{n}"/>
  <pause milliseconds="250"/>
"""
        for n in range(4)
    )
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="fault-caller">
{stamp("INVITE")}  <send retrans="500"><![CDATA[
{head}]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
{rejections}{answer}
{stamp("ANSWER")}  <send><![CDATA[
{"ACK" + in_dialog.format(number=number, cseq=1, method="ACK")}]]></send>
{voice}{keys}  <recv request="BYE" timeout="{hold_ms}" ontimeout="hangup"/>
{stamp("BYE")}  <send next="end"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <label id="hangup"/>
{stamp("HANGUP")}  <send retrans="500"><![CDATA[
{"BYE" + in_dialog.format(number=number, cseq=100, method="BYE")}]]></send>
  <recv response="200" timeout="4000" ontimeout="end"/>
  <nop next="end"/>
{rejected}  <label id="ack_rejection"/>
  <send><![CDATA[
{ack_error}]]></send>
  <label id="end"/>
{stamp("END")}</scenario>
"""


def register_scenario(contact_port: int, expires_s: int) -> str:
    """REGISTER [service] with digest auth, naming the phone's own SIPp as the contact."""
    register = """  <send retrans="500"><![CDATA[
REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:[service]@[remote_ip]:[remote_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: {cseq} REGISTER
Contact: <sip:[service]@127.0.0.1:{port}>
Max-Forwards: 70
Expires: {expires}
{auth}Content-Length: 0

]]></send>
"""
    return (
        '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="register">\n'
        + register.format(cseq=1, auth="", port=contact_port, expires=expires_s)
        + '  <recv response="401" auth="true"/>\n'
        + register.format(cseq=2, auth="[authentication]\n", port=contact_port, expires=expires_s)
        + '  <recv response="200"/>\n</scenario>\n'
    )


def write_voice(path: Path, tone_s: float = 1.0, silence_s: float = 4.0) -> Path:
    """Raw G.711 A-law: a 440 Hz tone then silence, looped by SIPp as the caller's voice."""
    rate = 8000
    samples = [int(6000 * math.sin(2 * math.pi * 440 * n / rate)) for n in range(int(tone_s * rate))]
    samples += [0] * int(silence_s * rate)
    path.write_bytes(bytes(_alaw(sample) for sample in samples))
    return path


def _alaw(sample: int) -> int:
    """One 16-bit linear sample as G.711 A-law (ITU-T G.711, segment encoding)."""
    sign = 0x80 if sample >= 0 else 0x00
    magnitude = min(abs(sample) >> 3, 0xFFF)  # 13-bit magnitude
    if magnitude < 32:
        code = magnitude >> 1
    else:
        segment = magnitude.bit_length() - 5
        code = (segment << 4) | ((magnitude >> segment) & 0x0F)
    return (code | sign) ^ 0x55


# --- the SIPp side of the calls ---------------------------------------------------------------


@dataclass
class OfferedCall:
    """One call as the caller saw it."""

    number: int  # SIPp's call number
    caller: str
    invited_at: float
    answered_at: float | None = None
    ended_at: float | None = None
    end: str | None = None  # "bye" (we hung up), "hangup" (they gave up), "rejected<code>"
    ended: bool = False  # SIPp reached the end of the scenario
    rtp_port: int | None = None  # Asterisk's RTP port for this call (probe callers only)


_RTP_LINE = re.compile(r"BN_RTP (\d+) (\d+) ")
_CALL_LINE = re.compile(r"BN_CALL (\d+) (\w+) (\S*) \S+\t\S+\t([0-9.]+)")


def parse_caller_log(text: str) -> list[OfferedCall]:
    calls: dict[int, OfferedCall] = {}
    for match in _CALL_LINE.finditer(text):
        number, event, caller, stamp = int(match[1]), match[2], match[3], float(match[4])
        if event == "INVITE":
            calls[number] = OfferedCall(number, caller, stamp)
            continue
        call = calls.get(number)
        if call is None:
            continue
        if event == "ANSWER":
            call.answered_at = stamp

        elif event in {"BYE", "HANGUP"} or event.startswith("REJECTED"):
            call.end = event.lower()
            call.ended_at = stamp
        elif event == "END":
            call.ended = True
            call.ended_at = call.ended_at or stamp
    for match in _RTP_LINE.finditer(text):
        call = calls.get(int(match[1]))
        if call is not None:
            call.rtp_port = int(match[2])
    return sorted(calls.values(), key=lambda c: c.invited_at)


# --- the Asterisk side: the dialplan trace ----------------------------------------------------

# [2026-12-02 05:20:01.123] VERBOSE[1234][C-00000001] pbx.c: Executing [s@ctx:3]
#     App("PJSIP/trunk-00000001", "args") in new stack          (one line in the file)
_EXECUTING = re.compile(
    r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})\] VERBOSE\[\d+\](?:\[[^\]]*\])? [^:]+:\s+(?:-- )?Executing "
    r"\[([^@\]]*)@([^:\]]+):(\d+)\] (\w+)\(\"([^\"]+)\", \"(.*)\"\) in new stack$"
)
_CALLER = re.compile(r"call to \S* from (\S*)")
ANSWERED = "<answered>"  # not an application: app_dial's "X answered <our channel>" line
SOUND_APPS = {"Playback", "Background", "Record", "Dial", "Read", "SayDigits", "Playtones", ANSWERED}
PLAYING = "<playing>"  # not an application: a prompt played inside AGI() (GET DATA, STREAM FILE)
_PLAYING_LINE = re.compile(
    r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})\] VERBOSE\[\d+\](?:\[[^\]]*\])? (?:res_agi|file)\.c: "
    r"<(\S+)> Playing '([^']+)'"
)
_ANSWERED_LINE = re.compile(
    r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})\] VERBOSE\[\d+\](?:\[[^\]]*\])? app_dial\.c: "
    r"(\S+) answered (\S+)$"
)
INBOUND_CHANNEL = "PJSIP/trunk-"


def _epoch(stamp: str) -> float:
    # Asterisk writes local time; the rig's Asterisk runs with the host's zone (UTC in CI).
    moment = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f")
    return calendar.timegm(moment.timetuple()) + moment.microsecond / 1e6 - _utc_offset()


def _utc_offset() -> float:
    return -time.timezone if not time.localtime().tm_isdst else -time.altzone


@dataclass
class Step:
    at: float
    context: str
    exten: str
    app: str
    args: str


@dataclass
class AsteriskCall:
    """One inbound channel to the free number, as its dialplan steps show it."""

    channel: str
    started_at: float
    caller: str = ""
    steps: list[Step] = field(default_factory=list)

    def first(self, predicate: Any) -> Step | None:
        return next((step for step in self.steps if predicate(step)), None)

    @property
    def connected_at(self) -> float | None:
        answered = self.first(lambda s: s.app == ANSWERED)
        if answered is not None:
            return answered.at
        step = self.first(lambda s: "BN_OUTCOME=connected" in s.args or s.args.startswith("BN_ANSWERED_BY="))
        return step.at if step else None

    @property
    def tip_at(self) -> float | None:
        step = self.first(lambda s: s.app == "Record")
        return step.at if step else None

    @property
    def no_action_at(self) -> float | None:
        step = self.first(lambda s: s.context == "burgernet-no-action" and s.app == "Playback")
        return step.at if step else None

    @property
    def failure_path(self) -> bool:
        return any(step.context == "burgernet-failure" for step in self.steps)

    @property
    def dialled_by_routing(self) -> bool:
        return any(step.context == "burgernet-route" for step in self.steps)

    @property
    def routed_normally(self) -> bool:
        """FastAGI decided where the call goes (ring, tip or no-action), not the failure path."""
        if self.failure_path:
            return False
        return self.dialled_by_routing or self.tip_at is not None or self.no_action_at is not None

    @property
    def outcome(self) -> str:
        if self.connected_at is not None:
            return "centralist"
        if self.tip_at is not None:
            return "tip"
        if self.no_action_at is not None:
            return "no_action"
        return "dead_end"

    @property
    def answered_at(self) -> float | None:
        step = self.first(lambda s: s.app == "Answer")
        return step.at if step else None

    @property
    def ended_by_asterisk(self) -> bool:
        """Asterisk ran the hang-up of this channel (it was not cut by Asterisk dying)."""
        return any(step.exten == "h" or step.app == "Hangup" for step in self.steps)

    def longest_silence(self, ended_at: float | None, deaths: Sequence[float] = ()) -> float:
        """Seconds of the longest stretch with nothing played, from the answer until the call
        has an outcome (a centralist's phone rings, the tip recording, the no-action message) or,
        without one, until the call ended.

        Sound: a dialplan application that plays (``Playback``, ``Background``, ``Dial``...) from
        its step to the next step; a prompt FastAGI plays inside ``AGI()`` (Asterisk's "Playing"
        line) for the length of its sound file. A channel cut by Asterisk dying (``deaths``)
        went silent then, until the caller gave up."""
        start = self.answered_at
        if start is None or not self.steps:
            return 0.0
        moments = [t for t in (self._first_ring(), self.tip_at, self.no_action_at) if t is not None]
        reached = min(moments) if moments else None
        end = reached if reached is not None else (ended_at if ended_at is not None else self.steps[-1].at)
        steps = [step for step in self.steps if step.app != PLAYING]
        sounds: list[tuple[float, float]] = []
        for index, step in enumerate(steps):
            if step.app not in SOUND_APPS:
                continue
            if index + 1 < len(steps):
                until = steps[index + 1].at
            elif self.ended_by_asterisk or reached is not None:
                until = end
            else:  # the last thing it did before Asterisk died under it
                until = next((death for death in sorted(deaths) if death >= step.at), step.at)
            sounds.append((step.at, until))
        sounds += [
            (step.at, step.at + sound_seconds(step.args)) for step in self.steps if step.app == PLAYING
        ]
        longest, covered = 0.0, start
        for begin, until in sorted(sounds):
            if begin >= end:
                break
            if begin > covered:
                longest = max(longest, begin - covered)
            covered = max(covered, until)
        return max(longest, end - covered)

    def _first_ring(self) -> float | None:
        step = self.first(lambda s: s.app == "Dial")
        return step.at if step else None


@functools.lru_cache(maxsize=256)
def sound_seconds(path: str) -> float:
    """How long a prompt Asterisk played lasts (signed linear at 8 or 16 kHz, or WAV)."""
    try:
        if path.endswith(".wav"):
            with wave.open(path) as handle:
                return handle.getnframes() / handle.getframerate()
        rate = 16_000 if path.endswith(".slin16") else 8_000
        return os.path.getsize(path) / (2 * rate)
    except (OSError, wave.Error, EOFError):
        return 0.0


class DialplanTrace:
    """Follows Asterisk's console.log (and its rotations) and keeps every inbound call's steps."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.calls: list[AsteriskCall] = []
        self._current: dict[str, AsteriskCall] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="dialplan-trace", daemon=True)
        self._inode: int | None = None
        self._offset = 0
        self._partial = b""

    def start(self) -> None:
        path = self.log_dir / "console.log"
        if path.exists():  # only what happens from now on
            stat = path.stat()
            self._inode, self._offset = stat.st_ino, stat.st_size
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.poll()

    def _follow(self) -> None:
        while not self._stop.wait(0.5):
            with contextlib.suppress(OSError):
                self.poll()

    def poll(self) -> None:
        path = self.log_dir / "console.log"
        try:
            stat = path.stat()
        except FileNotFoundError:
            return
        if self._inode is not None and stat.st_ino != self._inode:
            # Rotated (console.log -> console.log.0) or a new Asterisk: finish the old file first.
            old = self._find_inode(self._inode)
            if old is not None:
                self._read(old, self._offset)
            self._offset, self._partial = 0, b""
        elif stat.st_size < self._offset:
            self._offset, self._partial = 0, b""
        self._inode = stat.st_ino
        self._offset = self._read(path, self._offset)

    def _find_inode(self, inode: int) -> Path | None:
        for candidate in sorted(self.log_dir.glob("console.log.*")):
            with contextlib.suppress(OSError):
                if candidate.stat().st_ino == inode:
                    return candidate
        return None

    def _read(self, path: Path, offset: int) -> int:
        with path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read()
        if not data:
            return offset
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()  # an unfinished last line waits for the rest
        with self._lock:
            for raw in lines:
                self._line(raw.decode("utf-8", "replace"))
        return offset + len(data)

    def _line(self, line: str) -> None:
        if "> Playing '" in line:
            playing = _PLAYING_LINE.match(line)
            call = self._current.get(playing[2]) if playing else None
            if playing and call is not None:
                call.steps.append(Step(_epoch(playing[1]), "", "", PLAYING, playing[3]))
            return
        if " answered " in line:
            answered = _ANSWERED_LINE.match(line)
            call = self._current.get(answered[3]) if answered else None
            if answered and call is not None:
                call.steps.append(Step(_epoch(answered[1]), "", "", ANSWERED, answered[2]))
            return
        if "Executing [" not in line:
            return
        match = _EXECUTING.match(line)
        if match is None:
            return
        stamp, exten, context, _priority, app, channel, args = match.groups()
        if not channel.startswith(INBOUND_CHANNEL):
            return
        at = _epoch(stamp)
        if context == "burgernet-freephone" and _priority == "1" and exten[:1] in "+0123456789":
            call = AsteriskCall(channel, at)
            self._current[channel] = call
            self.calls.append(call)
        call = self._current.get(channel)
        if call is None:
            return
        if not call.caller and app == "NoOp":
            found = _CALLER.search(args)
            if found:
                call.caller = found[1]
        call.steps.append(Step(at, context, exten, app, args))

    def snapshot(self) -> list[AsteriskCall]:
        with self._lock:
            return list(self.calls)


def join_calls(
    offered: Sequence[OfferedCall], seen: Sequence[AsteriskCall], window_s: float = 8.0
) -> list[tuple[OfferedCall, AsteriskCall | None]]:
    """Each SIPp call with the Asterisk channel of the same caller that started closest after it."""
    by_caller: dict[str, list[AsteriskCall]] = defaultdict(list)
    for channel in seen:
        by_caller[channel.caller].append(channel)
    taken: set[int] = set()
    joined: list[tuple[OfferedCall, AsteriskCall | None]] = []
    for call in offered:
        best: AsteriskCall | None = None
        for candidate in by_caller.get(call.caller, ()):
            gap = candidate.started_at - call.invited_at
            if id(candidate) in taken or not -1.0 <= gap <= window_s:
                continue
            if best is None or abs(gap) < abs(best.started_at - call.invited_at):
                best = candidate
        if best is not None:
            taken.add(id(best))
        joined.append((call, best))
    return joined


# --- what a caller heard: an RTP endpoint for a few of the callers ------------------------------


def _alaw_magnitude(code: int) -> int:
    code ^= 0x55
    mantissa, segment = code & 0x0F, (code & 0x70) >> 4
    value = (mantissa << 4) + 8 if segment == 0 else ((mantissa << 4) + 0x108) << (segment - 1)
    return value


def _ulaw_magnitude(code: int) -> int:
    code = ~code & 0xFF
    mantissa, segment = code & 0x0F, (code & 0x70) >> 4
    return (((mantissa << 3) + 0x84) << segment) - 0x84


# A frame is sound when any sample is above about -40 dBFS; silence frames (and comfort noise)
# stay far below. Byte tables so the check runs in C (bytes.translate) at a few thousand frames/s.
_LOUD = 330
_LOUD_ALAW = bytes(1 if _alaw_magnitude(code) > _LOUD else 0 for code in range(256))
_LOUD_ULAW = bytes(1 if _ulaw_magnitude(code) > _LOUD else 0 for code in range(256))


class RtpProbe:
    """The media end of some callers: records, per Asterisk RTP port, when a frame arrived and
    whether it carried sound, and speaks for the caller (a tone, then silence, looped) from the
    same socket, so symmetric RTP keeps sending here and a tip gets recorded."""

    def __init__(self, voice: bytes) -> None:
        self.voice = voice
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port_block()))
        self.sock.settimeout(0.005)
        self.port = int(self.sock.getsockname()[1])
        self.frames: dict[int, list[tuple[float, bool]]] = defaultdict(list)
        self._peers: dict[int, list[int]] = {}  # port -> [last heard (ms), seq, timestamp, offset]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rtp-probe", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

    def _run(self) -> None:
        next_send = time.monotonic()
        ssrc = 0x42524E54
        while not self._stop.is_set():
            try:
                data, (_host, port) = self.sock.recvfrom(2048)
                now = time.time()
                if len(data) > 12 and data[0] >> 6 == 2:
                    payload_type = data[1] & 0x7F
                    if payload_type in (0, 8):
                        table = _LOUD_ALAW if payload_type == 8 else _LOUD_ULAW
                        loud = bool(data[12:].translate(table).strip(b"\0"))
                        self.frames[port].append((now, loud))
                        peer = self._peers.setdefault(port, [0, 0, 0, 0])
                        peer[0] = int(now * 1000)
            except TimeoutError:
                pass
            except OSError:
                return
            if time.monotonic() < next_send:
                continue
            next_send += 0.02
            now_ms = int(time.time() * 1000)
            for port, peer in list(self._peers.items()):
                if now_ms - peer[0] > 1000:
                    del self._peers[port]  # the call is over
                    continue
                chunk = self.voice[peer[3] : peer[3] + 160]
                peer[3] = (peer[3] + 160) % (len(self.voice) - 160)
                header = struct.pack("!BBHII", 0x80, 8, peer[1] & 0xFFFF, peer[2] & 0xFFFFFFFF, ssrc ^ port)
                peer[1] += 1
                peer[2] += 160
                with contextlib.suppress(OSError):
                    self.sock.sendto(header + chunk, ("127.0.0.1", port))

    def longest_silence(self, port: int, start: float, end: float) -> float | None:
        """The longest stretch between ``start`` and ``end`` without a frame carrying sound."""
        frames = [(at, loud) for at, loud in self.frames.get(port, ()) if start <= at <= end]
        if not frames:
            return None
        longest, last_sound = 0.0, start
        for at, loud in frames:
            if loud:
                longest = max(longest, at - last_sound)
                last_sound = at
        return max(longest, end - last_sound)


# --- processes ---------------------------------------------------------------------------------


def _children(pid: int) -> dict[int, list[int]]:
    tree: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            tree[parent].append(int(entry.name))
    return tree


def descendants(pid: int) -> list[tuple[int, list[str]]]:
    """(pid, argv) of every process below ``pid``."""
    tree = _children(pid)
    found: list[tuple[int, list[str]]] = []
    todo = list(tree.get(pid, ()))
    while todo:
        child = todo.pop()
        with contextlib.suppress(OSError):
            argv = (Path("/proc") / str(child) / "cmdline").read_bytes().split(b"\0")
            state = (Path("/proc") / str(child) / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if state != "Z":
                found.append((child, [a.decode(errors="replace") for a in argv if a]))
        todo.extend(tree.get(child, ()))
    return found


# --- the rig -----------------------------------------------------------------------------------


@dataclass
class RigOptions:
    rate: float = 3.0  # calls per second to the free number
    participants: int = 20_000
    postgres: bool = True
    hold_s: float = 30.0  # a caller nobody hangs up on gives up after this long
    phone_talk_ms: int = 2500  # a centralist talks this long, then hangs up
    sms_per_second: float = 20.0
    email_per_second: float = 20.0
    probe_rate: float = 0.5  # more calls per second, whose audio is captured (RtpProbe)
    keep_workdir: bool = False
    log: Any = None  # a callable taking one line; default: stderr


@dataclass
class DeliveryCheck:
    broadcast_id: int | None
    status: str
    expected: int
    rows: int
    received: int
    lost: int
    doubled: int
    by_channel: dict[str, dict[str, int]]
    # "sms 0612345678 x2": who got a message more than once, on which channel.
    doubled_examples: list[str] = field(default_factory=list)
    resent: int = 0  # e-mails received again with the same Message-ID (see check_deliveries)


class FaultRig:
    def __init__(self, options: RigOptions) -> None:
        self.options = options
        self.workdir = Path(tempfile.mkdtemp(prefix="bn-faults-"))
        # Like a user's own folder: Asterisk (its own user) passes through it to the data dir.
        self.workdir.chmod(0o755)
        self.data_dir = self.workdir / "data"
        self.began = time.monotonic()
        say = options.log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.log = lambda line: say(f"[{time.monotonic() - self.began:6.1f} s] {line}")
        self.redis = ManagedRedis(port_block(), self.workdir / "redis")
        self.postgres: ManagedPostgres | None = (
            # Its own folder: the work directory is root's (0700) and PostgreSQL runs as postgres.
            ManagedPostgres(Path(tempfile.mkdtemp(prefix="bn-faults-pg-")), port_block())
            if options.postgres
            else None
        )
        self.twilio = FakeTwilio()
        self.smtp = SmtpServer()
        self.settings: Settings | None = None
        self.context: Context | None = None
        self.env: dict[str, str] = {}
        self.supervisor: subprocess.Popen[bytes] | None = None
        self.supervisor_starts = 0
        self.passwords: dict[str, str] = {}
        self.phone_ports = {endpoint: port_block() for endpoint in PHONES}
        self.phones: list[subprocess.Popen[bytes]] = []
        self.caller: subprocess.Popen[bytes] | None = None
        self.callers: list[tuple[str, str]] = []  # (number as the trunk shows it, PC4)
        self.trace: DialplanTrace | None = None
        self.asterisk: AsteriskInstance | None = None
        self._registering = threading.Event()
        self._register_thread: threading.Thread | None = None
        self._pc4_pool: list[tuple[str, int]] = []
        self.caller_log = self.workdir / "callers.log"
        self.probe_log = self.workdir / "probe-callers.log"
        self.probe: RtpProbe | None = None
        self.probe_caller: subprocess.Popen[bytes] | None = None
        self.asterisk_deaths: list[float] = []
        self._sandbox_side: Path | None = None  # the work directory's twin inside the chroot
        self.sipp_dir = self.workdir / "sipp"

    # -- set-up ---------------------------------------------------------------------------------
    def start(self) -> None:
        started = time.monotonic()
        self.redis.start()
        if self.postgres is not None:
            self.postgres.start()
        self.twilio.start()
        self.smtp.start()
        self.data_dir.mkdir(parents=True)
        self.sipp_dir.mkdir()
        create_missing_secrets(self.data_dir)
        web_port = port_block()
        self.settings = load_settings(
            data_dir=self.data_dir,
            log_level="INFO",
            database={"url": self.postgres.url if self.postgres else f"sqlite:///{self.data_dir / 'bn.db'}"},
            redis={"url": self.redis.url, "key_prefix": "faults:"},
            asterisk={
                "sip_port": port_block(),
                "ami_port": port_block(),
                "agi_port": port_block(),
                "trunk_port": port_block(),
                "rtp_start": 10000,
                "rtp_end": 19999,
                "instance_name": f"faults-{os.getpid()}",
                "owner_ring_seconds": 3,
                "pool_ring_seconds": 4,
                "fallback_region": "MN",
            },
            broadcast={
                "sms_per_second": self.options.sms_per_second,
                "email_per_second": self.options.email_per_second,
                "retry_base_seconds": 2.0,
                "claim_idle_seconds": 20.0,
            },
            smtp=self.smtp.settings().model_dump(),
            twilio={
                "api_base_url": self.twilio.base_url,
                "account_sid": self.twilio.account_sid,
                "auth_token": self.twilio.auth_token,
                "callback_base_url": f"http://127.0.0.1:{web_port}",
            },
            web={"port": web_port, "public_base_url": f"http://127.0.0.1:{web_port}"},
            demo={"participants": self.options.participants},
        )
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("BURGERNET_")},
            **as_environment(self.settings),
            "PYTHONPATH": str(REPO),
            "PYTHONUNBUFFERED": "1",  # the supervisor's summary (the demo phone's password) at once
        }
        self.cli("demo", "seed", "--participants", str(self.options.participants))
        self.context = Context(self.settings)
        with session_scope(self.context.sessions) as session:
            # No alert calls: the trunk has no phone behind it in this rig (SMS and e-mail only).
            session.execute(update(Participant).values(channel_voice=False))
        for endpoint in PHONES:
            if endpoint != DEMO_PHONE:  # what `burgernet centralist new-password` does
                self.passwords[endpoint] = self.context.centralists.rotate_password(
                    endpoint, actor="fault rig", source="cli"
                )
        self.callers = self._callers()
        self._pc4_pool = self._broadcast_postcodes()
        self.log(
            f"rig: {len(self.callers)} callers routed to one action; seeding took "
            f"{time.monotonic() - started:.0f} s"
        )
        install = install_for(self.settings, log=lambda _line: None)
        self._note_sandbox_twin(install.root)
        self.start_supervisor()
        self.asterisk = AsteriskInstance(install, paths_for(self.settings, install).layout)
        self.trace = DialplanTrace(install.inside(paths_for(self.settings, install).layout.log))
        self.trace.start()
        self.start_phones()
        self.start_callers()
        self.log(f"rig: up after {time.monotonic() - started:.0f} s")

    def _note_sandbox_twin(self, root: Path | None) -> None:
        """The work directory's twin inside Asterisk's chroot (its bind-mount point, made by
        `burgernet run`), removed again at the end so runs do not pile up in the sandbox."""
        if root is not None:
            self._sandbox_side = root / str(self.workdir.resolve()).lstrip("/")

    def cli(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "composition.cli", *args],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(f"burgernet {' '.join(args)} failed: {result.stderr[-2000:]}")
        return result.stdout

    def start_supervisor(self, timeout: float = 240) -> None:
        """``burgernet run``; returns once it says the system is running."""
        self.supervisor_starts += 1
        log_file = self.workdir / f"run-{self.supervisor_starts}.log"
        with log_file.open("wb") as output:
            self.supervisor = subprocess.Popen(
                [sys.executable, "-m", "composition.cli", "run", "--participants", "0"],
                env=self.env,
                cwd=self.workdir,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # our Ctrl-C is not its Ctrl-C
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = log_file.read_text(errors="replace")
            found = re.search(rf"as centralist {DEMO_PHONE}, password (\S+)", text)
            if found:
                self.passwords[DEMO_PHONE] = found[1]
                return
            if self.supervisor.poll() is not None:
                raise RuntimeError(f"burgernet run exited while starting:\n{text[-3000:]}")
            time.sleep(0.3)
        raise RuntimeError(f"burgernet run did not come up within {timeout:.0f} s")

    def _callers(self) -> list[tuple[str, str]]:
        """Participants whose call is routed to exactly one active action (no menu)."""
        from burgernet import repositories
        from routing import AreaIndex, Caller, CallerKind, Location

        assert self.context is not None
        found: list[tuple[str, str]] = []
        with session_scope(self.context.sessions) as session:
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
        if not found:
            raise RuntimeError("no demo participant is inside exactly one active action")
        return found

    def _broadcast_postcodes(self) -> list[tuple[str, int]]:
        """PC4 areas far from the callers (Noord-Nederland), with their participant counts."""
        assert self.context is not None
        pc4 = func.substr(Participant.postcode, 1, 4)
        with session_scope(self.context.sessions) as session:
            rows = session.execute(
                select(pc4, func.count())
                .where(Participant.opted_out.is_(False), pc4 >= "8400", pc4 <= "9999")
                .group_by(pc4)
                .order_by(pc4)
            ).all()
        return [(str(code), int(count)) for code, count in rows]

    # -- phones and callers -----------------------------------------------------------------------
    def start_phones(self) -> None:
        for endpoint, port in self.phone_ports.items():
            scenario = self.sipp_dir / f"phone-{endpoint}.xml"
            scenario.write_text(phone_scenario(f"answer-hangup-{self.options.phone_talk_ms}", 500))
            self.phones.append(
                subprocess.Popen(
                    [
                        SIPP,
                        "-sf",
                        str(scenario),
                        "-i",
                        "127.0.0.1",
                        "-p",
                        str(port),
                        "-mp",
                        str(port_block()),
                        "-nostdin",
                        "-trace_err",
                        "-error_file",
                        str(self.sipp_dir / f"phone-{endpoint}.err"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    cwd=self.sipp_dir,
                )
            )
        self.register_all()
        self._registering.set()
        self._register_thread = threading.Thread(target=self._keep_registered, daemon=True)
        self._register_thread.start()

    def register_all(self) -> dict[str, bool]:
        """Every phone sends a REGISTER (Expires 60 s) with its current password."""
        assert self.settings is not None
        results: dict[str, bool] = {}
        for endpoint, port in self.phone_ports.items():
            scenario = self.sipp_dir / f"register-{endpoint}.xml"
            scenario.write_text(register_scenario(port, 60))
            try:
                done = subprocess.run(
                    [
                        SIPP,
                        f"127.0.0.1:{self.settings.asterisk.sip_port}",
                        "-sf",
                        str(scenario),
                        "-i",
                        "127.0.0.1",
                        "-p",
                        str(port_block()),
                        "-m",
                        "1",
                        "-nostdin",
                        "-timeout",
                        "6s",
                        "-timeout_error",
                        "-s",
                        endpoint,
                        "-au",
                        endpoint,
                        "-ap",
                        self.passwords.get(endpoint, "x"),
                    ],
                    capture_output=True,
                    timeout=15,
                    cwd=self.sipp_dir,
                )
                results[endpoint] = done.returncode == 0
            except subprocess.TimeoutExpired:
                results[endpoint] = False
        return results

    def _keep_registered(self) -> None:
        while self._registering.is_set():
            time.sleep(10)
            if self._registering.is_set():
                with contextlib.suppress(Exception):
                    self.register_all()

    def start_callers(self) -> None:
        assert self.settings is not None
        voice = write_voice(self.sipp_dir / "voice.alaw")
        callers = self.callers
        probed: list[tuple[str, str]] = []
        if self.options.probe_rate > 0 and len(callers) >= 16:
            # Every 8th caller is heard through the probe: their numbers are theirs alone, so
            # the two SIPp streams never share a caller ID (the join is on caller ID and time).
            probed, callers = callers[::8], [c for n, c in enumerate(callers) if n % 8]
        self.caller = self._sipp_callers("callers", callers, self.options.rate, voice, None, self.caller_log)
        if probed:
            self.probe = RtpProbe(voice.read_bytes())
            self.probe.start()
            self.probe_caller = self._sipp_callers(
                "probe-callers", probed, self.options.probe_rate, voice, self.probe.port, self.probe_log
            )

    def _sipp_callers(
        self,
        name: str,
        callers: Sequence[tuple[str, str]],
        rate: float,
        voice: Path,
        listen_port: int | None,
        log: Path,
    ) -> subprocess.Popen[bytes]:
        assert self.settings is not None
        scenario = self.sipp_dir / f"{name}.xml"
        scenario.write_text(
            caller_scenario(
                self.settings.asterisk.free_number, int(self.options.hold_s * 1000), voice, listen_port
            )
        )
        numbers = self.sipp_dir / f"{name}.csv"
        numbers.write_text(
            "SEQUENTIAL\n" + "".join(f"{number};{';'.join(pc4)};\n" for number, pc4 in callers)
        )
        # fmt: off
        return subprocess.Popen(
            [SIPP, f"127.0.0.1:{self.settings.asterisk.sip_port}", "-sf", str(scenario), "-inf", str(numbers),
             "-i", "127.0.0.1", "-p", str(port_block()), "-mp", str(port_block()),
             "-r", f"{rate:g}", "-l", "2000", "-m", "10000000", "-nostdin",
             "-trace_logs", "-log_file", str(log), "-recv_timeout", "60000",
             "-max_recv_loops", "10000", "-max_sched_loops", "10000"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.sipp_dir,
        )
        # fmt: on

    def stop_callers(self, drain_s: float) -> None:
        """No new calls; the ones in progress end (or the caller gives up) within ``drain_s``."""
        running = [p for p in (self.caller, self.probe_caller) if p is not None and p.poll() is None]
        for process in running:
            process.send_signal(signal.SIGUSR1)  # SIPp: stop placing calls, finish the others
        deadline = time.monotonic() + drain_s
        for process in running:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.terminate()
                process.wait(10)
        if self.probe is not None:
            self.probe.stop()

    def wait_for_normal_routing(self, since: float, timeout: float) -> bool:
        """Until a call offered after ``since`` was routed by FastAGI (not the failure path)."""
        assert self.trace is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.trace.poll()
            if any(c.started_at >= since and c.routed_normally for c in self.trace.snapshot()):
                return True
            time.sleep(0.5)
        return False

    def offered_calls(self) -> list[OfferedCall]:
        calls: list[OfferedCall] = []
        for log in (self.caller_log, self.probe_log):
            if log.exists():
                calls += parse_caller_log(log.read_text(errors="replace"))
        return sorted(calls, key=lambda call: call.invited_at)

    # -- the processes we break -------------------------------------------------------------------
    def supervisor_alive(self) -> bool:
        return self.supervisor is not None and self.supervisor.poll() is None

    def child_pid(self, marker: str) -> int | None:
        """The pid of the supervisor's child running ``burgernet <marker>`` (or Asterisk)."""
        if not self.supervisor_alive():
            return None
        assert self.supervisor is not None
        for pid, argv in descendants(self.supervisor.pid):
            if marker == "asterisk":
                if (argv and Path(argv[0]).name == "asterisk") or (
                    argv[:1] == ["chroot"] and "asterisk" in argv
                ):
                    return pid
            elif (
                "composition.cli" in argv[:-1]
                and argv[argv.index("composition.cli") + 1] == marker
                and "--standby" not in argv  # the fault is in the node's own serve, not its standby
            ):
                return pid
        return None

    def asterisk_up(self) -> bool:
        assert self.asterisk is not None
        try:
            self.asterisk.rx("core show uptime", timeout=5)
            return True
        except (SandboxError, subprocess.TimeoutExpired, OSError):
            return False

    def healthy(self) -> bool:
        return (
            self.supervisor_alive()
            and self.child_pid("serve") is not None
            and self.child_pid("worker") is not None
            and self.asterisk_up()
        )

    def ensure_running(self, timeout: float) -> str:
        """Wait for the system to be whole again; if ``burgernet run`` gave up, start it again
        (as an operator would). Returns what happened: "healthy", "restarted" or "down"."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.healthy():
                return "healthy"
            if not self.supervisor_alive():
                break
            time.sleep(0.5)
        if self.supervisor_alive():
            return "down"
        self.log("rig: burgernet run has exited; starting it again (as an operator would)")
        self.stop_supervisor()
        self.start_supervisor()
        self.register_all()
        return "restarted"

    def stop_supervisor(self) -> None:
        if self.supervisor is None:
            return
        if self.supervisor.poll() is None:
            self.supervisor.send_signal(signal.SIGTERM)
            try:
                self.supervisor.wait(60)
            except subprocess.TimeoutExpired:
                self.supervisor.kill()
                self.supervisor.wait()
        # Whatever it left behind (a child it did not stop) must not hold the ports.
        for pid, _argv in descendants(self.supervisor.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._reap_orphans()

    def _reap_orphans(self) -> None:
        """Children of an earlier `burgernet run` that outlived it (re-parented to init)."""
        assert self.settings is not None
        marker = str(self.data_dir)
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                environ = (entry / "environ").read_bytes()
                argv = (entry / "cmdline").read_bytes()
                # Every process that was given this rig's data directory (Asterisk too) belongs
                # to a `burgernet run` of ours; the rig itself was not given it.
                if marker.encode() in environ and int(entry.name) != os.getpid() and argv:
                    os.kill(int(entry.name), signal.SIGKILL)

    def inject(self, fault: str, duration_s: float) -> float:
        """Break one thing; returns when it is done breaking (SIGCONT sent, Redis back...)."""
        assert self.asterisk is not None
        if fault == "serve_kill":
            self._signal("serve", signal.SIGKILL)
        elif fault == "serve_stop":
            pid = self._signal("serve", signal.SIGSTOP)
            time.sleep(duration_s)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        elif fault == "worker_kill":
            self._signal("worker", signal.SIGKILL)
        elif fault == "asterisk_restart":
            self._signal("asterisk", signal.SIGKILL)
            self.asterisk_deaths.append(time.time())
        elif fault == "redis_stop":
            self.redis.stop()
            time.sleep(duration_s)
            self.redis.start()
        elif fault == "ami_cut":
            kicked = self.kick_ami_sessions()
            if not kicked:
                raise RuntimeError("no AMI session to cut")
        elif fault == "postgres_restart":
            if self.postgres is None:
                raise RuntimeError("postgres_restart needs the PostgreSQL mode")
            self.restart_postgres(duration_s)
        else:
            raise ValueError(f"unknown fault {fault}")
        return time.time()

    def _signal(self, marker: str, signum: int) -> int:
        pid = self.child_pid(marker)
        if pid is None:
            raise RuntimeError(f"no {marker} process to signal")
        os.kill(pid, signum)
        return pid

    def kick_ami_sessions(self) -> int:
        """Every AMI session closed by Asterisk (``manager kick session``): serve's and the worker's."""
        assert self.asterisk is not None
        listing = self.asterisk.rx("manager show connected")
        kicked = 0
        for line in listing.splitlines():
            fields = line.split()
            # Username IP Start Elapsed FileDes HttpCnt ReadPerms WritePerms
            if len(fields) >= 5 and fields[0] == self.settings.asterisk.ami_username:  # type: ignore[union-attr]
                with contextlib.suppress(SandboxError):
                    self.asterisk.rx(f"manager kick session {fields[4]}")
                    kicked += 1
        return kicked

    def restart_postgres(self, down_s: float) -> None:
        assert self.postgres is not None
        pg = self.postgres
        subprocess.run(
            pg._as_user(_pg_bin("pg_ctl"), "-D", str(pg.data_dir), "-m", "fast", "-w", "stop"),
            capture_output=True,
            check=False,
        )
        time.sleep(down_s)
        subprocess.run(
            pg._as_user(
                _pg_bin("pg_ctl"),
                "-D",
                str(pg.data_dir),
                "-l",
                str(pg.base_dir / "pg.log"),
                "-o",
                f"-p {pg.port} -k {pg.base_dir} -c listen_addresses=127.0.0.1 -c fsync=off",
                "-w",
                "start",
            ),
            capture_output=True,
            check=True,
        )

    # -- broadcasts ---------------------------------------------------------------------------------
    def start_broadcast(self, phase: str, recipients: int) -> int:
        """An action started in an area of about ``recipients`` people: its alert goes out."""
        chosen: list[str] = []
        total = 0
        while self._pc4_pool and total < recipients:
            code, count = self._pc4_pool.pop(0)
            chosen.append(code)
            total += count
        assert self.context is not None
        # What `burgernet action create --postcodes ... --start` does, without a process start.
        view = self.context.actions.create(
            action_type="information",
            title=f"Storingstest {phase}",
            description="Fault-injection broadcast",
            region_code="NN",
            area=AreaSpec(AreaKind.POSTCODES, postcodes=tuple(chosen)),
            actor="fault rig",
        )
        self.context.actions.start(view.id, actor="fault rig")
        return view.id

    def check_deliveries(self, action_id: int, wait_s: float) -> DeliveryCheck:
        """Each recipient of the action's alert, on each channel, reached exactly once?"""
        from broadcasting.recipients import select_recipients
        from burgernet.domain import Channel
        from burgernet.repositories import action_area

        assert self.context is not None
        deadline = time.monotonic() + wait_s
        status, broadcast_id = "missing", None
        while True:
            with contextlib.suppress(Exception), session_scope(self.context.sessions) as session:
                row = session.execute(
                    select(Broadcast.id, Broadcast.status).where(Broadcast.action_id == action_id)
                ).first()
                if row is not None:
                    broadcast_id, status = int(row[0]), str(row[1])
            if status in {"done", "cancelled"} or time.monotonic() > deadline:
                break
            time.sleep(1)
        time.sleep(0.5)  # the provider's last answers
        for attempt in range(3):  # the rig's own pooled connections may predate a database restart
            try:
                with session_scope(self.context.sessions) as session:
                    action = session.get(Action, action_id)
                    assert action is not None
                    expected = select_recipients(session, action_area(action)).by_channel
                    people = {
                        pid: (phone, email)
                        for pid, phone, email in session.execute(
                            select(Participant.id, Participant.phone_e164, Participant.email).where(
                                Participant.id.in_([int(i) for ids in expected.values() for i in ids])
                            )
                        )
                    }
                    rows: list[tuple[int, str, str]] = []
                    if broadcast_id is not None:
                        rows = [
                            (int(p or 0), str(c), str(s))  # no push here: always a participant
                            for p, c, s in session.execute(
                                select(Delivery.participant_id, Delivery.channel, Delivery.status).where(
                                    Delivery.broadcast_id == broadcast_id
                                )
                            )
                        ]
                break
            except Exception:
                if attempt == 2:
                    raise
                time.sleep(1)
        sms_seen = Counter(self.twilio.recipients())
        # An e-mail counts once per Message-ID: a copy with the same Message-ID is the same
        # message sent again (a worker killed between the SMTP server's "250" and reading it
        # leaves no trace of the acceptance on our side; SMTP cannot be asked afterwards). Such
        # copies are counted apart, as "resent"; a second message with its own id is "doubled".
        mail_ids = Counter((r.lower(), m.message_id) for m in self.smtp.messages for r in m.rcpt_tos)
        mail_seen = Counter(address for address, _message_id in mail_ids)
        mail_resent: Counter[str] = Counter()
        for (address, _message_id), copies in mail_ids.items():
            mail_resent[address] += copies - 1
        resent = 0
        lost = doubled = received = 0
        by_channel: dict[str, dict[str, int]] = {}
        doubled_examples: list[str] = []
        row_keys = Counter((p, c) for p, c, _s in rows)
        for channel, ids in expected.items():
            figures = {"expected": len(ids), "rows": 0, "received": 0, "lost": 0, "doubled": 0}
            for pid in (int(i) for i in ids):
                phone, email = people.get(pid, ("", None))
                address = phone if channel is Channel.SMS else (email or "").lower()
                seen = sms_seen.get(address, 0) if channel is Channel.SMS else mail_seen.get(address, 0)
                figures["rows"] += min(1, row_keys.get((pid, channel.value), 0))
                figures["received"] += min(1, seen)
                if channel is Channel.EMAIL:
                    figures["resent"] = figures.get("resent", 0) + mail_resent.get(address, 0)
                if seen == 0:
                    figures["lost"] += 1
                elif seen > 1:
                    figures["doubled"] += seen - 1
                    doubled_examples.append(f"{channel.value} {address} x{seen}")
            resent += figures.get("resent", 0)
            by_channel[channel.value] = figures
            lost += figures["lost"]
            doubled += figures["doubled"]
            received += figures["received"]
        return DeliveryCheck(
            broadcast_id=broadcast_id,
            status=status,
            expected=sum(len(ids) for ids in expected.values()),
            rows=len(rows),
            received=received,
            lost=lost,
            doubled=doubled,
            by_channel=by_channel,
            doubled_examples=doubled_examples[:5],
            resent=resent,  # of this action's recipients only
        )

    # -- tear-down ----------------------------------------------------------------------------------
    def stop(self) -> None:
        self._registering.clear()
        if self.probe is not None:
            with contextlib.suppress(Exception):
                self.probe.stop()
        for process in [self.caller, self.probe_caller, *self.phones]:
            if process is not None and process.poll() is None:
                process.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(5)
                if process.poll() is None:
                    process.kill()
        if self.trace is not None:
            self.trace.stop()
        with contextlib.suppress(Exception):
            self.stop_supervisor()
        if self.context is not None:
            with contextlib.suppress(Exception):
                self.context.close()
        for stop in (self.twilio.stop, self.smtp.stop, self.redis.stop):
            with contextlib.suppress(Exception):
                stop()
        if self.postgres is not None:
            with contextlib.suppress(Exception):
                self.postgres.stop()
            shutil.rmtree(self.postgres.base_dir, ignore_errors=True)
        if self.asterisk is not None and not self.options.keep_workdir:
            with contextlib.suppress(Exception):
                self.asterisk.remove()
        if not self.options.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            mounts = Path("/proc/mounts").read_text()
            if self._sandbox_side is not None and f" {self._sandbox_side}" not in mounts:
                shutil.rmtree(self._sandbox_side, ignore_errors=True)


# --- phases: a baseline, then one fault each -----------------------------------------------------


@dataclass
class Timing:
    baseline_s: float = 20.0  # the no-fault period: same load, no fault
    lead_s: float = 5.0  # load and broadcast running before the fault
    observe_s: float = 15.0  # at least this long after the fault before the next one
    recover_s: float = 60.0  # how long the system gets to be whole and route normally again
    serve_stop_s: float = 10.0
    redis_down_s: float = 10.0
    postgres_down_s: float = 5.0
    delivery_wait_s: float = 90.0  # for the phase's broadcast to finish


@dataclass
class Phase:
    name: str
    started_at: float
    fault_at: float
    fault_done_at: float
    ended_at: float = 0.0
    action_id: int | None = None
    deliveries: DeliveryCheck | None = None
    system: str = "healthy"  # healthy | restarted (burgernet run exited) | down
    error: str | None = None

    def duration(self, fault: str, timing: Timing) -> float:
        return {
            "serve_stop": timing.serve_stop_s,
            "redis_stop": timing.redis_down_s,
            "postgres_restart": timing.postgres_down_s,
        }.get(fault, 0.0)


@dataclass
class PhaseResult:
    name: str
    title: str
    offered: int
    centralist: int
    tip: int
    no_action: int
    dead_ended: int
    cut_by_crash: int  # of the dead-ended: in progress when Asterisk itself died under them
    longest_silence_s: float | None
    heard_silence_s: float | None  # the same, measured in the audio of the probe callers
    probe_calls: int
    routing_back_s: float | None
    dialled_share: float | None
    deliveries_expected: int
    deliveries_lost: int
    deliveries_doubled: int
    broadcast_status: str
    system: str
    error: str | None
    dead_end_examples: list[str]
    deliveries_by_channel: dict[str, dict[str, int]] = field(default_factory=dict)
    doubled_examples: list[str] = field(default_factory=list)
    deliveries_resent: int = 0  # the same e-mail (same Message-ID) received twice

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# Faults that end the calls in progress (Asterisk dies under them). A call offered during the
# fault before and still on the line would be counted against that earlier fault, which it
# survived: such a fault waits until those calls are over (see ``run_phase``).
CUTS_CALLS_IN_PROGRESS = frozenset({"asterisk_restart"})
# From the INVITE until a caller starts waiting out ``hold_s``: the answer and the keyed
# digits (each INFO may wait up to 2 s for its 200).
CALL_SETUP_S = 12.0


def run_phase(
    rig: FaultRig, name: str, timing: Timing, recipients: int, earlier_calls_over_at: float = 0.0
) -> Phase:
    """One period of the same load and a broadcast; ``name`` is a fault or "baseline".

    ``earlier_calls_over_at``: when every call exposed to the fault before has ended; a fault
    of :data:`CUTS_CALLS_IN_PROGRESS` is not injected before then."""
    started = time.time()
    phase = Phase(name, started, started, started)
    try:
        phase.action_id = rig.start_broadcast(name, recipients)
    except Exception as exc:  # the system may still be broken from the fault before
        phase.error = f"broadcast not started: {exc}"
    if name == "baseline":
        time.sleep(timing.baseline_s)
        phase.fault_at = phase.fault_done_at = time.time()
    else:
        lead = timing.lead_s
        if name in CUTS_CALLS_IN_PROGRESS:
            lead = max(lead, earlier_calls_over_at - time.time())
        time.sleep(lead)
        phase.fault_at = time.time()
        try:
            phase.fault_done_at = rig.inject(name, phase.duration(name, timing))
        except Exception as exc:
            phase.error = f"fault not injected: {exc}"
            phase.fault_done_at = time.time()
        rig.log(
            f"rig: {name} injected at +{phase.fault_at - started:.1f} s, "
            f"over at +{phase.fault_done_at - started:.1f} s"
        )
        time.sleep(timing.observe_s)
    phase.system = rig.ensure_running(timing.recover_s)
    rig.wait_for_normal_routing(time.time(), timing.recover_s)
    # The broadcast goes on into the next period; it is checked once every period has run.
    phase.ended_at = time.time()
    rig.log(f"rig: phase {name} done after {phase.ended_at - started:.0f} s ({phase.system})")
    return phase


def assign_to_phases(
    phases: Sequence[Phase], joined: Sequence[tuple[OfferedCall, AsteriskCall | None]]
) -> dict[str, list[tuple[OfferedCall, AsteriskCall | None]]]:
    """Each call to the period of the first fault it lived through, else to the period it was
    offered in: a call offered just before a fault and cut by it counts against that fault."""
    assigned: dict[str, list[tuple[OfferedCall, AsteriskCall | None]]] = {phase.name: [] for phase in phases}
    for call, seen in joined:
        last_step = seen.steps[-1].at if seen is not None and seen.steps else call.invited_at
        ended = max(call.ended_at or 0.0, last_step)
        exposed = [
            phase
            for phase in phases
            if phase.name != "baseline" and phase.fault_at <= ended and phase.fault_done_at >= call.invited_at
        ]
        offered_in = [phase for phase in phases if phase.started_at <= call.invited_at < phase.ended_at]
        home = exposed[0] if exposed else (offered_in[0] if offered_in else None)
        if home is not None:
            assigned[home.name].append((call, seen))
    return assigned


def summarise(
    phase: Phase,
    mine: Sequence[tuple[OfferedCall, AsteriskCall | None]],
    deaths: Sequence[float] = (),
    probe: RtpProbe | None = None,
    hold_s: float = 30.0,
) -> PhaseResult:
    outcomes: Counter[str] = Counter()
    silences: list[float] = []
    examples: list[str] = []
    normal_after: list[tuple[float, bool]] = []
    dialled = cut = 0
    heard_silences: list[float] = []
    for call, seen in mine:
        rejected = (call.end or "").startswith("rejected")
        outcome = "dead_end" if seen is None or rejected else seen.outcome
        outcomes[outcome] += 1
        if seen is not None and not rejected:
            silences.append(seen.longest_silence(call.ended_at, deaths))
            dialled += seen.dialled_by_routing
        if probe is not None and call.rtp_port is not None and call.answered_at is not None:
            until = _heard_until(call, seen, hold_s)
            heard = probe.longest_silence(call.rtp_port, call.answered_at, until)
            if heard is not None:
                heard_silences.append(heard)
        if outcome == "dead_end" and seen is not None and _cut_by_crash(call, seen, deaths):
            cut += 1
        if outcome == "dead_end" and len(examples) < 5:
            examples.append(_dead_end_reason(call, seen))
        if call.invited_at >= phase.fault_at:
            normal_after.append((call.invited_at, seen is not None and not rejected and seen.routed_normally))
    normal_after.sort()
    routing_back: float | None = 0.0
    if phase.name != "baseline":
        broken = [at for at, normal in normal_after if not normal]
        if broken:
            later = [at for at, normal in normal_after if at > broken[-1]]
            routing_back = (later[0] - phase.fault_at) if later else None
    deliveries = phase.deliveries
    return PhaseResult(
        name=phase.name,
        title=FAULT_TITLES.get(phase.name, phase.name),
        offered=len(mine),
        centralist=outcomes["centralist"],
        tip=outcomes["tip"],
        no_action=outcomes["no_action"],
        dead_ended=outcomes["dead_end"],
        cut_by_crash=cut,
        longest_silence_s=round(max(silences), 2) if silences else None,
        heard_silence_s=round(max(heard_silences), 2) if heard_silences else None,
        probe_calls=len(heard_silences),
        routing_back_s=round(routing_back, 1) if routing_back is not None else None,
        dialled_share=round(dialled / len(mine), 3) if mine else None,
        deliveries_expected=deliveries.expected if deliveries else 0,
        deliveries_lost=deliveries.lost if deliveries else -1,
        deliveries_doubled=deliveries.doubled if deliveries else -1,
        broadcast_status=deliveries.status if deliveries else "none",
        system=phase.system,
        error=phase.error,
        dead_end_examples=examples,
        deliveries_by_channel=deliveries.by_channel if deliveries else {},
        doubled_examples=deliveries.doubled_examples if deliveries else [],
        deliveries_resent=deliveries.resent if deliveries else 0,
    )


def _heard_until(call: OfferedCall, seen: AsteriskCall | None, hold_s: float) -> float:
    """Where the audio measurement of a call stops: its outcome (as for the time-stamp figure),
    else its end; a call SIPp gave up on without a word lasted until the caller's patience ran out."""
    if seen is not None:
        moments = [t for t in (seen._first_ring(), seen.tip_at, seen.no_action_at) if t is not None]
        if moments:
            return min(moments)
    if call.ended_at is not None:
        return call.ended_at
    return (call.answered_at or call.invited_at) + hold_s


def _cut_by_crash(call: OfferedCall, seen: AsteriskCall, deaths: Sequence[float]) -> bool:
    if seen.ended_by_asterisk:
        return False
    ended = call.ended_at if call.ended_at is not None else math.inf
    return any(seen.started_at <= death <= ended for death in deaths)


def _dead_end_reason(call: OfferedCall, seen: AsteriskCall | None) -> str:
    if seen is None:
        what = call.end or ("no answer to the INVITE" if call.answered_at is None else "no channel seen")
    else:
        steps = [step for step in seen.steps if step.app not in {PLAYING, ANSWERED}]
        last = steps[-1] if steps else None
        ending = call.end or "cut"
        what = f"{ending} after {last.app} in {last.context} ({last.exten})" if last else "no steps"
    return f"{call.caller}@{time.strftime('%H:%M:%S', time.gmtime(call.invited_at))}: {what}"


def run_suite(
    options: RigOptions, timing: Timing, faults: Sequence[str], recipients: int
) -> tuple[list[PhaseResult], dict[str, Any]]:
    """Start the rig, run the baseline and each fault, drain, analyse; always tears down."""
    rig = FaultRig(options)
    phases: list[Phase] = []
    info: dict[str, Any] = {}
    try:
        rig.start()
        info["callers"] = len(rig.callers)
        rig.wait_for_normal_routing(time.time(), timing.recover_s)
        for name in ("baseline", *faults):
            earlier_calls_over_at = (
                phases[-1].fault_done_at + CALL_SETUP_S + options.hold_s if phases else 0.0
            )
            phases.append(run_phase(rig, name, timing, recipients, earlier_calls_over_at))
        rig.stop_callers(drain_s=options.hold_s + 10)
        deadline = time.monotonic() + timing.delivery_wait_s
        for phase in phases:
            if phase.action_id is None:
                continue
            try:
                phase.deliveries = rig.check_deliveries(
                    phase.action_id, max(1.0, deadline - time.monotonic())
                )
            except Exception as exc:
                phase.error = (phase.error + "; " if phase.error else "") + f"deliveries not checked: {exc}"
        assert rig.trace is not None
        rig.trace.poll()
        joined = join_calls(rig.offered_calls(), rig.trace.snapshot())
        assigned = assign_to_phases(phases, joined)
        info["supervisor_starts"] = rig.supervisor_starts
        info["workdir"] = str(rig.workdir)
        return [
            summarise(phase, assigned[phase.name], rig.asterisk_deaths, rig.probe, options.hold_s)
            for phase in phases
        ], info
    finally:
        rig.stop()


def format_table(results: list[PhaseResult]) -> str:
    header = (
        f"{'period':<30} {'offered':>7} {'centr.':>6} {'tip':>5} {'no-act':>6} {'dead':>5} {'cut':>4} "
        f"{'silence s':>9} {'heard s':>7} {'back s':>7} {'dial %':>6} {'bcast':>6} {'lost':>5} "
        f"{'doubled':>7} {'resent':>6}  system"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        silence = f"{r.longest_silence_s:.1f}" if r.longest_silence_s is not None else "-"
        heard = f"{r.heard_silence_s:.1f}" if r.heard_silence_s is not None else "-"
        back = f"{r.routing_back_s:.1f}" if r.routing_back_s is not None else "never"
        dial = f"{r.dialled_share * 100:.0f}" if r.dialled_share is not None else "-"
        lines.append(
            f"{r.title:<30} {r.offered:>7} {r.centralist:>6} {r.tip:>5} {r.no_action:>6} "
            f"{r.dead_ended:>5} {r.cut_by_crash:>4} "
            f"{silence:>9} {heard:>7} {back:>7} {dial:>6} {r.deliveries_expected:>6} {r.deliveries_lost:>5} "
            f"{r.deliveries_doubled:>7} {r.deliveries_resent:>6}  "
            f"{r.system}{' (' + r.error + ')' if r.error else ''}"
        )
    return "\n".join(lines)


__all__ = [
    "FAULTS",
    "FAULT_TITLES",
    "AsteriskCall",
    "DeliveryCheck",
    "DialplanTrace",
    "FaultRig",
    "OfferedCall",
    "RigOptions",
    "caller_scenario",
    "format_table",
    "join_calls",
    "parse_caller_log",
]
