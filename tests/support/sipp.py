"""SIPp as real SIP peers for the telephony tests: callers (UAC) and centralist phones (UAS).

Scenarios are generated per test from small templates: a caller dials the free number with
a given caller ID and keys digits as SIP INFO (application/dtmf-relay, which Asterisk's
res_pjsip_dtmf_info accepts on any endpoint); a centralist phone answers, answers busy
(486) or rings without answering until the call is cancelled.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

SIPP = shutil.which("sipp") or "/usr/bin/sipp"

_SDP = """v=0
o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8 0 101
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
"""


def _uac(
    number: str, caller: str, digits: Sequence[tuple[int, str]], hold_ms: int, speak_at_ms: int | None
) -> str:
    dtmf = "".join(
        f"""
  <pause milliseconds="{pause}"/>
  <send><![CDATA[
INFO sip:{number}@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:{number}@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: {10 + n} INFO
Contact: <sip:{caller}@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/dtmf-relay
Content-Length: [len]

Signal={digit}
Duration=160
]]></send>
  <recv response="200" timeout="5000" ontimeout="hangup"/>"""
        for n, (pause, digit) in enumerate(digits)
    )
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="caller">
  <send retrans="500"><![CDATA[
INVITE sip:{number}@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:{number}@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:{caller}@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

{_SDP}]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true"/>
  <send><![CDATA[
ACK sip:{number}@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:{number}@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: <sip:{caller}@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0

]]></send>{_speak(speak_at_ms) if speak_at_ms is not None else ""}{dtmf}
  <recv request="BYE" timeout="{hold_ms}" ontimeout="hangup"/>
  <send next="end"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <label id="hangup"/>
  <send retrans="500"><![CDATA[
BYE sip:{number}@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:{number}@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 100 BYE
Contact: <sip:{caller}@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200" timeout="5000"/>
  <label id="end"/>
</scenario>
"""


def _speak(after_ms: int) -> str:
    # A real G.711 A-law recording shipped with SIPp (about 7 s): the "spoken tip".
    return f"""
  <pause milliseconds="{after_ms}"/>
  <nop><action><exec play_pcap_audio="/usr/share/sip-tester/g711a.pcap"/></action></nop>"""


_UAS_HEAD = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="centralist">
  <recv request="INVITE"/>
