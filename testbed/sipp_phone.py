"""SIPp scenarios for the phones that answer: a centralist's phone or a participant's (UAS).

``answer``, ``busy`` and ``no-answer`` for centralists; ``answer-press-<key>`` and
``answer-hangup-<ms>`` for participants who take an alert call. The SDP body is the one the
caller's scenario sends (:data:`asterisk_conf.sipp.SDP`).
"""

from __future__ import annotations

from asterisk_conf.sipp import SDP

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


# A participant who answers an alert call and presses a key: the INVITE's From/To are kept to
# address the in-dialog INFO (the key, as dtmf-relay) and the BYE this phone sends itself.
_UAS_HEAD_REMEMBERING = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="participant">
  <recv request="INVITE">
    <action>
      <ereg regexp="sip:[^>;]*" search_in="hdr" header="From:" check_it="true" assign_to="caller"/>
      <ereg regexp="tag=[^;> ]*" search_in="hdr" header="From:" check_it="true" assign_to="caller_tag"/>
      <ereg regexp="sip:[^>;]*" search_in="hdr" header="To:" check_it="true" assign_to="callee"/>
      <ereg regexp="sip:[^>;]*" search_in="hdr" header="Contact:" check_it="true" assign_to="peer"/>
    </action>
  </recv>
"""

_IN_DIALOG = """  <send><![CDATA[
{method} [$peer] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <[$callee]>;tag=[pid]SIPpTag01[call_number]
To: <[$caller]>;[$caller_tag]
Call-ID: [call_id]
CSeq: {cseq} {method}
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Max-Forwards: 70
{extra}Content-Length: [len]

{body}]]></send>
  <recv response="200" timeout="5000"/>
"""


def _press_key_then_hang_up(key: str, talk_ms: int) -> str:
    return (
        '  <pause milliseconds="1500"/>\n'
        + _IN_DIALOG.format(
            method="INFO",
            cseq=1,
            extra="Content-Type: application/dtmf-relay\n",
            body=f"Signal={key}\nDuration=160\n",
        )
        + f'  <pause milliseconds="{talk_ms}"/>\n'
        + _IN_DIALOG.format(method="BYE", cseq=2, extra="", body="")
    )


def phone_scenario(behaviour: str, ring_ms: int) -> str:
    """``answer``, ``busy``, ``no-answer``; ``answer-press-<key>`` (answers, presses the key
    after 1.5 s, talks for 6 s and hangs up itself); ``answer-hangup-<ms>`` (answers and hangs
    up itself after that many milliseconds)."""
    if behaviour.startswith(("answer-press-", "answer-hangup-")):
        if behaviour.startswith("answer-press-"):
            after_answer = _press_key_then_hang_up(behaviour.removeprefix("answer-press-"), 6000)
        else:
            after_answer = f'  <pause milliseconds="{int(behaviour.removeprefix("answer-hangup-"))}"/>\n'
            after_answer += _IN_DIALOG.format(method="BYE", cseq=2, extra="", body="")
        return "".join(
            [
                _UAS_HEAD_REMEMBERING,
                _REPLY.format(code="180 Ringing", extra="", body=""),
                f'  <pause milliseconds="{ring_ms}"/>\n',
                _REPLY.format(code="200 OK", extra="Content-Type: application/sdp\n", body=SDP),
                '  <recv request="ACK"/>\n',
                after_answer,
                "</scenario>\n",
            ]
        )
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
        parts.append(_REPLY.format(code="200 OK", extra="Content-Type: application/sdp\n", body=SDP))
        parts.append('  <recv request="ACK"/>\n')
        parts.append('  <recv request="BYE"/>\n')
        parts.append(_OK_TO_REQUEST)
    parts.append("</scenario>\n")
    return "".join(parts)
