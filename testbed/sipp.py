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

from asterisk_conf.sipp import caller_scenario
from testbed.sipp_phone import phone_scenario

SIPP = shutil.which("sipp") or "/usr/bin/sipp"


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
        return self.phone(f"all-{port}", port, media_port, "answer", ring_ms=0)

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
        scenario = self._write(f"uas-{endpoint}-{behaviour}.xml", phone_scenario(behaviour, ring_ms))
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
        scenario = self._write(
            f"uac-{local_port}.xml", caller_scenario(number, caller, digits, hold_ms, speak_at_ms)
        )
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
