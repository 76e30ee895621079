"""Running Kamailio: the configuration check, and one managed process (tests, `cluster up`).

The process runs in the foreground (``-DD``) and logs to stderr (``-E``), which goes to a file;
its pid file and ctl socket live in the rendered folder's ``run/``, so several instances (and
the Debian service, if anyone enables it) never share one. :meth:`KamailioProcess.start` returns
once Kamailio answers an OPTIONS request on its SIP address.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kamailio_conf.render import RenderedEdge

# Where Debian's package puts it; PATH first.
_KNOWN_BINARY = Path("/usr/sbin/kamailio")
_KNOWN_KAMCMD = Path("/usr/sbin/kamcmd")
# The ctl module's socket, in the rendered folder's run/ (kamailio.cfg.j2 names it).
CTL_SOCKET = "kamailio_ctl"
# Shared memory for the managed process, in MB (Kamailio's default is 64): registrations,
# transactions and the htables fit easily.
SHARED_MEMORY_MB = 64


class KamailioError(RuntimeError):
    """Kamailio is missing, refused its configuration, or did not come up."""


def kamailio_binary() -> Path:
    found = shutil.which("kamailio") or (str(_KNOWN_BINARY) if _KNOWN_BINARY.is_file() else None)
    if found is None:
        raise KamailioError(
            "kamailio is not installed: install the Debian package `kamailio` "
            "(scripts/bootstrap.sh does), then try again"
        )
    return Path(found)


def kamcmd_binary() -> Path:
    found = shutil.which("kamcmd") or (str(_KNOWN_KAMCMD) if _KNOWN_KAMCMD.is_file() else None)
    if found is None:
        raise KamailioError("kamcmd is not installed: it comes with the Debian package `kamailio`")
    return Path(found)


def reload_running(edge: RenderedEdge) -> list[str]:
    """Make the Kamailio running ``edge`` read the rendered node list and digests again.

    Calls in progress and registrations stay. kamailio.cfg itself (addresses, timers, limits)
    is read only at start: a change there needs a restart.
    """
    socket_path = edge.runtime_dir / CTL_SOCKET
    if not socket_path.is_socket():
        raise KamailioError(f"no Kamailio is running on {edge.directory} (no control socket {socket_path})")
    replies = []
    for command in (["dispatcher.reload"], ["htable.reload", "ha1"]):
        # The kamcmd binary with our own arguments, no shell.
        completed = subprocess.run(  # nosec B603
            [str(kamcmd_binary()), "-s", f"unix:{socket_path}", *command],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        reply = (completed.stdout + completed.stderr).strip()
        if completed.returncode != 0 or "error" in reply.lower():
            raise KamailioError(f"kamailio refused {' '.join(command)}: {reply}")
        replies.append(f"{' '.join(command)}: {reply or 'ok'}")
    return replies


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    output: str


def check_configuration(config_file: Path) -> CheckResult:
    """``kamailio -c``: parse the configuration and load its modules without starting."""
    binary = kamailio_binary()
    runtime_dir = config_file.parent / "run"
    runtime_dir.mkdir(mode=0o700, exist_ok=True)
    # The kamailio binary with our own arguments, no shell.
    completed = subprocess.run(  # nosec B603
        [str(binary), "-c", "-f", str(config_file), "-Y", str(runtime_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = (completed.stderr + completed.stdout).strip()
    return CheckResult(completed.returncode == 0 and "config file ok" in output, output)


def options_ping(host: str, port: int, timeout: float = 0.5, source: str | None = None) -> int | None:
    """Send one OPTIONS to ``host:port`` over UDP; the reply's status code, or None without one.

    ``source``: the local address to send from (default: loopback for a loopback edge, else any).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        if source is None:
            # Any local address for a remote edge: only the reply comes back to this socket.
            source = host if host.startswith("127.") else "0.0.0.0"  # nosec B104
        sock.bind((source, 0))
        sock.settimeout(timeout)
        local_host, local_port = sock.getsockname()
        tag, call_id = secrets.token_hex(6), secrets.token_hex(12)
        request = (
            f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {local_host}:{local_port};branch=z9hG4bK{secrets.token_hex(8)};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:probe@{local_host}>;tag={tag}\r\n"
            f"To: <sip:{host}:{port}>\r\n"
            f"Call-ID: {call_id}\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        sock.sendto(request.encode(), (host, port))
        try:
            data = sock.recv(65535)
        except TimeoutError:
            return None
        first_line = data.split(b"\r\n", 1)[0].decode(errors="replace").split()
        if len(first_line) >= 2 and first_line[0] == "SIP/2.0" and first_line[1].isdigit():
            return int(first_line[1])
        return None


@dataclass
class KamailioProcess:
    """One Kamailio running a rendered configuration, in the foreground, logging to ``log_file``."""

    edge: RenderedEdge
    log_file: Path
    extra_arguments: Sequence[str] = ()
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def pid_file(self) -> Path:
        return self.edge.runtime_dir / "kamailio.pid"

    @property
    def ctl_socket(self) -> Path:
        return self.edge.runtime_dir / CTL_SOCKET

    def start(self, ready_timeout: float = 15.0) -> None:
        binary = kamailio_binary()
        self.edge.runtime_dir.mkdir(mode=0o700, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            # The kamailio binary with our own arguments, no shell.
            self.process = subprocess.Popen(  # nosec B603
                [
                    str(binary),
                    "-DD",
                    "-E",
                    "-f",
                    str(self.edge.config_file),
                    "-P",
                    str(self.pid_file),
                    "-Y",
                    str(self.edge.runtime_dir),
                    "-m",
                    str(SHARED_MEMORY_MB),
                    *self.extra_arguments,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group: stop() ends Kamailio and its workers, nothing else.
                start_new_session=True,
            )
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise KamailioError(
                    f"kamailio exited with {self.process.returncode} at start; see {self.log_file}:\n"
                    + self.log_tail()
                )
            if options_ping(self.edge.listen_address, self.edge.listen_port) == 200:
                return
            time.sleep(0.1)
        self.stop()
        raise KamailioError(
            f"kamailio did not answer OPTIONS within {ready_timeout:.0f} s; see {self.log_file}"
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM to Kamailio's process group (main process and workers); SIGKILL if it lingers."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout)
        self.pid_file.unlink(missing_ok=True)
        self.process = None
