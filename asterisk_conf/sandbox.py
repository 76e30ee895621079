"""A real Asterisk 22 for development, tests, CI and ``burgernet run``.

Debian 12 has no Asterisk package; Debian sid has Asterisk 22. The sandbox is a minimal sid
chroot made with debootstrap (about 45 s and 500 MB here), cached at
``settings.asterisk.sandbox_root`` and reused by every later run. It is built in a
temporary folder next to the cache and renamed into place only when complete, so a killed
build is never mistaken for a good one. An Asterisk installed on the host is used instead
when there is one (``asterisk.prefer_system_asterisk``).

Each :class:`AsteriskInstance` has its own configuration, run, spool, log and lib folders,
so a test instance and ``burgernet run`` can live side by side on different ports. The
project's data folder is bind-mounted into the chroot at the same absolute path, so prompt
and recording paths mean the same file inside Asterisk and in Python.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from asterisk_conf.apt_sources import NoDebianArchive, debian_mirror

SUITE = "sid"
PACKAGES = ("asterisk",)
STAMP = ".burgernet-sandbox"
INSTANCES_DIR = "burgernet-instances"


class SandboxError(RuntimeError):
    """Asterisk cannot be had or started; the message says what to do."""


@dataclass(frozen=True)
class AsteriskInstall:
    """Where Asterisk lives: a chroot (``root``) or the host itself (``root`` is None)."""

    root: Path | None
    version: str

    def command(self, *args: str) -> list[str]:
        return ["chroot", str(self.root), *args] if self.root else list(args)

    def inside(self, host_path: Path) -> Path:
        """The host path of a file Asterisk sees at ``host_path`` (its own view)."""
        return host_path if self.root is None else self.root / str(host_path).lstrip("/")

    @property
    def modules_dir(self) -> Path:
        for candidate in (
            "usr/lib/x86_64-linux-gnu/asterisk/modules",
            "usr/lib/aarch64-linux-gnu/asterisk/modules",
            "usr/lib/asterisk/modules",
        ):
            if (Path(self.root or "/") / candidate).is_dir():
                return Path("/") / candidate
        raise SandboxError("Asterisk modules folder not found")


def _version(install_command: list[str]) -> str:
    result = subprocess.run([*install_command, "asterisk", "-V"], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise SandboxError(f"asterisk -V failed: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout.strip()


def provision(
    root: Path,
    prefer_system: bool = True,
    log: Callable[[str], None] = print,
    mirror: str | None = None,
) -> AsteriskInstall:
    """Return a usable Asterisk: the host's, the cached chroot, or a freshly built chroot.

    ``mirror`` defaults to the Debian archive apt already uses on this host (see
    :mod:`asterisk_conf.apt_sources`); the project names no mirror of its own.
    """
    system = shutil.which("asterisk")
    if prefer_system and system:
        return AsteriskInstall(None, _version([]))
    stamp = root / STAMP
    if stamp.is_file():
        _copy_host_names(root)  # the cache may outlive a change of the host's name or resolver
        return AsteriskInstall(root, stamp.read_text().strip())
    if os.geteuid() != 0:
        raise SandboxError("building the Asterisk sandbox needs root (debootstrap and chroot)")
    if shutil.which("debootstrap") is None:
        raise SandboxError("debootstrap is not installed: apt-get install debootstrap (or install Asterisk)")
    if mirror is None:
        try:
            mirror = debian_mirror()
        except NoDebianArchive as exc:
            raise SandboxError(str(exc)) from None
    root.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{root.name}.building-", dir=root.parent))
    log(
        f"building the Asterisk sandbox from Debian {SUITE} ({mirror}) into {root}; this takes about a minute"
    )
    started = time.monotonic()
    result = subprocess.run(
        ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(building), mirror],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if result.returncode != 0:
        shutil.rmtree(building, ignore_errors=True)
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise SandboxError(f"debootstrap failed (is {mirror} reachable?):\n{tail}")
    _copy_host_names(building)
    version = _version(["chroot", str(building)])
    (building / STAMP).write_text(version + "\n")
    if root.exists():  # another run finished first; keep theirs
        shutil.rmtree(building, ignore_errors=True)
    else:
        building.rename(root)
    log(f"Asterisk sandbox ready in {time.monotonic() - started:.0f} s: {version}")
    return AsteriskInstall(root, (root / STAMP).read_text().strip())


def _copy_host_names(root: Path) -> None:
    # Without the host's names every call stalls on hostname look-ups inside Asterisk.
    for name in ("hosts", "resolv.conf"):
        source, target = Path("/etc", name), root / "etc" / name
        if source.is_file() and (not target.is_file() or target.read_bytes() != source.read_bytes()):
            target.unlink(missing_ok=True)  # resolv.conf may be a dangling symlink in the chroot
            shutil.copyfile(source, target)


@dataclass(frozen=True)
class InstanceLayout:
    """An instance's folders as Asterisk sees them (inside the chroot, if any)."""

    base: Path

    @property
    def etc(self) -> Path:
        return self.base / "etc"

    @property
    def run(self) -> Path:
        return self.base / "run"

    @property
    def spool(self) -> Path:
        return self.base / "spool"

    @property
    def log(self) -> Path:
        return self.base / "log"

    @property
    def lib(self) -> Path:
        return self.base / "lib"

    def all(self) -> tuple[Path, ...]:
        return (self.etc, self.run, self.spool, self.log, self.lib)


