"""The SIPp scenario of a caller (UAC) to the free number.

``burgernet run`` writes one so a telecom admin can place a test call as a demo participant;
the telephony tests and benchmarks use it too (the phones that answer live in the test bed).
Key presses go as SIP INFO (application/dtmf-relay), which Asterisk's res_pjsip_dtmf_info
accepts on any endpoint; "speaking" plays the G.711 recording that ships with SIPp.
"""

from __future__ import annotations

from collections.abc import Sequence

SDP = """v=0
o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8 0 101
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
"""


def caller_scenario(
    number: str,
    caller: str,
    digits: Sequence[tuple[int, str]],
    hold_ms: int,
    speak_at_ms: int | None,
    *,
    through_edge: bool = False,
) -> str:
    """The caller's scenario. ``through_edge``: the call goes through Kamailio (a cluster), which
    Record-Routes it, so the requests within the call follow the route set to the node's Contact."""
    in_dialog = "[next_url]" if through_edge else f"sip:{number}@[remote_ip]:[remote_port]"
    routes = "\n[routes]" if through_edge else ""
    record_routes = ' rrs="true"' if through_edge else ""
    dtmf = "".join(
        f"""
  <pause milliseconds="{pause}"/>
  <send><![CDATA[
INFO {in_dialog} SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]{routes}
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

{SDP}]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true"{record_routes}/>
  <send><![CDATA[
ACK {in_dialog} SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]{routes}
From: <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:{number}@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: <sip:{caller}@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0

]]></send>{speak_after(speak_at_ms) if speak_at_ms is not None else ""}{dtmf}
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
BYE {in_dialog} SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]{routes}
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


def speak_after(after_ms: int) -> str:
    # A real G.711 A-law recording shipped with SIPp (about 7 s): the "spoken tip".
    return f"""
  <pause milliseconds="{after_ms}"/>
  <nop><action><exec play_pcap_audio="/usr/share/sip-tester/g711a.pcap"/></action></nop>"""
