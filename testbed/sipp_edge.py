"""SIPp peers around the Kamailio edge: the carrier's callers, Asterisk "nodes", centralists' phones.

Unlike testbed/sipp.py (which talks to Asterisk directly), every peer here follows the Record-Route
set Kamailio puts into the dialog (``rrs="true"``, ``[routes]``, ``[next_url]``), so ACK and BYE
take the path a real dialog takes through a proxy. Each peer binds its own loopback address
(127.0.0.x), which is how the edge tells the carrier, the nodes and strangers apart.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

SIPP = shutil.which("sipp") or "/usr/bin/sipp"

_SDP = """v=0
o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8
a=rtpmap:8 PCMA/8000
"""


def call_scenario(hold_ms: int = 300, answer_within_ms: int = 8000) -> str:
    """INVITE ``[service]`` (the -s argument) at the edge, expect 200 within ``answer_within_ms``, BYE."""
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="edge caller">
  <send retrans="500">
    <![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:0612345678@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:0612345678@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

{_SDP}
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true" timeout="{answer_within_ms}"/>
  <send>
    <![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[routes]
From: <sip:0612345678@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0
    ]]>
  </send>
  <pause milliseconds="{hold_ms}"/>
  <send retrans="500">
    <![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[routes]
From: <sip:0612345678@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0
    ]]>
  </send>
  <recv response="200" timeout="4000"/>
</scenario>
"""


def refused_scenario(status: int) -> str:
    """INVITE ``[service]`` and expect the final reply ``status`` (then the ACK for it)."""
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="edge refused caller">
  <send retrans="500">
    <![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:0612345678@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:0612345678@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="{status}" timeout="5000"/>
  <send>
    <![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch-2]
From: <sip:0612345678@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0
    ]]>
  </send>
</scenario>
"""


def answer_scenario() -> str:
    """A node or a phone: answer each INVITE (180, 200 with the Record-Route set), until the BYE."""
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="edge answerer">
  <recv request="INVITE"/>
  <send>
    <![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_Record-Route:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port]>
Content-Length: 0
    ]]>
  </send>
  <send retrans="500">
    <![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_Record-Route:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

{_SDP}
    ]]>
  </send>
  <recv request="ACK"/>
  <recv request="BYE"/>
  <send>
    <![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0
    ]]>
  </send>
</scenario>
"""


def register_scenario(endpoint: str, password: str, contact: str, expected: int) -> str:
    """REGISTER ``endpoint`` with ``contact``, answer the digest challenge, expect ``expected``.

    ``expected`` 403 before any challenge (a phone outside the phone networks): use
    :func:`unchallenged_register_scenario`.
    """
    register = f"""REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{endpoint}@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
To: <sip:{endpoint}@[remote_ip]>
Call-ID: [call_id]
Contact: <{contact}>
Expires: 300
Max-Forwards: 70
User-Agent: SIPp edge phone
"""
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="edge phone registration">
  <send retrans="500">
    <![CDATA[
{register}CSeq: 1 REGISTER
Content-Length: 0

    ]]>
  </send>
  <recv response="401" auth="true"/>
  <send retrans="500">
    <![CDATA[
{register}CSeq: 2 REGISTER
[authentication username={endpoint} password={password}]
Content-Length: 0

    ]]>
  </send>
  <recv response="{expected}" timeout="5000"/>
