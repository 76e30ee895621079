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

Asterisk runs as the unprivileged user ``asterisk`` (asterisk.conf ``runuser``): it owns the
instance's run, spool, log and lib folders; the configuration is root's and only readable for
its group; in the shared data folder it may read the sounds and write the tips. Its log files
are rotated by size (:meth:`AsteriskInstance.rotate_logs`, from a watcher thread).
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from asterisk_conf.apt_sources import NoDebianArchive, debian_mirror

SUITE = "sid"
PACKAGES = ("asterisk",)
STAMP = ".burgernet-sandbox"
INSTANCES_DIR = "burgernet-instances"
RUN_USER = "asterisk"
# On the host, the same numeric ids belong to this system user (see host_run_user).
HOST_RUN_USER = "burgernet-asterisk"
# Log files Asterisk writes (logger.conf); rotated when one outgrows LOG_MAX_BYTES.
LOG_FILES = ("messages.log", "console.log", "security.log")
LOG_MAX_BYTES = 10 * 1024 * 1024
LOG_KEEP = 5
LOG_CHECK_SECONDS = 60.0


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
        ensure_run_user(root)
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
    ensure_run_user(building)
    version = _version(["chroot", str(building)])
    (building / STAMP).write_text(version + "\n")
    if root.exists():  # another run finished first; keep theirs
        shutil.rmtree(building, ignore_errors=True)
    else:
        building.rename(root)
    log(f"Asterisk sandbox ready in {time.monotonic() - started:.0f} s: {version}")
    return AsteriskInstall(root, (root / STAMP).read_text().strip())


@dataclass(frozen=True)
class RunUser:
    uid: int
    gid: int


def _passwd_entry(path: Path, name: str) -> list[str] | None:
    if not path.is_file():
        return None
    for line in path.read_text().splitlines():
        fields = line.split(":")
        if fields and fields[0] == name:
            return fields
    return None


def run_user(install: AsteriskInstall) -> RunUser:
    """Asterisk's own user and group (ids as the host's kernel sees them)."""
    if install.root is None:
        try:
            return RunUser(pwd.getpwnam(RUN_USER).pw_uid, grp.getgrnam(RUN_USER).gr_gid)
        except KeyError:
            raise SandboxError(f"no user {RUN_USER!r} for Asterisk on this host") from None
    user = _passwd_entry(install.root / "etc" / "passwd", RUN_USER)
    group = _passwd_entry(install.root / "etc" / "group", RUN_USER)
    if user is None or group is None:
        raise SandboxError(f"no user {RUN_USER!r} in the sandbox {install.root}")
    return RunUser(int(user[2]), int(group[2]))


def host_run_user() -> RunUser:
    """The host's own system user for Asterisk, made when missing.

    The chroot's ``asterisk`` user must be nobody else on the host: Debian's package picks the
    next free id *inside the chroot* (101, say), which on the host may be ``postgres`` — and a
    process's rights on the host (the bind-mounted data folder, a database's files) follow its
    numeric id, not the name the chroot gives it. So the host gets a system user of its own and
    the chroot's ``asterisk`` is given the same ids.
    """
    try:
        entry = pwd.getpwnam(HOST_RUN_USER)
    except KeyError:
        _run_or_fail(
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                HOST_RUN_USER,
            ],
            f"cannot make the host user {HOST_RUN_USER!r} for Asterisk",
        )
        entry = pwd.getpwnam(HOST_RUN_USER)
    return RunUser(entry.pw_uid, entry.pw_gid)


