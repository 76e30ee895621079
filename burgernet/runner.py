"""``burgernet run``: start the whole system on one machine, in the foreground.

Order matters: Redis and the database first (everything reads them), then the prompts
Asterisk will play, then Asterisk with a configuration rendered from the database, then
the FastAGI/AMI process (``burgernet serve``). Each long-running part is a child process
this supervisor owns; Ctrl-C or SIGTERM stops them in reverse order. When a child dies the
supervisor says which and stops the rest rather than leave a half-working system.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import click
import numpy as np
import redis

from burgernet import db, demo
from burgernet.context import Context
from burgernet.db import session_scope
from burgernet.redis_server import ManagedRedis

log = logging.getLogger(__name__)


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes] | None = None
    stop: Callable[[], None] | None = None

    def alive(self) -> bool:
        return self.process is None or self.process.poll() is None


@dataclass
class Supervisor:
    context: Context
    participants: int
    children: list[Child] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def settings(self) -> Any:
        return self.context.settings

    # -- steps --------------------------------------------------------------------------------
    def ensure_redis(self) -> None:
        url = self.settings.redis.url
        try:
            redis.Redis.from_url(url, socket_timeout=1).ping()
            self.notes.append(f"Redis: using the server at {url}")
            return
        except redis.RedisError:
            pass
        host = urlparse(url).hostname
        if host not in {"127.0.0.1", "localhost", "::1"}:
            raise click.ClickException(f"Redis at {url} does not answer (and is not local to start it)")
        port = urlparse(url).port or self.settings.redis.managed_port
        server = ManagedRedis(port, self.settings.data_dir / "redis")
        server.start()
        self.children.append(Child("redis-server", server.process, server.stop))
        self.notes.append(f"Redis: started redis-server on 127.0.0.1:{port} (data in {server.data_dir})")

    def ensure_database(self) -> None:
        db.upgrade(self.settings.database_url)
        rng = np.random.default_rng(self.settings.demo.seed)
        with session_scope(self.context.sessions) as session:
            demo.seed_regions(session, rng)
            existing = demo.participant_count(session)
        if not existing and self.participants:
            click.echo(f"seeding {self.participants} demo participants ...", err=True)
            with session_scope(self.context.sessions) as session:
                demo.seed_participants(session, self.participants, rng)
        demo.seed_actions(self.context.actions)
        self.context.live.invalidate_actions()
        self.notes.append(f"Database: {self.settings.database_url}")

    def start_child(self, name: str, command: list[str], log_file: Path) -> Child:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        output = log_file.open("ab")
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        child = Child(name, process)
        self.children.append(child)
        return child

    def start_serve(self) -> None:
        self.start_child(
            "burgernet serve",
            [sys.executable, "-m", "burgernet.cli", "serve"],
            self.settings.data_dir / "logs" / "serve.log",
        )
        self.notes.append(
            f"FastAGI: agi://{self.settings.asterisk.agi_host}:{self.settings.asterisk.agi_port}/ "
            f"(log: {self.settings.data_dir / 'logs' / 'serve.log'})"
        )

    # -- life cycle -----------------------------------------------------------------------------
    def wait(self) -> int:
        stopping = False

        def request_stop(_signum: int, _frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        while not stopping:
            for child in self.children:
                if not child.alive():
                    click.echo(
                        f"{child.name} exited with {child.process.returncode if child.process else '?'}; "
                        "stopping the rest",
                        err=True,
                    )
                    return 1
            time.sleep(0.5)
        return 0

    def stop_all(self) -> None:
        for child in reversed(self.children):
            try:
                if child.stop is not None:
                    child.stop()
                elif child.process is not None and child.process.poll() is None:
                    child.process.terminate()
                    try:
                        child.process.wait(timeout=15)
                    except subprocess.TimeoutExpired:
                        child.process.kill()
            except Exception:  # keep stopping the others
                log.exception("stopping %s failed", child.name)
        self.children.clear()