</scenario>
"""


@dataclass
class SippResult:
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass
class EdgeSipp:
    """Runs SIPp peers against Kamailio at ``edge_host:edge_port`` and cleans up after them."""

    edge_host: str
    edge_port: int
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bn-edge-sipp-")))
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def _scenario(self, name: str, text: str) -> Path:
        path = self.workdir / f"{name}.xml"
        path.write_text(text)
        return path

    def messages(self, name: str) -> str:
        """Every SIP message a peer started with ``name`` sent and received so far."""
        path = self.workdir / f"{name}.messages"
        return path.read_text(errors="replace") if path.is_file() else ""

    def answerer(self, name: str, host: str, port: int, media_port: int) -> subprocess.Popen[bytes]:
        """A peer answering every call (and OPTIONS, ``-aa``) on ``host:port`` until stopped."""
        process = subprocess.Popen(
            [
                SIPP,
                "-sf",
                str(self._scenario(name, answer_scenario())),
                "-i",
                host,
                "-p",
                str(port),
                "-mp",
                str(media_port),
                "-aa",
                "-nostdin",
                "-trace_msg",
                "-message_file",
                str(self.workdir / f"{name}.messages"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.workdir,
        )
        self.processes[name] = process
        return process

    def kill(self, name: str) -> None:
        """Kill a peer at once (SIGKILL: no goodbye to anyone, like a crashed node)."""
        process = self.processes.pop(name)
        process.kill()
        process.wait(timeout=5)

    def run(
        self,
        name: str,
        scenario: str,
        *,
        host: str,
        port: int,
        media_port: int,
        service: str = "",
        calls: int = 1,
        rate: float = 10.0,
        concurrent: int = 1,
        timeout_s: float = 20,
    ) -> SippResult:
        """Run a UAC scenario ``calls`` times, at most ``rate`` a second and ``concurrent`` at once."""
        command = [
            SIPP,
            f"{self.edge_host}:{self.edge_port}",
            "-sf",
            str(self._scenario(name, scenario)),
            *(["-s", service] if service else []),
            "-i",
            host,
            "-p",
            str(port),
            "-mp",
            str(media_port),
            "-m",
            str(calls),
            "-r",
            str(rate),
            "-l",
            str(concurrent),
            "-aa",
            "-nostdin",
            "-timeout",
            f"{int(timeout_s)}s",
            "-timeout_error",
            "-trace_msg",
            "-message_file",
            str(self.workdir / f"{name}.messages"),
        ]
        completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s + 15)
        return SippResult(completed.returncode, completed.stdout[-1500:] + completed.stderr[-1500:])

    def cleanup(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.processes.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)


def unchallenged_register_scenario(endpoint: str, expected: int) -> str:
    """REGISTER ``endpoint`` without credentials and expect ``expected`` at once (no challenge)."""
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="edge refused registration">
  <send retrans="500">
    <![CDATA[
REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{endpoint}@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
To: <sip:{endpoint}@[remote_ip]>
Call-ID: [call_id]
Contact: <sip:{endpoint}@[local_ip]:[local_port]>
Expires: 300
Max-Forwards: 70
CSeq: 1 REGISTER
Content-Length: 0

    ]]>
  </send>
  <recv response="{expected}" timeout="5000"/>
</scenario>
"""


def phone_call_scenario(endpoint: str, password: str, expected: int = 200) -> str:
    """A centralist's phone calls ``[service]`` at the edge: the 407 challenge answered with
    ``password``, then the call (``expected`` 200) or the refusal (``expected`` e.g. 403)."""
    invite = f"""INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{endpoint}@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
Contact: <sip:{endpoint}@[local_ip]:[local_port]>
Max-Forwards: 70
"""
    ack = f"""Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch-2]
From: <sip:{endpoint}@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
Max-Forwards: 70
Content-Length: 0
"""
    if expected == 200:
        outcome = f"""  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true" timeout="8000"/>
  <send>
    <![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[routes]
From: <sip:{endpoint}@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 ACK
Max-Forwards: 70
Content-Length: 0
    ]]>
  </send>
  <send retrans="500">
    <![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[routes]
From: <sip:{endpoint}@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 3 BYE
Max-Forwards: 70
Content-Length: 0
    ]]>
  </send>
  <recv response="200" timeout="4000"/>
"""
    else:
        outcome = f"""  <recv response="{expected}" timeout="5000"/>
  <send>
    <![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
{ack}CSeq: 2 ACK
    ]]>
  </send>
"""
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="edge phone call">
  <send retrans="500">
    <![CDATA[
{invite}CSeq: 1 INVITE
Content-Length: 0

    ]]>
  </send>
  <recv response="407" auth="true"/>
  <send>
    <![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
{ack}CSeq: 1 ACK
    ]]>
  </send>
  <send retrans="500">
    <![CDATA[
{invite}CSeq: 2 INVITE
[authentication username={endpoint} password={password}]
Content-Type: application/sdp
Content-Length: [len]

{_SDP}
    ]]>
  </send>
{outcome}</scenario>
"""
