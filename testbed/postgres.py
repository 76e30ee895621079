"""A throw-away PostgreSQL cluster for tests: initdb + pg_ctl as the ``postgres`` user.

PostgreSQL refuses to run as root, and CI runs as root, so the cluster is created and
started through ``runuser -u postgres``; it listens on a Unix socket in its own directory
and on loopback only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import psycopg2

PG_BIN_CANDIDATES = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


class PostgresUnavailable(RuntimeError):
    pass


def _pg_bin(name: str) -> str:
    for directory in PG_BIN_CANDIDATES:
        if (directory / name).exists():
            return str(directory / name)
    found = shutil.which(name)
    if found:
        return found
    raise PostgresUnavailable(f"{name} not found: install PostgreSQL (apt-get install postgresql)")


class ManagedPostgres:
    def __init__(self, base_dir: Path, port: int, user: str = "postgres") -> None:
        self.base_dir = base_dir
        self.data_dir = base_dir / "data"
        self.port = port
        self.user = user

    def _as_user(self, *command: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", self.user, "--", *command]
        return list(command)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/burgernet"

    def start(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.base_dir, self.user, self.user)
        subprocess.run(
            self._as_user(
                _pg_bin("initdb"),
                "-D",
                str(self.data_dir),
                "-A",
                "trust",
                "-U",
                self.user,
                "--no-sync",
                "-E",
                "UTF8",
            ),
            check=True,
            capture_output=True,
        )
        subprocess.run(
            self._as_user(
                _pg_bin("pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.base_dir / "pg.log"),
                "-o",
                f"-p {self.port} -k {self.base_dir} -c listen_addresses=127.0.0.1 -c fsync=off",
                "-w",
                "start",
            ),
            check=True,
            capture_output=True,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user, dbname="postgres")
                break
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute("CREATE DATABASE burgernet")
        conn.close()

    def stop(self) -> None:
        subprocess.run(
            self._as_user(_pg_bin("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "stop"),
            capture_output=True,
        )
