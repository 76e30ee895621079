"""Start and stop a private ``redis-server`` (for ``burgernet run`` and the tests).

The server requires a password. It is written, with the other options, into ``redis.conf``
in the server's data directory (mode 0600) and the server is started with that file, so
the password never appears on a command line (``ps``) or in a log; :attr:`ManagedRedis.url`
carries it for clients, :attr:`ManagedRedis.display_url` hides it.
"""

from __future__ import annotations

import re
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
        self,
        port: int,
        data_dir: Path,
        bind: str = "127.0.0.1",
        password: str | None = None,
        replica_of: tuple[str, int] | None = None,
    ) -> None:
        self.port = port
        self.bind = bind
        self.data_dir = data_dir
        # A restart of the same server keeps its password (the tests stop and start one).
        self.password = password or generate()
        # A replica of that primary (for Redis Sentinel); it authenticates with the same password.
        self.replica_of = replica_of
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
            # A primary demoted by a failover becomes a replica of the new one and needs this too.
            f'masterauth "{_config_quoted(self.password)}"',
        ]
        if self.replica_of is not None:
            host, port = self.replica_of
            lines.append(f"replicaof {_plain_host(host)} {int(port)}")
        write_private_file(self.config_file, "\n".join(lines) + "\n")

    def _command(self, binary: str) -> list[str]:
        return [binary, str(self.config_file.resolve())]

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
                self._command(binary),
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


def _plain_host(host: str) -> str:
    if not host.replace(".", "").replace(":", "").replace("-", "").isalnum():
        raise RedisServerError(f"{host!r} is not a plain host name or address")
    return host


class ManagedSentinel(ManagedRedis):
    """A Redis Sentinel (``redis-server <conf> --sentinel``) watching one primary.

    It requires the same password as the servers (``requirepass``) and uses it to reach them
    (``auth-pass``). Sentinel rewrites its own config file as it learns the replicas and the other
    sentinels, so the file is written once, before the first start, and kept across restarts.
    """

    def __init__(
        self,
        port: int,
        data_dir: Path,
        primary: tuple[str, int],
        service: str,
        password: str,
        *,
        quorum: int = 2,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 10_000,
        bind: str = "127.0.0.1",
    ) -> None:
        super().__init__(port, data_dir, bind=bind, password=password)
        self.primary = primary
        self.service = service
        self.quorum = quorum
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms

    def ping(self) -> bool:
        try:
            client = redis.Redis(host=self.bind, port=self.port, password=self.password, socket_timeout=0.5)
            return bool(client.ping())
        except redis.RedisError:
            return False

    def write_config(self) -> None:
        if self.config_file.exists():  # Sentinel's own rewrites: what it learnt since
            return
        host, port = self.primary
        service = self.service
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", service):
            raise RedisServerError(f"{service!r} is not a plain Sentinel service name")
        lines = [
            f"port {self.port}",
            f"bind {self.bind}",
            f'dir "{self.data_dir.resolve()}"',
            "protected-mode yes",
            f'requirepass "{_config_quoted(self.password)}"',
            f"sentinel monitor {service} {_plain_host(host)} {int(port)} {int(self.quorum)}",
            f'sentinel auth-pass {service} "{_config_quoted(self.password)}"',
            f"sentinel down-after-milliseconds {service} {int(self.down_after_ms)}",
            f"sentinel failover-timeout {service} {int(self.failover_timeout_ms)}",
            f"sentinel parallel-syncs {service} 1",
        ]
        write_private_file(self.config_file, "\n".join(lines) + "\n")

    def _command(self, binary: str) -> list[str]:
        return [binary, str(self.config_file.resolve()), "--sentinel"]

    def primary_address(self) -> tuple[str, int] | None:
        """Where this sentinel says the primary is now."""
        try:
            client = redis.Redis(host=self.bind, port=self.port, password=self.password, socket_timeout=1)
            answer = client.sentinel_get_master_addr_by_name(self.service)
        except redis.RedisError:
            return None
        if not isinstance(answer, tuple | list) or len(answer) != 2:
            return None
        host = answer[0].decode() if isinstance(answer[0], bytes) else str(answer[0])
        return host, int(answer[1])
