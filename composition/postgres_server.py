"""A PostgreSQL server of Burgernet's own, for `burgernet cluster up` on one machine.

A real deployment uses its own PostgreSQL (with Patroni for failover: see the README); this
one is the local stand-in, started the way Debian's package would: ``initdb`` and ``pg_ctl`` as
the ``postgres`` user (PostgreSQL refuses to run as root), listening on loopback only, with
password authentication (scram-sha-256) for the ``burgernet`` role. The password is generated
once and kept in ``<folder>/password`` (mode 0600); the data survives ``cluster down``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import psycopg2

from burgernet.secrets import generate, write_private_file

ROLE = "burgernet"
DATABASE = "burgernet"


class PostgresServerError(RuntimeError):
    """PostgreSQL is not installed, or did not start."""


def _pg_bin(name: str) -> str:
    for directory in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (directory / name).exists():
            return str(directory / name)
    found = shutil.which(name)
    if found is None:
        raise PostgresServerError(f"{name} not found: install PostgreSQL (apt-get install postgresql)")
    return found


class ManagedPostgres:
    def __init__(self, folder: Path, port: int, os_user: str = "postgres") -> None:
        self.folder = folder
        self.data_dir = folder / "data"
        self.port = port
        self.os_user = os_user

    @property
    def password_file(self) -> Path:
        return self.folder / "password"

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()

    @property
    def url(self) -> str:
        return f"postgresql://{ROLE}:{quote(self.password, safe='')}@127.0.0.1:{self.port}/{DATABASE}"

    def _as_user(self, *command: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", self.os_user, "--", *command]
        return list(command)

    def _run(self, *command: str) -> None:
        # Our own binaries with fixed arguments, no shell.
        result = subprocess.run(self._as_user(*command), capture_output=True, text=True)  # nosec B603
        if result.returncode != 0:
            raise PostgresServerError(f"{Path(command[0]).name} failed: {result.stderr.strip()[-400:]}")

    def start(self, timeout: float = 30.0) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            # The postgres user must be able to pass through the parent (our umask keeps it out).
            os.chmod(self.folder.parent, self.folder.parent.stat().st_mode | 0o005)
        if not self.password_file.exists():
            write_private_file(self.password_file, generate() + "\n")
        if os.geteuid() == 0:
            shutil.chown(self.folder, self.os_user, self.os_user)
        first_start = not (self.data_dir / "PG_VERSION").exists()
        if first_start:
            superuser_password = self.folder / "initdb-password"
            write_private_file(superuser_password, generate() + "\n")
            if os.geteuid() == 0:
                shutil.chown(superuser_password, self.os_user, self.os_user)
            try:
                self._run(
                    _pg_bin("initdb"),
                    "-D",
                    str(self.data_dir),
                    "--auth-local=peer",
                    "--auth-host=scram-sha-256",
                    "-U",
                    self.os_user,
                    f"--pwfile={superuser_password}",
                    "-E",
                    "UTF8",
                )
            finally:
                superuser_password.unlink(missing_ok=True)
        self._run(
            _pg_bin("pg_ctl"),
            "-D",
            str(self.data_dir),
            "-l",
            str(self.folder / "postgres.log"),
            "-o",
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1",
            "-w",
            "-t",
            str(int(timeout)),
            "start",
        )
        if first_start:
            self._create_role_and_database()

    def _create_role_and_database(self) -> None:
        # Over the Unix socket as the postgres OS user (peer authentication): no password needed.
        psql = _pg_bin("psql")
        statements = (
            f"CREATE ROLE {ROLE} LOGIN PASSWORD '{self.password}'",
            f"CREATE DATABASE {DATABASE} OWNER {ROLE}",
        )
        for statement in statements:
            self._run(psql, "-h", str(self.folder), "-p", str(self.port), "-d", "postgres", "-c", statement)

    def ping(self) -> bool:
        try:
            connection = psycopg2.connect(self.url, connect_timeout=2)
        except psycopg2.Error:
            return False
        connection.close()
        return True

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.ping():
            if time.monotonic() > deadline:
                raise PostgresServerError(
                    f"PostgreSQL on 127.0.0.1:{self.port} did not accept the burgernet role"
                )
            time.sleep(0.2)

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            subprocess.run(  # nosec B603: our own binary, fixed arguments
                self._as_user(_pg_bin("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "stop"),
                capture_output=True,
            )
