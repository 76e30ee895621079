"""``burgernet run``: start the whole system on one machine, in the foreground.

Order matters: Redis and the database first (everything reads them), then the prompts
Asterisk will play, then Asterisk with a configuration rendered from the database, then
the FastAGI/AMI process (``burgernet serve``), a broadcast worker (``burgernet worker``) and
the control panel. Each long-running part is a child process this supervisor owns and
keeps alive (:mod:`composition.supervision`): a child that exits, or fails its health check,
is restarted with back-off, logged, and recorded in Redis for the panel's system status; the
others keep running (a dead ``serve`` never takes Asterisk, and so the free number, down).
Ctrl-C, SIGTERM or SIGHUP stop them all in reverse order.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import click
import numpy as np
import redis
from sqlalchemy import select

from burgernet import db, health, repositories
from burgernet.db import session_scope
from burgernet.errors import DomainError
from burgernet.models import Participant
from burgernet.redis_clients import redis_client
from burgernet.secrets import redact_url
from burgernet.settings import ENV_PREFIX, Settings, redis_url_password
from composition import demo, demo_history
from composition.context import Context
from composition.redis_server import ManagedRedis
from composition.supervision import (
    AmiPinger,
    ChildSpec,
    HealthPolicy,
    Keeper,
    Process,
    Restart,
    RestartLog,
    beat_check,
    fastagi_probe,
    http_probe,
    loopback_if_any,
    redis_ping,
    restart_in_place,
)
from routing import Caller, CallerKind

log = logging.getLogger(__name__)

# The one phone account `burgernet run` prints: a newcomer registers a softphone with it.
DEMO_PHONE_ENDPOINT = "c-mn-1"


# How the supervisor checks each child (see composition/supervision.py for what they mean).
# FastAGI: probed every second, 1 s to answer, 3 misses in a row (0.25 s apart): a frozen serve
# is killed about 4 s after it froze, so Asterisk's waiting AGI connections fail over at once.
SERVE_PROBE_TIMEOUT = 1.0
SERVE_CHECK_INTERVAL = 1.0
SERVE_START_GRACE = 10.0  # it answers about 2.5 s after its start on 2 busy cores
# The worker beats every health.BEAT_INTERVAL_SECONDS; this old, the beat is missing.
WORKER_BEAT_MAX_AGE = 10.0
SUPERVISOR_BEAT_SECONDS = health.BEAT_INTERVAL_SECONDS
# At shutdown, how long a keeper may take to finish what it is doing (an Asterisk boot).
KEEPER_JOIN_SECONDS = 70.0


def app_link_lines(public_base_url: str) -> list[str]:
    """The participant app's link and a QR code of it, as terminal lines: scan it with a phone."""
    import io

    import qrcode

    url = public_base_url.rstrip("/") + "/app/"
    code = qrcode.QRCode(border=1, error_correction=qrcode.constants.ERROR_CORRECT_M)
    code.add_data(url)
    code.make(fit=True)
    drawn = io.StringIO()
    # Inverted: light modules as blocks, which reads right on the usual dark terminal.
    code.print_ascii(out=drawn, invert=True)
    lines = [f"\n  Participant app: {url}"]
    if not url.startswith("https://"):
        # A phone installs the app and gets push messages only over https (localhost aside).
        lines.append(
            "  (on a phone it needs web.public_base_url to be an https:// address the phone can reach)"
        )
    lines += ["  " + row for row in drawn.getvalue().splitlines()]
    return lines


def with_standby_fastagi(settings: Settings) -> tuple[Settings, dict[str, str]] | None:
    """The settings for `burgernet run` with a standby FastAGI server on this machine, and the
    environment that gives the children the same; None when asterisk.agi_backup names another
    machine (its serve is the backup, nothing to start here).

    Not set, asterisk.agi_backup becomes the port after asterisk.agi_port on the same host. The
    children must know it too: serve renders Asterisk's configuration again when centralists
    change, and the standby listens on it."""
    a = settings.asterisk
    backup = a.agi_backup or f"{a.agi_host}:{a.agi_port + 1}"
    if backup.rpartition(":")[0] not in {a.agi_host, "127.0.0.1", "localhost"}:
        return None
    standby = settings.model_copy(update={"asterisk": a.model_copy(update={"agi_backup": backup})})
    return standby, {f"{ENV_PREFIX}ASTERISK__AGI_BACKUP": backup}