def instance_layout(install: AsteriskInstall, name: str, host_base: Path | None = None) -> InstanceLayout:
    """Folders for instance ``name``: under /burgernet-instances in a chroot, else ``host_base``."""
    if install.root is not None:
        return InstanceLayout(Path("/") / INSTANCES_DIR / name)
    if host_base is None:
        raise SandboxError("a system Asterisk instance needs a folder for its files")
    return InstanceLayout(host_base)


class AsteriskInstance:
    """One running Asterisk: started in the foreground as our child, stopped with us."""

    def __init__(
        self, install: AsteriskInstall, layout: InstanceLayout, shared_dirs: tuple[Path, ...] = ()
    ) -> None:
        self.install = install
        self.layout = layout
        self.shared_dirs = tuple(path.resolve() for path in shared_dirs)
        self.process: subprocess.Popen[bytes] | None = None
        self._mounted: list[Path] = []

    def host(self, path: Path) -> Path:
        """The host path of a file Asterisk sees at ``path`` (e.g. a recording it wrote)."""
        return self.install.inside(path)

    host_path = host

    @property
    def config_file(self) -> Path:
        return self.layout.etc / "asterisk.conf"

    def rx(self, command: str, timeout: float = 30) -> str:
        """Run an Asterisk CLI command against this instance's control socket."""
        result = subprocess.run(
            self.install.command("asterisk", "-C", str(self.config_file), "-rx", command),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise SandboxError(
                f"asterisk -rx {command!r} failed: {result.stderr.strip() or result.stdout.strip()}"
            )
        return result.stdout

    def _mount_shared(self) -> None:
        if self.install.root is None:
            return
        mounts = Path("/proc/mounts").read_text() if Path("/proc/mounts").exists() else ""
        for directory in self.shared_dirs:
            directory.mkdir(parents=True, exist_ok=True)
            target = self.host(directory)
            target.mkdir(parents=True, exist_ok=True)
            if f" {target} " in mounts:
                continue
            result = subprocess.run(
                ["mount", "--bind", str(directory), str(target)], capture_output=True, text=True
            )
            if result.returncode != 0:
                raise SandboxError(f"cannot bind-mount {directory} into the sandbox: {result.stderr.strip()}")
            self._mounted.append(target)

    def _unmount_shared(self) -> None:
        for target in reversed(self._mounted):
            subprocess.run(["umount", "-l", str(target)], capture_output=True)
        self._mounted.clear()

    def start(self, boot_timeout: float = 60) -> None:
        for directory in self.layout.all():
            self.host(directory).mkdir(parents=True, exist_ok=True)
        self._mount_shared()
        # -f: stay in the foreground as our child; -n: no colours. The child keeps its own
        # copy of the log handle.
        with (self.host(self.layout.log) / "console.log").open("ab") as log_file:
            self.process = subprocess.Popen(
                self.install.command("asterisk", "-C", str(self.config_file), "-f", "-n"),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + boot_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._unmount_shared()
                raise SandboxError(
                    f"Asterisk exited with {self.process.returncode} while booting; "
                    f"see {self.host(self.layout.log)}/console.log and messages.log"
                )
            try:
                self.rx("core waitfullybooted", timeout=10)  # fails until the control socket exists
                return
            except (SandboxError, subprocess.TimeoutExpired):
                time.sleep(0.2)
        self.stop()
        raise SandboxError(f"Asterisk did not finish booting within {boot_timeout:.0f} s")

    def stop(self, timeout: float = 15) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(SandboxError, subprocess.TimeoutExpired):
                self.rx("core stop now", timeout=5)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        self._unmount_shared()

    def remove(self) -> None:
        """Stop and delete this instance's own folders (config, logs, spool, database)."""
        self.stop()
        base = self.host(self.layout.base)
        mounts = Path("/proc/mounts").read_text() if Path("/proc/mounts").exists() else ""
        if f" {base}/" in mounts:  # never delete through a bind mount into the host's data
            raise SandboxError(f"{base} still has something mounted below it; not deleting it")
        for directory in self.layout.all():
            shutil.rmtree(self.host(directory), ignore_errors=True)
        if base.is_dir() and not any(base.iterdir()):
            base.rmdir()

    def log_text(self, name: str = "messages.log") -> str:
        path = self.host(self.layout.log) / name
        return path.read_text(errors="replace") if path.is_file() else ""
