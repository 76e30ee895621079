"""SIP attacks against the real Asterisk, with SIPp: a forged trunk, stolen or old passwords,
phones from the wrong network, premium call-backs; and fail2ban's filter on the real log lines.

Loopback has the whole of 127.0.0.0/8: SIPp bound to 127.0.0.2 is "another host" to Asterisk,
while the trunk and the control room stay at 127.0.0.1.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from asterisk_conf.instance import ConfiguredAsterisk, prepare
from asterisk_conf.plan import plan_from_database
from asterisk_conf.render import AsteriskPlan
from asterisk_conf.sandbox import AsteriskInstall
from burgernet.db import session_scope
from composition.context import Context
from testbed.ports import port_block
from testbed.sipp import SIPP
from tests.asterisk.conftest import asterisk_settings, centralist, sip_password

ATTACKER = "127.0.0.2"
FAIL2BAN = Path(__file__).resolve().parents[2] / "asterisk_conf" / "fail2ban"

_REGISTER = """
  <send retrans="500"><![CDATA[
REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:[service]@[remote_ip]:[remote_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: {cseq} REGISTER
Contact: <sip:[service]@[local_ip]:[local_port]>
Max-Forwards: 70
Expires: 60
{auth}Content-Length: 0

]]></send>
"""

_WANT_200 = '  <recv response="200"/>\n'
# A 200 here is an unexpected message: SIPp counts the call as failed and exits non-zero.
_REFUSED = (
    '<recv response="401" optional="true" next="{label}"/>\n  <recv response="403"/>\n  <label id="{label}"/>'
)
_WANT_REFUSAL = "  " + _REFUSED.format(label="refused") + "\n"


def _register_scenario(expect_success: bool) -> str:
    return (
        '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="register">\n'
        + _REGISTER.format(cseq=1, auth="")
        + '  <recv response="401" auth="true"/>\n'
        + _REGISTER.format(cseq=2, auth="[authentication]\n")
        + (_WANT_200 if expect_success else _WANT_REFUSAL)
        + "</scenario>\n"
    )


_INVITE_AS_TRUNK = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="forged-trunk">
  <send retrans="500"><![CDATA[
INVITE sip:{number}@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:trunk@[remote_ip]:[remote_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:{number}@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:trunk@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=user1 53655765 2353687637 IN IP4 [local_ip]
s=-
c=IN IP4 [local_ip]
t=0 0
m=audio [media_port] RTP/AVP 8
a=rtpmap:8 PCMA/8000
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  {final}
  <send><![CDATA[
ACK sip:{number}@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:trunk@[remote_ip]:[remote_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:{number}@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
</scenario>
"""


_CALL_BACK = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="call-back">
  <send retrans="500"><![CDATA[
INVITE sip:{number}@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:[service]@[remote_ip]:[remote_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:{number}@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:[service]@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

{sdp}]]></send>
  <recv response="100" optional="true"/>
  <recv response="401" auth="true"/>
  <send><![CDATA[
ACK sip:{number}@[remote_ip]:[remote_port] SIP/2.0
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
  <send retrans="500"><![CDATA[
INVITE sip:{number}@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:[service]@[remote_ip]:[remote_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:{number}@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 2 INVITE
Contact: <sip:[service]@[local_ip]:[local_port]>
[authentication]
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

{sdp}]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  {final}
  <send><![CDATA[
ACK sip:{number}@[remote_ip]:[remote_port] SIP/2.0
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
CSeq: 2 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
</scenario>
"""
_SDP = """v=0
o=user1 53655765 2353687637 IN IP4 [local_ip]
s=-
c=IN IP4 [local_ip]
t=0 0
m=audio [media_port] RTP/AVP 8
a=rtpmap:8 PCMA/8000
"""


def _sipp(
    asterisk: ConfiguredAsterisk, scenario: str, workdir: Path, *, local_ip: str, extra: list[str]
) -> subprocess.CompletedProcess[str]:
    path = workdir / f"scenario-{time.monotonic_ns()}.xml"
    path.write_text(scenario)
    return subprocess.run(
        [
            SIPP,
            f"127.0.0.1:{_sip_port(asterisk)}",
            "-sf",
            str(path),
            "-i",
            local_ip,
            "-p",
            str(port_block()),
            "-mp",
            str(port_block()),
            "-m",
            "1",
            "-nostdin",
            "-timeout",
            "20s",
            "-timeout_error",
            "-recv_timeout",
            "8000",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=workdir,
    )


def _sip_port(asterisk: ConfiguredAsterisk) -> int:
    text = (asterisk.config_dir / "pjsip.conf").read_text()
    udp = text.split("[transport-udp]", 1)[1]
    return int(udp.split("bind = ", 1)[1].split("\n", 1)[0].rsplit(":", 1)[1])


def register(
    asterisk: ConfiguredAsterisk,
    workdir: Path,
    endpoint: str,
    password: str,
    *,
    expect_success: bool,
    local_ip: str = "127.0.0.1",
) -> bool:
    """One REGISTER with digest auth; True when it went as expected."""
    result = _sipp(
        asterisk,
        _register_scenario(expect_success),
        workdir,
        local_ip=local_ip,
        extra=["-s", endpoint, "-au", endpoint, "-ap", password],
    )
    return result.returncode == 0


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sip-security")


@pytest.fixture(scope="module")
def asterisk(module_dir: Path, asterisk_install: AsteriskInstall) -> Iterator[ConfiguredAsterisk]:
    """One instance for the module: c-mn-1 registers; phones only from 127.0.0.1."""
    settings = asterisk_settings(
        module_dir / "data", asterisk_install, trunk_host="127.0.0.1", centralist_networks=["127.0.0.1/32"]
    )
    plan = AsteriskPlan((centralist("c-mn-1"), centralist("c-mn-2")), "MN")
    configured = prepare(settings, plan, log=lambda _line: None)
    configured.instance.start()
    yield configured
    configured.instance.remove()


def _security_log(asterisk: ConfiguredAsterisk) -> str:
    return asterisk.instance.log_text("security.log")


def test_an_invite_claiming_to_be_the_trunk_from_another_address_is_not_answered(
    asterisk: ConfiguredAsterisk, module_dir: Path
) -> None:
    number = "08000011"
    refused = _INVITE_AS_TRUNK.format(
        number=number,
        final=_REFUSED.format(label="ack"),
    )
    result = _sipp(asterisk, refused, module_dir, local_ip=ATTACKER, extra=[])
    assert result.returncode == 0, result.stdout[-1500:] + result.stderr[-1500:]
    assert "PJSIP/trunk" not in asterisk.instance.rx("core show channels")
    assert f"/{ATTACKER}/" in _security_log(asterisk)
    # The same INVITE from the trunk's own address is the trunk, and answered: the test can fail.
    answered = _INVITE_AS_TRUNK.format(number=number, final='<recv response="200"/>')
    result = _sipp(asterisk, answered, module_dir, local_ip="127.0.0.1", extra=[])
    assert result.returncode == 0, result.stdout[-1500:] + result.stderr[-1500:]


def test_the_trunk_is_identified_by_address_only(asterisk: ConfiguredAsterisk) -> None:
    pjsip = (asterisk.config_dir / "pjsip.conf").read_text()
    trunk = pjsip.split("[trunk]\ntype = endpoint", 1)[1].split("\n[", 1)[0]
    assert "identify_by = ip" in trunk
    assert "endpoint_identifier_order = username,ip" in pjsip
    assert "identifier_anonymous" not in (asterisk.config_dir / "modules.conf").read_text()


def test_a_register_needs_the_right_password_and_the_right_network(
    asterisk: ConfiguredAsterisk, module_dir: Path
) -> None:
    assert register(asterisk, module_dir, "c-mn-1", sip_password("c-mn-1"), expect_success=True)
    assert register(asterisk, module_dir, "c-mn-1", "wrong-password", expect_success=False)
    assert register(asterisk, module_dir, "c-mn-1", sip_password("c-mn-2"), expect_success=False)
    # The right password from outside centralist_networks (127.0.0.1/32 here) is refused too.
    assert register(
        asterisk, module_dir, "c-mn-1", sip_password("c-mn-1"), expect_success=False, local_ip=ATTACKER
    )


def test_fail2ban_filter_matches_the_failed_registers_with_the_attackers_address(
    asterisk: ConfiguredAsterisk, module_dir: Path
) -> None:
    for _ in range(3):
        assert register(
            asterisk, module_dir, "c-mn-2", "guessed-password", expect_success=False, local_ip=ATTACKER
        )
    assert register(
        asterisk, module_dir, "nobody", "guessed-password", expect_success=False, local_ip=ATTACKER
    )
    log = asterisk.instance.host(asterisk.instance.layout.log) / "security.log"
    deadline = time.monotonic() + 5
    while log.read_text().count("ChallengeResponseFailed") < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    regex = shutil.which("fail2ban-regex")
    assert regex, "fail2ban is not installed (scripts/bootstrap.sh installs it)"
    result = subprocess.run(
        [regex, "--print-all-matched", str(log), str(FAIL2BAN / "filter.d" / "burgernet-asterisk.conf")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    matched = [line for line in result.stdout.splitlines() if "SecurityEvent=" in line]
    assert len([line for line in matched if f"/{ATTACKER}/" in line]) >= 4, result.stdout
    assert "ChallengeResponseFailed" in result.stdout and "InvalidAccountID" in result.stdout
    # The address fail2ban bans is the attacker's, never the Asterisk side's own.
    hosts = result.stdout.split("Addresses found:", 1)[1] if "Addresses found:" in result.stdout else ""
    assert ATTACKER in result.stdout
    assert "127.0.0.1" not in hosts.split("Lines:", 1)[0]


def _fail2ban_config(folder: Path, security_log: Path) -> Path:
    """Debian's fail2ban configuration plus ours, private to this test: its own socket and
    database, and a ban that only notes the address (the host's firewall is left alone)."""
    config = folder / "fail2ban"
    shutil.copytree("/etc/fail2ban", config)
    for other in (config / "jail.d").glob("*"):
        other.unlink()
    shutil.copy(FAIL2BAN / "filter.d" / "burgernet-asterisk.conf", config / "filter.d")
    jail = (FAIL2BAN / "jail.d" / "burgernet-asterisk.conf").read_text()
    jail = re.sub(r"(?m)^burgernet_log = .*$", f"burgernet_log = {security_log}", jail)
    (config / "jail.d" / "burgernet-asterisk.conf").write_text(jail)
    (config / "fail2ban.local").write_text(
        f"[Definition]\nsocket = {folder}/f2b.sock\npidfile = {folder}/f2b.pid\n"
        f"dbfile = :memory:\nlogtarget = {folder}/f2b.log\n"
    )
    # Loopback is "this host" to fail2ban, which never bans itself unless told to; and no firewall.
    (config / "jail.local").write_text(
        "[burgernet-asterisk]\nignoreself = false\nbanaction = dummy\nbanaction_allports = dummy\n"
    )
    return config


def test_fail2ban_bans_the_address_after_repeated_failures_and_only_that_one(
    asterisk: ConfiguredAsterisk, module_dir: Path, tmp_path: Path
) -> None:
    # Earlier tests in this module failed from ATTACKER six times and from 127.0.0.1 twice.
    for _ in range(5):
        assert register(
            asterisk, module_dir, "c-mn-2", "guessed-again", expect_success=False, local_ip=ATTACKER
        )
    security_log = asterisk.instance.host(asterisk.instance.layout.log) / "security.log"
    client = shutil.which("fail2ban-client")
    assert client, "fail2ban is not installed (scripts/bootstrap.sh installs it)"
    config = _fail2ban_config(tmp_path, security_log)
    checked = subprocess.run([client, "-c", str(config), "-t"], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    started = subprocess.run(
        [client, "-c", str(config), "-x", "start"], capture_output=True, text=True, timeout=60
    )
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        status = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = subprocess.run(
                [client, "-c", str(config), "status", "burgernet-asterisk"], capture_output=True, text=True
            ).stdout
            if ATTACKER in status:
                break
            time.sleep(0.5)
        banned = status.split("Banned IP list:", 1)[1] if "Banned IP list:" in status else ""
        assert ATTACKER in banned, status
        assert "127.0.0.1" not in banned, status  # two wrong passwords are not an attack
    finally:
        subprocess.run([client, "-c", str(config), "stop"], capture_output=True, text=True, timeout=60)


def test_a_rotated_away_password_no_longer_registers(
    bn_context: Context, module_dir: Path, asterisk_install: AsteriskInstall
) -> None:
    first = bn_context.centralists.rotate_password("c-mn-1", actor="test", source="test")
    settings = asterisk_settings(module_dir / "rotate", asterisk_install)

    def configured() -> ConfiguredAsterisk:
        with session_scope(bn_context.sessions) as session:
            return prepare(settings, plan_from_database(session, settings), log=lambda _line: None)

    instance = configured()
    instance.instance.start()
    try:
        assert register(instance, module_dir, "c-mn-1", first, expect_success=True)
        second = bn_context.centralists.rotate_password("c-mn-1", actor="test", source="test")
        assert second != first
        configured()  # render again into the running instance's folder
        instance.instance.rx("module reload res_pjsip.so")
        assert register(instance, module_dir, "c-mn-1", first, expect_success=False)
        assert register(instance, module_dir, "c-mn-1", second, expect_success=True)
        # A centralist nobody made a password for cannot register with anything.
        assert register(instance, module_dir, "c-mn-2", "", expect_success=False)
    finally:
        instance.instance.remove()
    pjsip = (instance.config_dir / "pjsip.conf") if instance.config_dir.exists() else None
    assert pjsip is None or first not in pjsip.read_text()


def test_a_call_back_to_a_foreign_or_premium_number_is_refused_by_the_dialplan(
    asterisk: ConfiguredAsterisk, module_dir: Path
) -> None:
    """A centralist's phone, authenticated, dials out: only Dutch fixed and mobile numbers go to the trunk."""
    credentials = ["-s", "c-mn-1", "-au", "c-mn-1", "-ap", sip_password("c-mn-1")]
    for number in ("0031201234567", "0900123456", "0909123456", "0662345678", "112"):
        refused = _CALL_BACK.format(
            number=number,
            sdp=_SDP,
            final=_REFUSED.format(label="refused").replace(
                '"403"', '"404" optional="true" next="refused"/>\n  <recv response="403"'
            ),
        )
        result = _sipp(asterisk, refused, module_dir, local_ip="127.0.0.1", extra=credentials)
        assert result.returncode == 0, (number, result.stdout[-1500:] + result.stderr[-1500:])
    # A Dutch mobile number does go to the trunk (nobody is there: the call then fails).
    allowed = _CALL_BACK.format(number="0612345678", sdp=_SDP, final='<recv response="503"/>')
    _sipp(asterisk, allowed, module_dir, local_ip="127.0.0.1", extra=credentials)
    console = asterisk.instance.log_text("console.log")
    assert "Called PJSIP/0612345678@trunk" in console
    for number in ("0031201234567", "0900123456", "0909123456", "0662345678", "112"):
        assert f"PJSIP/{number}@trunk" not in console, number
    assert "refused: not a Dutch fixed or mobile number" in console  # 0662...: the pager range