def spawn(
    command: list[str], log_file: Path, environment: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """A child in a session of its own: Ctrl-C in the terminal reaches only the supervisor,
    which then stops the children in order (the panel and serve before Redis). ``environment``
    (``BURGERNET_*`` settings of one cluster node) is added to ours."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **environment} if environment else None
    with log_file.open("ab") as output:  # the child keeps its own copy of the handle
        return subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )


def terminate(process: Process) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Supervisor:
    context: Context
    participants: int
    keepers: list[Keeper] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    notes: list[str] = field(default_factory=list)
    demo_phone_password: str | None = None
    # Settings of this node for the children, as BURGERNET_* variables (`burgernet cluster up`
    # runs one supervisor per node in one process); None: the children inherit ours.
    child_environment: dict[str, str] | None = None
    # Start a standby FastAGI server (`serve --standby`) on asterisk.agi_backup's port beside
    # serve (see :func:`with_standby_fastagi`); a cluster's nodes back each other up instead.
    standby_fastagi: bool = False

    @property
    def settings(self) -> Any:
        return self.context.settings

    @property
    def logs_dir(self) -> Path:
        """The children's logs: one folder per node when this is one node of a cluster."""
        node = self.settings.asterisk.node_name
        return self.settings.data_dir / "logs" / node if node else self.settings.data_dir / "logs"

    @functools.cached_property
    def redis_client(self) -> redis.Redis:
        """The supervisor's own Redis client: short timeouts, so a Redis outage never stalls it."""
        return redis_client(self.settings.redis, timeout=1)

    @functools.cached_property
    def restart_log(self) -> RestartLog:
        return RestartLog(self.redis_client, self.settings.redis.key_prefix)

    def supervise(self, spec: ChildSpec, process: Process) -> Keeper:
        """Hand a started child to a keeper (its thread starts with :meth:`wait`)."""
        keeper = Keeper(spec, process, self.stopping, self.record_restart)
        self.keepers.append(keeper)
        return keeper

    def record_restart(self, restart: Restart) -> None:
        self.restart_log.record(restart)

    def keeper(self, component: str) -> Keeper | None:
        return next((k for k in self.keepers if k.spec.component == component), None)

    def pid_of(self, component: str) -> int | None:
        keeper = self.keeper(component)
        process = keeper.process if keeper else None
        return process.pid if process is not None else None

    # -- steps --------------------------------------------------------------------------------
    def ensure_redis(self) -> None:
        url = self.settings.redis.url
        shown = redact_url(url)  # the URL carries the password: never print or log it
        if self.settings.redis.sentinels:
            # Sentinel-managed Redis is someone else's to run (`burgernet cluster up`, or the
            # operations team): use it, never start a private server beside it.
            sentinels = ", ".join(self.settings.redis.sentinels)
            try:
                self.redis_client.ping()
            except redis.RedisError as exc:
                raise click.ClickException(
                    f"Redis through the sentinels {sentinels} (service "
                    f"{self.settings.redis.sentinel_service}) does not answer: {exc.__class__.__name__}"
                ) from None
            self.notes.append(
                f"Redis: the primary of {self.settings.redis.sentinel_service} via sentinels {sentinels}"
            )
            return
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
        assert server.process is not None
        self.supervise(
            ChildSpec(
                "redis-server",
                "redis",
                start=restart_in_place(server),
                stop=lambda _process: server.stop(),
                health=HealthPolicy(lambda: redis_ping(self.redis_client), start_grace=10.0),
            ),
            server.process,
        )
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
        with session_scope(self.context.sessions) as session:
            # A year of closed actions and calls for the Reports page (once; about a second).
            demo_history.seed_history(session, rng)
        self.context.live.invalidate_actions()
        self.notes.append(f"Database: {redact_url(self.settings.database_url)}")

    def start_child(
        self, name: str, component: str, command: list[str], log_file: Path, policy: HealthPolicy | None
    ) -> Keeper:
        environment = self.child_environment
        spec = ChildSpec(
            name,
            component,
            start=lambda: spawn(command, log_file, environment),
            stop=terminate,
            health=policy,
        )
        return self.supervise(spec, spec.start())

    def start_serve(self) -> None:
        a = self.settings.asterisk
        host, port = loopback_if_any(a.agi_host), a.agi_port
        # Serve is judged by the FastAGI probe alone: it takes the very path a call takes. Its
        # Redis heartbeat (with the AMI state) is shown in the panel, but a stale one is not a
        # reason to kill a serve that answers calls (it may only mean Redis is slow).
        self.start_child(
            "burgernet serve",
            health.SERVE,
            [sys.executable, "-m", "composition.cli", "serve"],
            self.logs_dir / "serve.log",
            HealthPolicy(
                lambda: fastagi_probe(host, port, SERVE_PROBE_TIMEOUT),
                interval=SERVE_CHECK_INTERVAL,
                start_grace=SERVE_START_GRACE,
            ),
        )
        self.notes.append(
            f"FastAGI: agi://{self.settings.asterisk.agi_host}:{self.settings.asterisk.agi_port}/ "
            f"(log: {self.logs_dir / 'serve.log'})"
        )
        if self.standby_fastagi:
            self.start_standby_serve()

    def start_standby_serve(self) -> None:
        """The second FastAGI server the dialplan falls back on within a call: a serve that is
        killed, or frozen until its deadline, costs its callers a retry here, not the failure path."""
        backup = self.settings.asterisk.agi_backup
        host, _, port_text = backup.rpartition(":")
        port = int(port_text)
        self.start_child(
            "burgernet serve --standby",
            health.SERVE_STANDBY,
            [sys.executable, "-m", "composition.cli", "serve", "--standby"],
            self.logs_dir / "serve-standby.log",
            HealthPolicy(
                lambda: fastagi_probe(loopback_if_any(host), port, SERVE_PROBE_TIMEOUT),
                interval=SERVE_CHECK_INTERVAL,
                start_grace=SERVE_START_GRACE,
            ),
        )
        self.notes.append(
            f"FastAGI standby: agi://{backup}/ (tried when serve fails; log: "
            f"{self.logs_dir / 'serve-standby.log'})"
        )

    def start_worker(self) -> None:
        prefix = self.settings.redis.key_prefix
        self.start_child(
            "burgernet worker",
            health.WORKER,
            [sys.executable, "-m", "composition.cli", "worker"],
            self.logs_dir / "worker.log",
            HealthPolicy(
                lambda: beat_check(
                    self.redis_client,
                    prefix,
                    health.WORKER,
                    lambda: self.pid_of(health.WORKER),
                    WORKER_BEAT_MAX_AGE,
                ),
                start_grace=30.0,
            ),
        )
        b, t = self.settings.broadcast, self.settings.twilio
        self.notes.append(
            f"Broadcast worker: voice via {b.voice_provider} "
            f"(≤ {self.settings.voice_channels()} trunk channels), "
            f"SMS via Twilio at {t.api_base_url} ({b.sms_per_second:g}/s), e-mail via "
            f"{self.settings.smtp.host}:{self.settings.smtp.port} ({b.email_per_second:g}/s), "
            f"push to the participant app ({self.settings.push.pushes_per_second:g}/s) "
            f"(log: {self.logs_dir / 'worker.log'})"
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
        instance = configured.instance
        instance.start()
        a = self.settings.asterisk

        def restart() -> Process:
            # Same rendered configuration, same folders: only the process is new.
            instance.stop()
            instance.start()
            assert instance.process is not None
            return instance.process

        pinger = AmiPinger(loopback_if_any(a.ami_host), a.ami_port, a.ami_username, a.ami_secret)
        assert instance.process is not None
        self.supervise(
            ChildSpec(
                "asterisk",
                "asterisk",
                start=restart,
                stop=lambda _process: instance.stop(),
                health=HealthPolicy(pinger, start_grace=30.0),
                cleanup=pinger.close,
            ),
            instance.process,
        )
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
        url = f"http://{loopback_if_any(self.settings.web.host)}:{self.settings.web.port}/healthz"
        self.start_child(
            "control panel",
            health.PANEL,
            [sys.executable, "-m", "composition.cli", "web", "serve"],
            self.logs_dir / "web.log",
            HealthPolicy(lambda: http_probe(url), start_grace=30.0),
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
        for line in app_link_lines(self.settings.web.public_base_url):
            click.echo(line)
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
        """Keep the children alive until SIGTERM, SIGINT (Ctrl-C) or SIGHUP."""

        def request_stop(_signum: int, _frame: object) -> None:
            self.stopping.set()

        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, request_stop)
        for keeper in self.keepers:
            keeper.start_thread()
        # A short wait, not one long one: the signal handler runs between two of them.
        while not self.stopping.wait(SUPERVISOR_BEAT_SECONDS):
            self.beat()
        return 0

    def beat(self) -> None:
        """The supervisor's heartbeat, with each child's state for the panel; pending restart
        records go out as soon as Redis takes them."""
        details = {f"child:{k.spec.component}": k.state for k in self.keepers}
        details.update(
            {f"pid:{k.spec.component}": str(k.process.pid) for k in self.keepers if k.process is not None}
        )
        try:
            health.beat(self.redis_client, self.settings.redis.key_prefix, health.SUPERVISOR, details)
        except redis.RedisError:
            return  # Redis is down: its keeper is on it; the panel cannot read us anyway
        self.restart_log.flush()

    def stop_all(self) -> None:
        self.stopping.set()
        for keeper in self.keepers:
            keeper.join(KEEPER_JOIN_SECONDS)
        for keeper in reversed(self.keepers):
            try:
                keeper.stop_child()
            except Exception:  # keep stopping the others
                log.exception("stopping %s failed", keeper.spec.name)
        self.keepers.clear()
