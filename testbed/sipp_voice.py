"""A SIPp phone that answers an alert call and speaks: a person, or an answering machine.

It answers, streams a voice file as RTP (``rtp_stream``, raw A-law, payload type 8; see
:mod:`testbed.voices`), may key a digit as SIP INFO (application/dtmf-relay, as the other
participant phones do), and ends the call when Asterisk sends its BYE or, after ``hold_ms``,
hangs up itself (a person who heard enough, a machine whose recording time is up).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from asterisk_conf.sipp import SDP
from testbed.sipp import SIPP, Sipp
from testbed.sipp_phone import _IN_DIALOG, _REPLY, _UAS_HEAD_REMEMBERING

_OK_TO_BYE = """  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
"""


def voice_scenario(
    stream: Path, *, ring_ms: int = 200, hold_ms: int = 20_000, key: tuple[int, str] | None = None
) -> str:
    """The phone's scenario. ``key``: (ms after the answer, digit) to key once."""
    keyed = ""
    waited = 0
    if key is not None:
        at_ms, digit = key
        waited = at_ms
        keyed = f'  <pause milliseconds="{at_ms}"/>\n' + _IN_DIALOG.format(
            method="INFO",
            cseq=1,
            extra="Content-Type: application/dtmf-relay\n",
            body=f"Signal={digit}\nDuration=160\n",
        )
    return "".join(
        [
            _UAS_HEAD_REMEMBERING,
            _REPLY.format(code="180 Ringing", extra="", body=""),
            f'  <pause milliseconds="{ring_ms}"/>\n',
            _REPLY.format(code="200 OK", extra="Content-Type: application/sdp\n", body=SDP),
            '  <recv request="ACK"/>\n',
            f'  <nop><action><exec rtp_stream="{stream},1,8"/></action></nop>\n',
            keyed,
            f'  <recv request="BYE" timeout="{max(1000, hold_ms - waited)}" ontimeout="hang_up"/>\n',
            _OK_TO_BYE,
            '  <nop next="done"/>\n',
            '  <label id="hang_up"/>\n',
            _IN_DIALOG.format(method="BYE", cseq=2, extra="", body=""),
            '  <label id="done"/>\n',
            "</scenario>\n",
        ]
    )


def voice_phone(
    sipp: Sipp,
    name: str,
    port: int,
    media_port: int,
    stream: Path,
    *,
    ring_ms: int = 200,
    hold_ms: int = 20_000,
    key: tuple[int, str] | None = None,
) -> subprocess.Popen[bytes]:
    """One call's phone on 127.0.0.1:``port``; :meth:`Sipp.phone_result` (``name``) tells how it went."""
    scenario = sipp.workdir / f"uas-{name}-voice.xml"
    scenario.write_text(voice_scenario(stream, ring_ms=ring_ms, hold_ms=hold_ms, key=key))
    stats = sipp.workdir / f"uas-{name}.csv"
    stats.unlink(missing_ok=True)
    errors = sipp.workdir / f"uas-{name}.err"
    command = [SIPP, "-m", "1", "-trace_stat", "-stf", str(stats), "-sf", str(scenario),
               "-i", "127.0.0.1", "-p", str(port), "-mp", str(media_port),
               "-nostdin", "-trace_err", "-error_file", str(errors)]  # fmt: skip
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=sipp.workdir,
    )
    sipp.processes.append(process)
    sipp._phones[name] = process
    return process
