"""``burgernet run``: start the whole system on one machine, in the foreground.

Order matters: Redis and the database first (everything reads them), then the prompts
Asterisk will play, then Asterisk with a configuration rendered from the database, then
the FastAGI/AMI process (``burgernet serve``), a broadcast worker (``burgernet worker``) and
the control panel. Each long-running part is a child process
this supervisor owns; Ctrl-C or SIGTERM stops them in reverse order. When a child dies the
supervisor says which and stops the rest rather than leave a half-working system.
"""

from __future__ import annotations

import logging
import secrets
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
from sqlalchemy import select

from burgernet import db, repositories
from burgernet.db import session_scope
from burgernet.errors import DomainError
from burgernet.models import Participant
from burgernet.secrets import redact_url
from burgernet.settings import redis_url_password
from composition import demo
from composition.context import Context
from composition.redis_server import ManagedRedis
from routing import Caller, CallerKind

log = logging.getLogger(__name__)

# The one phone account `burgernet run` prints: a newcomer registers a softphone with it.
DEMO_PHONE_ENDPOINT = "c-mn-1"


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
    demo_phone_password: str | None = None

    @property
    def settings(self) -> Any:
        return self.context.settings

    # -- steps --------------------------------------------------------------------------------
    def ensure_redis(self) -> None:
        url = self.settings.redis.url
        shown = redact_url(url)  # the URL carries the password: never print or log it
        try:
            redis.Redis.from_url(url, socket_timeout=1).ping()
            self.notes.append(f"Redis: using the server at {shown}")
            return
        except (redis.AuthenticationError, redis.ResponseError) as exc:
            raise click.ClickException(
                f"a Redis server answers at {shown} but refuses our password ({exc.__class__.__name__}): "
                "stop it, or set redis.url with that server's password"
            ) from None
        except redis.RedisError:
            pass
        host = urlparse(url).hostname
        if host not in {"127.0.0.1", "localhost", "::1"}:
            raise click.ClickException(f"Redis at {shown} does not answer (and is not local to start it)")
        port = urlparse(url).port or self.settings.redis.managed_port
        server = ManagedRedis(port, self.settings.data_dir / "redis", password=redis_url_password(url))
        server.start()
        self.children.append(Child("redis-server", server.process, server.stop))
        self.notes.append(
            f"Redis: started redis-server on 127.0.0.1:{port}, password required (data in {server.data_dir})"
        )

    def make_demo_phone(self) -> None:
        """A fresh SIP password for the demo centralist (the old one stops working): shown once."""
        try:
            self.demo_phone_password = self.context.centralists.rotate_password(
                DEMO_PHONE_ENDPOINT, actor="burgernet run", source="cli"
            )
        except DomainError:  # the demo centralist was removed: no demo phone to offer
            self.demo_phone_password = None

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
        self.notes.append(f"Database: {redact_url(self.settings.database_url)}")

    def start_child(self, name: str, command: list[str], log_file: Path) -> Child:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("ab") as output:  # the child keeps its own copy of the handle
            process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        child = Child(name, process)
        self.children.append(child)
        return child

    def start_serve(self) -> None:
        self.start_child(
            "burgernet serve",
            [sys.executable, "-m", "composition.cli", "serve"],
            self.settings.data_dir / "logs" / "serve.log",
        )
        self.notes.append(
            f"FastAGI: agi://{self.settings.asterisk.agi_host}:{self.settings.asterisk.agi_port}/ "
            f"(log: {self.settings.data_dir / 'logs' / 'serve.log'})"
        )

    def start_worker(self) -> None:
        self.start_child(
            "burgernet worker",
            [sys.executable, "-m", "composition.cli", "worker"],
            self.settings.data_dir / "logs" / "worker.log",
        )
        b, t = self.settings.broadcast, self.settings.twilio
        self.notes.append(
            f"Broadcast worker: voice via {b.voice_provider} "
            f"(≤ {self.settings.voice_channels()} trunk channels), "
            f"SMS via Twilio at {t.api_base_url} ({b.sms_per_second:g}/s), e-mail via "
            f"{self.settings.smtp.host}:{self.settings.smtp.port} ({b.email_per_second:g}/s) "
            f"(log: {self.settings.data_dir / 'logs' / 'worker.log'})"
        )

    def build_prompts(self) -> None:
        from recordings.catalogue import build_catalogue

        built = build_catalogue(settings=self.settings)
        written = sum(prompt.written for prompt in built)
        self.notes.append(f"Prompts: {len(built)} in {self.settings.sounds_dir} ({written} (re)made)")

    def start_asterisk(self) -> None:
        from asterisk_conf.instance import prepare
        from asterisk_conf.plan import plan_from_database

        with session_scope(self.context.sessions) as session:
            plan = plan_from_database(session, self.settings)
        configured = prepare(self.settings, plan, log=lambda line: click.echo(line, err=True))
        configured.instance.start()
        self.children.append(Child("asterisk", configured.instance.process, configured.instance.stop))
        a = self.settings.asterisk
        self.notes.append(
            f"Asterisk: {configured.install.version}, SIP on {a.sip_bind}:{a.sip_port}, "
            f"config in {configured.config_dir}"
        )

    def start_panel(self) -> None:
        from burgernet.models import User
        from callback_api.auth.services import create_user

        with session_scope(self.context.sessions) as session:
            has_users = session.scalar(select(User.id).limit(1)) is not None
        if not has_users:
            password = secrets.token_urlsafe(12)
            create_user(
                self.context.sessions,
                username="admin",
                role="admin",
                password=password,
                actor="burgernet run",
                source="cli",
            )
            self.notes.append(f"Panel login created: admin / {password} (shown once; change it)")
        self.start_child(
            "control panel",
            [sys.executable, "-m", "composition.cli", "web", "serve"],
            self.settings.data_dir / "logs" / "web.log",
        )
        self.notes.append(f"Panel: http://{self.settings.web.host}:{self.settings.web.port}/")

    def start_everything(self) -> int:
        self.ensure_redis()
        self.ensure_database()
        self.build_prompts()
        self.make_demo_phone()  # before Asterisk renders its configuration
        self.start_asterisk()
        self.start_serve()
        self.start_worker()
        self.start_panel()
        self.print_summary()
        return 0

    def print_summary(self) -> None:
        a = self.settings.asterisk
        click.echo("\nBurgernet is running. Ctrl-C stops everything.\n")
        for note in self.notes:
            click.echo(f"  {note}")
        numbers = self.demo_callers()
        if numbers:
            click.echo("\n  Demo participants whose call is routed to an active action right now:")
            for number, title in numbers:
                click.echo(f"    {number}  ({title})")
            scenario, callers = self.write_caller_scenario([number for number, _ in numbers])
            click.echo(
                f"\n  Call the free number {a.free_number} as the first of them, through the trunk "
                f"(calls from {a.trunk_host} are the trunk):"
            )
            click.echo(
                f"    sipp {a.sip_bind}:{a.sip_port} -sf {scenario} -inf {callers} -i {a.trunk_host} "
                "-p 5099 -m 1"
            )
        if self.demo_phone_password is not None:
            click.echo(
                f"  Register a softphone at {a.sip_bind}:{a.sip_port} as centralist {DEMO_PHONE_ENDPOINT}, "
                f"password {self.demo_phone_password}"
            )
            click.echo(
                "  (shown once; each `burgernet run` makes a new one) to answer; demo centralists have no "
                "phone until one registers,"
            )
        else:
            click.echo("  Demo centralists have no phone until one registers,")
        click.echo("  so an unanswered call ends in a recorded tip, as it would in a control room.\n")

    def write_caller_scenario(self, numbers: list[str]) -> tuple[Path, Path]:
        """A SIPp caller scenario and a caller-ID list for trying the free number by hand."""
        from asterisk_conf.sipp import caller_scenario

        folder = (self.settings.data_dir / "sipp").resolve()
        folder.mkdir(parents=True, exist_ok=True)
        scenario = folder / "caller.xml"
        scenario.write_text(caller_scenario(self.settings.asterisk.free_number, "[field0]", (), 60_000, None))
        callers = folder / "callers.csv"
        callers.write_text("SEQUENTIAL\n" + "".join(f"{number};\n" for number in numbers))
        return scenario, callers

    def demo_callers(self) -> list[tuple[str, str]]:
        """A few participants whose call would be routed to an active action right now."""
        from routing import AreaIndex, Location

        with session_scope(self.context.sessions) as session:
            index = AreaIndex(repositories.active_actions(session))
            found: list[tuple[str, str]] = []
            rows = session.execute(
                select(Participant.phone_e164, Participant.lon, Participant.lat, Participant.postcode).limit(
                    20_000
                )
            )
            for phone, lon, lat, postcode in rows:
                caller = Caller(kind=CallerKind.KNOWN, location=Location(lon, lat), postcode=postcode)
                covering = index.covering(caller)
                if len(covering) == 1:
                    found.append(("0" + phone[3:], covering[0].title))
                if len(found) >= 3:
                    break
        return found

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
