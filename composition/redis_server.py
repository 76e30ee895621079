"""Start and stop a private ``redis-server`` (for ``burgernet run`` and the tests).

The server requires a password. It is written, with the other options, into ``redis.conf``
in the server's data directory (mode 0600) and the server is started with that file, so
the password never appears on a command line (``ps``) or in a log; :attr:`ManagedRedis.url`
carries it for clients, :attr:`ManagedRedis.display_url` hides it.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import redis

from burgernet.secrets import ensure_data_dir, generate, redact_url, write_private_file


class RedisServerError(RuntimeError):
    pass


class ManagedRedis:
    def __init__(
        self, port: int, data_dir: Path, bind: str = "127.0.0.1", password: str | None = None
    ) -> None:
        self.port = port
        self.bind = bind
        self.data_dir = data_dir
        # A restart of the same server keeps its password (the tests stop and start one).
        self.password = password or generate()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://:{quote(self.password, safe='')}@{self.bind}:{self.port}/0"

    @property
    def display_url(self) -> str:
        return redact_url(self.url)

    @property
    def config_file(self) -> Path:
        return self.data_dir / "redis.conf"

    def ping(self) -> bool:
        try:
            return bool(redis.Redis.from_url(self.url, socket_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def write_config(self) -> None:
        # Loopback only, AOF on so a restart keeps queues and counters; no RDB snapshots.
        lines = [
            f"port {self.port}",
            f"bind {self.bind}",
            f'dir "{self.data_dir.resolve()}"',
            "appendonly yes",
            'save ""',
            "protected-mode yes",
            f'requirepass "{_config_quoted(self.password)}"',
        ]
        write_private_file(self.config_file, "\n".join(lines) + "\n")

    def start(self, timeout: float = 10.0) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisServerError("redis-server is not installed (apt-get install redis-server)")
        ensure_data_dir(self.data_dir)
        self.write_config()
        with (self.data_dir / "redis.log").open("ab") as log:  # the child keeps its own copy
            # A session of its own: Ctrl-C in a terminal reaches only its owner, which stops it
            # last (after the processes that use it), not at the same moment as everything else.
            self.process = subprocess.Popen(
                [binary, str(self.config_file.resolve())],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RedisServerError(
                    f"redis-server exited with {self.process.returncode}; see {self.data_dir / 'redis.log'}"
                )
            if self.ping():
                return
            time.sleep(0.05)
        self.stop()
        raise RedisServerError(f"redis-server did not answer on port {self.port} within {timeout} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def _config_quoted(value: str) -> str:
    if any(char in value for char in "\r\n\0"):
        raise RedisServerError("the Redis password may not contain line breaks")
    return value.replace("\\", "\\\\").replace('"', '\\"')