def _run_or_fail(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SandboxError(f"{what}: {(result.stderr or result.stdout).strip()}")


def ensure_run_user(root: Path) -> None:
    """Give the chroot's ``asterisk`` user and group the ids of the host's own Asterisk user."""
    wanted = host_run_user()
    chroot = ["chroot", str(root)]
    user = _passwd_entry(root / "etc" / "passwd", RUN_USER)
    group = _passwd_entry(root / "etc" / "group", RUN_USER)
    if group is None:
        _run_or_fail([*chroot, "groupadd", "--system", "-o", "-g", str(wanted.gid), RUN_USER], "groupadd")
    elif int(group[2]) != wanted.gid:
        old_gid = int(group[2])
        _run_or_fail([*chroot, "groupmod", "-o", "-g", str(wanted.gid), RUN_USER], "groupmod")
        _run_or_fail(
            [
                *chroot,
                "find",
                "/",
                "-xdev",
                "-gid",
                str(old_gid),
                "-exec",
                "chgrp",
                "-h",
                str(wanted.gid),
                "{}",
                "+",
            ],
            "re-owning the Asterisk group's files",
        )
    if user is None:
        _run_or_fail(
            [
                *chroot,
                "useradd",
                "--system",
                "-o",
                "-u",
                str(wanted.uid),
                "-g",
                RUN_USER,
                "--home-dir",
                "/var/lib/asterisk",
                "--shell",
                "/usr/sbin/nologin",
                RUN_USER,
            ],
            f"cannot make user {RUN_USER!r} in the sandbox",
        )
    elif (int(user[2]), int(user[3])) != (wanted.uid, wanted.gid):
        old_uid = int(user[2])
        _run_or_fail(
            [*chroot, "usermod", "-o", "-u", str(wanted.uid), "-g", str(wanted.gid), RUN_USER], "usermod"
        )
        _run_or_fail(
            [
                *chroot,
                "find",
                "/",
                "-xdev",
                "-uid",
                str(old_uid),
                "-exec",
                "chown",
                "-h",
                str(wanted.uid),
                "{}",
                "+",
            ],
            "re-owning the Asterisk user's files",
        )


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
        self,
        install: AsteriskInstall,
        layout: InstanceLayout,
        shared_dirs: tuple[Path, ...] = (),
        *,
        readable_dirs: tuple[Path, ...] = (),
        writable_dirs: tuple[Path, ...] = (),
        log_max_bytes: int = LOG_MAX_BYTES,
        log_keep: int = LOG_KEEP,
        log_check_seconds: float = LOG_CHECK_SECONDS,
    ) -> None:
        self.install = install
        self.layout = layout
        self.shared_dirs = tuple(path.resolve() for path in shared_dirs)
        # Folders in the shared data Asterisk reads (prompts, alert messages) or writes (tips).
        self.readable_dirs = tuple(path.resolve() for path in readable_dirs)
        self.writable_dirs = tuple(path.resolve() for path in writable_dirs)
        self.log_max_bytes = log_max_bytes
        self.log_keep = log_keep
        self.log_check_seconds = log_check_seconds
        self.process: subprocess.Popen[bytes] | None = None
        self._mounted: list[Path] = []
        self._stop_watching = threading.Event()
        self._watcher: threading.Thread | None = None

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
            self._let_asterisk_pass_to(target)
            if f" {target} " in mounts:
                continue
            result = subprocess.run(
                ["mount", "--bind", str(directory), str(target)], capture_output=True, text=True
            )
            if result.returncode != 0:
                raise SandboxError(f"cannot bind-mount {directory} into the sandbox: {result.stderr.strip()}")
            self._mounted.append(target)

    def _let_asterisk_pass_to(self, mount_point: Path) -> None:
        """The folders inside the chroot on the way to a bind mount are bare scaffolding, made
        under the process umask (027 for `burgernet run`): Asterisk's user could not pass them to
        reach its prompts and tips. Each gets the right to pass (x), never to list or write;
        what is readable is decided by the mounted folder itself."""
        assert self.install.root is not None
        root = self.install.root.resolve()
        for folder in mount_point.resolve().parents:
            if folder == root or root not in folder.parents:
                break
            mode = stat.S_IMODE(folder.stat().st_mode)
            if mode & 0o011 != 0o011:
                os.chmod(folder, mode | 0o011)

    def _unmount_shared(self) -> None:
        for target in reversed(self._mounted):
            subprocess.run(["umount", "-l", str(target)], capture_output=True)
        self._mounted.clear()

    def grant_access(self) -> None:
        """Give Asterisk's user what it needs, and no more.

        Its own folders (run, spool, log, lib) are its own; the configuration stays root's,
        0750/0640 with Asterisk's group (it holds the AMI secret and the SIP digests). In the
        shared data folder Asterisk's group may pass through the folders on the way, read the
        prompts and messages, and write the tips; set-group-ID folders keep files made there
        later in that group.
        """
        user = run_user(self.install)
        if self.install.root is not None:
            # A root file system: the build folder was made 0700 by mkdtemp.
            os.chmod(self.install.root, 0o755)
        base = self.host(self.layout.base)
        for folder in (base.parent, base) if self.install.root is not None else (base,):
            os.chown(folder, 0, user.gid)
            os.chmod(folder, 0o750)
        for directory in (self.layout.run, self.layout.spool, self.layout.log, self.layout.lib):
            for path in _tree(self.host(directory)):
                os.chown(path, user.uid, user.gid, follow_symlinks=False)
        for path in _tree(self.host(self.layout.etc)):
            os.chown(path, 0, user.gid, follow_symlinks=False)
            # Set-group-ID folders: files rendered later (a reload) are in Asterisk's group too.
            os.chmod(path, 0o2750 if path.is_dir() else 0o640)
        for directory in (*self.readable_dirs, *self.writable_dirs):
            directory.mkdir(parents=True, exist_ok=True)
            for parent in directory.parents:  # pass through: group x on the way from the data folder
                if not any(parent == shared or shared in parent.parents for shared in self.shared_dirs):
                    break
                os.chown(parent, -1, user.gid)
                os.chmod(parent, stat.S_IMODE(parent.stat().st_mode) | stat.S_IXGRP)
        for directory, write in (
            *((d, False) for d in self.readable_dirs),
            *((d, True) for d in self.writable_dirs),
        ):
            for path in _tree(directory):
                os.chown(path, -1, user.gid, follow_symlinks=False)
                mode = stat.S_IMODE(path.lstat().st_mode) | stat.S_IRGRP
                if path.is_dir():
                    mode |= stat.S_IXGRP | stat.S_ISGID | (stat.S_IWGRP if write else 0)
                elif write:
                    mode |= stat.S_IWGRP
                os.chmod(path, mode)

    def rotate_logs(self) -> bool:
        """``logger rotate`` when a log file is over ``log_max_bytes``; keeps ``log_keep`` old ones."""
        log_dir = self.host(self.layout.log)
        sizes = [(log_dir / name).stat().st_size for name in LOG_FILES if (log_dir / name).is_file()]
        rotated = False
        if any(size > self.log_max_bytes for size in sizes):
            self.rx("logger rotate")
            rotated = True
        for name in LOG_FILES:
            for old in log_dir.glob(f"{name}.*"):
                suffix = old.name.removeprefix(f"{name}.")
                if suffix.isdigit() and int(suffix) >= self.log_keep:
                    old.unlink(missing_ok=True)
        return rotated

    def _watch_logs(self) -> None:
        while not self._stop_watching.wait(self.log_check_seconds):
            with contextlib.suppress(SandboxError, subprocess.TimeoutExpired, OSError):
                self.rotate_logs()

    def start(self, boot_timeout: float = 60) -> None:
        for directory in self.layout.all():
            self.host(directory).mkdir(parents=True, exist_ok=True)
        self._mount_shared()
        self.grant_access()
        # -f: stay in the foreground as our child; -n: no colours. Asterisk logs into its own
        # files (logger.conf); stdout only carries what it says before its logger is up.
        with (self.host(self.layout.log) / "startup.log").open("wb") as log_file:
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
                    f"see {self.host(self.layout.log)}/startup.log, console.log and messages.log"
                )
            try:
                self.rx("core waitfullybooted", timeout=10)  # fails until the control socket exists
                self._stop_watching.clear()
                self._watcher = threading.Thread(target=self._watch_logs, name="asterisk-logs", daemon=True)
                self._watcher.start()
                return
            except (SandboxError, subprocess.TimeoutExpired):
                time.sleep(0.2)
        self.stop()
        raise SandboxError(f"Asterisk did not finish booting within {boot_timeout:.0f} s")

    def stop(self, timeout: float = 15) -> None:
        self._stop_watching.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
            self._watcher = None
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


def _tree(top: Path) -> Iterable[Path]:
    """``top`` and everything below it (symbolic links are not followed)."""
    if not top.exists():
        return
    yield top
    for directory, folders, files in os.walk(top):
        for name in (*folders, *files):
            yield Path(directory) / name
