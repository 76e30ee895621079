"""Asterisk as an unprivileged user, its secret-holding files closed to others, its logs rotated."""

from __future__ import annotations

import grp
import pwd
import re
import ssl
import subprocess
import time
from pathlib import Path

from asterisk_conf.instance import prepare
from asterisk_conf.render import AsteriskPlan
from asterisk_conf.sandbox import HOST_RUN_USER, AsteriskInstall, run_user
from testbed.ports import free_port
from tests.asterisk.conftest import StartAsterisk, asterisk_settings, centralist

PLAN = AsteriskPlan((centralist("c-mn-1"),), "MN")


def _ids(pid: int) -> tuple[int, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    uid = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
    gid = next(line for line in status.splitlines() if line.startswith("Gid:")).split()[1:]
    assert len(set(uid)) == 1 and len(set(gid)) == 1, (uid, gid)  # real = effective = saved
    return int(uid[0]), int(gid[0])


def test_asterisk_runs_as_its_own_user_and_its_config_is_0640(start_asterisk: StartAsterisk) -> None:
    configured = start_asterisk(PLAN)
    process = configured.instance.process
    assert process is not None
    user = run_user(configured.install)
    assert user.uid != 0
    assert _ids(process.pid) == (user.uid, user.gid)
    if configured.install.root is not None:
        # Inside the chroot it is "asterisk"; on the host its ids are nobody else's (not, say,
        # postgres's, whose files the same number would open).
        assert pwd.getpwuid(user.uid).pw_name == HOST_RUN_USER
        assert grp.getgrgid(user.gid).gr_name == HOST_RUN_USER
    for name in ("pjsip.conf", "manager.conf", "asterisk.conf"):
        info = (configured.config_dir / name).stat()
        assert info.st_mode & 0o777 == 0o640 and info.st_uid == 0 and info.st_gid == user.gid, name
    assert configured.config_dir.stat().st_mode & 0o007 == 0  # nothing for others
    # It still works as that user: it reads its configuration and writes its logs and database.
    assert "c-mn-1" in configured.instance.rx("pjsip show endpoints")
    assert (
        configured.instance.host(configured.instance.layout.lib) / "astdb.sqlite3"
    ).stat().st_uid == user.uid


def test_logs_are_rotated_by_size_and_only_a_few_are_kept(
    tmp_path: Path, asterisk_install: AsteriskInstall
) -> None:
    configured = prepare(asterisk_settings(tmp_path, asterisk_install), PLAN, log=lambda _line: None)
    instance = configured.instance
    instance.log_max_bytes = 200  # every check finds console.log too big
    instance.log_keep = 2
    instance.log_check_seconds = 0.3
    log_dir = instance.host(instance.layout.log)
    try:
        instance.start()
        deadline = time.monotonic() + 20
        while not (log_dir / "console.log.1").is_file() and time.monotonic() < deadline:
            instance.rx("core show version")  # a little more to log
            time.sleep(0.2)
        instance.log_max_bytes = 10**9  # no more rotations; the next check only tidies up
        time.sleep(1.0)
        names = sorted(path.name for path in log_dir.iterdir())
        assert "console.log.0" in names and "console.log.1" in names, names
        assert "console.log.2" not in names and "console.log.3" not in names, names  # the oldest went
        # Asterisk writes on into a fresh console.log after each rotation.
        instance.rx("core show version")
        assert "Remote UNIX connection" in (log_dir / "console.log").read_text() or any(
            "Remote UNIX connection" in (log_dir / name).read_text()
            for name in names
            if name.startswith("console")
        )
        assert (log_dir / "console.log").stat().st_size < 100_000
    finally:
        instance.remove()


def test_the_tls_transport_serves_the_configured_certificate(
    tmp_path: Path, start_asterisk: StartAsterisk, asterisk_install: AsteriskInstall
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    openssl = [
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=burgernet-test",
    ]
    subprocess.run(
        [*openssl, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    port = free_port()
    settings = asterisk_settings(
        tmp_path / "data",
        asterisk_install,
        tls_enabled=True,
        tls_port=port,
        tls_cert_file=cert,
        tls_key_file=key,
    )
    configured = start_asterisk(PLAN, settings)
    assert "transport-tls" in configured.instance.rx("pjsip show transports")
    endpoint = configured.instance.rx("pjsip show endpoint c-mn-1")
    assert re.search(r"media_encryption\s*:\s*sdes", endpoint) and re.search(
        r"transport\s*:\s*transport-tls", endpoint
    )
    served = ssl.get_server_certificate(("127.0.0.1", port), timeout=10)
    assert ssl.PEM_cert_to_DER_cert(served) == ssl.PEM_cert_to_DER_cert(cert.read_text())
    keys = configured.config_dir / "keys"
    assert (keys / "sip-key.pem").stat().st_mode & 0o777 == 0o640


def test_under_the_run_umask_asterisk_reaches_prompts_and_tips_in_a_new_data_folder(
    start_asterisk: StartAsterisk, asterisk_install: AsteriskInstall, tmp_path: Path
) -> None:
    """`burgernet run` works under umask 027; the chroot's folders on the way to a data folder
    it has never seen are made then. Asterisk's user must still pass them to read the prompts
    and write the tips (else callers hear silence and tips are lost)."""
    import os

    if asterisk_install.root is None:
        return  # a host Asterisk has no chroot scaffolding to check
    settings = asterisk_settings(tmp_path / "never" / "seen" / "before", asterisk_install)
    previous = os.umask(0o027)
    try:
        sounds = settings.sounds_dir / "nl" / "burgernet"
        sounds.mkdir(parents=True)
        (sounds / "welcome.wav").write_bytes(b"RIFF")
        configured = start_asterisk(PLAN, settings)
    finally:
        os.umask(previous)
    user = run_user(configured.install)
    tips = settings.recordings_dir / "tips" / "unassigned"

    def as_asterisk(test: str) -> int:
        command = ["chroot", f"--userspec={user.uid}:{user.gid}", str(asterisk_install.root)]
        return subprocess.run([*command, "/bin/sh", "-c", test], capture_output=True).returncode

    assert as_asterisk(f"test -r {(sounds / 'welcome.wav').resolve()}") == 0
    # Record() makes the tip's folder itself, then writes the recording.
    assert as_asterisk(f"mkdir -p {tips.resolve()} && touch {tips.resolve()}/probe.wav") == 0
    assert as_asterisk(f"ls {(tmp_path / 'never').resolve()}") != 0  # may pass, not list