"""

_REPLY = """  <send><![CDATA[
SIP/2.0 {code}
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
{extra}Content-Length: [len]

{body}]]></send>
"""

_OK_TO_REQUEST = """  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
"""


def _uas(behaviour: str, ring_ms: int) -> str:
    parts = [_UAS_HEAD]
    if behaviour == "busy":
        parts.append(_REPLY.format(code="486 Busy Here", extra="", body=""))
        parts.append('  <recv request="ACK"/>\n')
    elif behaviour == "no-answer":
        parts.append(_REPLY.format(code="180 Ringing", extra="", body=""))
        parts.append('  <recv request="CANCEL"/>\n')
        parts.append(_OK_TO_REQUEST)
        # The 487 answers the INVITE, not the CANCEL: [last_CSeq:] would say CANCEL here, and
        # Asterisk would drop the 487 and never ACK (the phone then hangs until killed).
        parts.append(
            _REPLY.format(code="487 Request Terminated", extra="", body="").replace(
                "[last_CSeq:]", "CSeq: [last_cseq_number] INVITE"
            )
        )
        parts.append('  <recv request="ACK"/>\n')
    else:  # answer
        parts.append(_REPLY.format(code="180 Ringing", extra="", body=""))
        parts.append(f'  <pause milliseconds="{ring_ms}"/>\n')
        parts.append(_REPLY.format(code="200 OK", extra="Content-Type: application/sdp\n", body=_SDP))
        parts.append('  <recv request="ACK"/>\n')
        parts.append('  <recv request="BYE"/>\n')
        parts.append(_OK_TO_REQUEST)
    parts.append("</scenario>\n")
    return "".join(parts)


@dataclass
class SippResult:
    returncode: int
    successful: int
    failed: int
    output: str


@dataclass
class Sipp:
    """Runs SIPp processes and cleans up after them."""

    asterisk_port: int
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bn-sipp-")))
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _phones: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def _write(self, name: str, text: str) -> Path:
        path = self.workdir / name
        path.write_text(text)
        return path

    def answer_all(self, port: int, media_port: int) -> subprocess.Popen[bytes]:
        """One SIPp answering every call it gets, for many endpoints at once (benchmarks)."""
        scenario = self._write(f"uas-all-{port}.xml", _uas("answer", 0))
        process = subprocess.Popen(
            [
                SIPP,
                "-sf",
                str(scenario),
                "-i",
                "127.0.0.1",
                "-p",
                str(port),
                "-mp",
                str(media_port),
                "-nostdin",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.workdir,
        )
        self.processes.append(process)
        return process

    def phone(
        self,
        endpoint: str,
        port: int,
        media_port: int,
        behaviour: str = "answer",
        ring_ms: int = 300,
        calls: int | None = None,
    ) -> subprocess.Popen[bytes]:
        """A centralist's phone on 127.0.0.1:port, answering every call the same way.

        ``behaviour``: ``answer`` (180, then 200 after ``ring_ms``, until the BYE), ``busy``
        (486) or ``no-answer`` (180 until CANCEL). With ``calls`` the phone exits after that
        many calls, and :meth:`phone_result` tells how they went.
        """
        scenario = self._write(f"uas-{endpoint}-{behaviour}.xml", _uas(behaviour, ring_ms))
        limit = ["-m", str(calls), "-trace_stat", "-stf", str(self._phone_stats(endpoint))] if calls else []
        process = subprocess.Popen(
            [
                SIPP,
                *limit,
                "-sf",
                str(scenario),
                "-i",
                "127.0.0.1",
                "-p",
                str(port),
                "-mp",
                str(media_port),
                "-nostdin",
                "-trace_err",
                "-error_file",
                str(self.workdir / f"uas-{endpoint}.err"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.workdir,
        )
        self.processes.append(process)
        self._phones[endpoint] = process
        return process

    def _phone_stats(self, endpoint: str) -> Path:
        return self.workdir / f"uas-{endpoint}.csv"

    def phone_result(self, endpoint: str, timeout_s: float = 30) -> SippResult:
        """Wait for a phone started with ``calls=`` to finish; its call counts and exit code."""
        process = self._phones[endpoint]
        try:
            returncode = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.terminate()  # SIPp exits 0 on SIGTERM: report the hang as a failure
            process.wait()
            returncode = -1
        successful, failed = _counts(self._phone_stats(endpoint))
        errors = self.workdir / f"uas-{endpoint}.err"
        return SippResult(returncode, successful, failed, errors.read_text() if errors.is_file() else "")

    def call(
        self,
        caller: str,
        number: str,
        *,
        local_port: int,
        media_port: int,
        digits: Sequence[tuple[int, str]] = (),
        hold_ms: int = 4000,
        calls: int = 1,
        rate: float = 1.0,
        timeout_s: float = 60,
        speak_at_ms: int | None = None,
        callers: Sequence[str] = (),
    ) -> SippResult:
        """Place ``calls`` calls to ``number`` from ``caller``; wait for SIPp to finish.

        With ``callers``, each call takes the next caller ID from that list instead.
        """
        if callers:
            injection = self._write(
                f"callers-{local_port}.csv", "SEQUENTIAL\n" + "".join(f"{c};\n" for c in callers)
            )
            caller = "[field0]"
        scenario = self._write(f"uac-{local_port}.xml", _uac(number, caller, digits, hold_ms, speak_at_ms))
        stats = self.workdir / f"uac-{local_port}.csv"
        command = [
            SIPP,
            f"127.0.0.1:{self.asterisk_port}",
            "-sf",
            str(scenario),
            "-i",
            "127.0.0.1",
            "-p",
            str(local_port),
            "-mp",
            str(media_port),
            "-m",
            str(calls),
            "-r",
            str(rate),
            "-l",
            str(max(1, calls)),
            "-nostdin",
            "-timeout",
            f"{int(timeout_s)}s",
            "-timeout_error",
            "-trace_stat",
            "-stf",
            str(stats),
            "-recv_timeout",
            "30000",
            *(["-inf", str(injection)] if callers else []),
        ]
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_s + 30, cwd=self.workdir
        )
        successful, failed = _counts(stats)
        return SippResult(
            completed.returncode, successful, failed, completed.stdout[-2000:] + completed.stderr[-2000:]
        )

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
        self.processes.clear()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _counts(stats: Path) -> tuple[int, int]:
    """Successful and failed call totals from SIPp's statistics CSV (last line, cumulative)."""
    if not stats.is_file():
        return 0, 0
    lines = [line for line in stats.read_text().splitlines() if line.strip()]
    if len(lines) < 2:
        return 0, 0
    header = lines[0].split(";")
    last = lines[-1].split(";")
    values = dict(zip(header, last, strict=False))
    return int(values.get("SuccessfulCall(C)", 0) or 0), int(values.get("FailedCall(C)", 0) or 0)
