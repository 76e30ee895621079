"""The ``burgernet`` command: database, demo data, imports, actions, and running the system."""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import numpy as np
import redis
from sqlalchemy import Engine
from sqlalchemy.exc import ArgumentError, OperationalError, ProgrammingError

from burgernet import db
from burgernet.actions import ActionError, AreaSpec
from burgernet.approvals import ApprovalService
from burgernet.calls import TipRecordings
from burgernet.db import session_scope
from burgernet.domain import OUTCOME_KINDS, ActionStatus, ActionType, AreaKind, Channel
from burgernet.errors import DatabaseError, DatabaseUnreachable, DomainError, SchemaNotCurrent
from burgernet.imports import ImportFileError, ImportReport, import_areas, import_participants
from burgernet.models import URGENCIES
from burgernet.secrets import PROCESS_UMASK, create_missing_secrets, redact_url, require_strong_secrets
from burgernet.services import Services
from burgernet.settings import SettingsError, load_settings
from composition import demo, demo_history
from composition.context import Context
from composition.privacy_cli import participant_group
from composition.retention_cli import facts_group, retention_group
from composition.secrets_cli import secrets_group


class BurgernetGroup(click.Group):
    """Turns the errors a user can fix into one clear line and exit code 2, not a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            try:
                return super().invoke(ctx)
            except (OperationalError, ProgrammingError, ArgumentError, ImportError) as exc:
                _explain_database_failure(ctx, exc)
                raise
        except (SettingsError, DomainError, ImportFileError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except redis.ConnectionError as exc:
            # What was written to the database stays written; Redis's caches are rebuilt from
            # it by the next serve or worker that finds them missing.
            services = ctx.find_object(Services)
            where = redact_url(services.settings.redis.url) if services is not None else "redis.url"
            click.echo(
                f"error: Redis at {where} cannot be reached ({exc}); start it, or set redis.url", err=True
            )
            sys.exit(2)


def _explain_database_failure(ctx: click.Context, exc: Exception) -> None:
    """A query failed: if the cause is a missing or old schema or no connection, raise that
    (a :class:`DatabaseError` with what to run) instead; a genuine bug keeps its traceback.

    A fallback: commands check the schema before they start (:func:`_needs_current_schema`),
    but the database may change under a running command, or a command may be left unmarked.
    """
    services = ctx.find_object(Services)
    if services is None:
        return
    try:
        db.require_current_schema(_engine(services))
    except DatabaseError as diagnosis:
        raise diagnosis from exc
    detail = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
    if _MISSING_TABLE.search(detail):
        where = redact_url(services.settings.database_url)
        raise SchemaNotCurrent(
            f"the database at {where} lacks what this code needs ({detail}): {db.UPGRADE_HINT}"
        ) from exc


# SQLite's and PostgreSQL's words for a table or column the schema does not have.
_MISSING_TABLE = re.compile(r"no such (table|column)|relation .* does not exist|column .* does not exist")


@click.group(cls=BurgernetGroup)
@click.pass_context
def main(ctx: click.Context) -> None:
    """Burgernet: citizen alerts and the free number for police control rooms."""
    settings = load_settings()
    if ctx.invoked_subcommand == "cluster":
        os.umask(PROCESS_UMASK)  # its secrets are the cluster folder's own (composition/cluster.py)
    if ctx.invoked_subcommand == "run":
        # `run` is this process's whole life: its files (data dir, logs, database) are private,
        # and the first run makes the secrets every process of it reads.
        os.umask(PROCESS_UMASK)
        generated = create_missing_secrets(settings.data_dir)
        if generated:
            click.echo(f"generated {', '.join(generated)} into {settings.secrets_file} (mode 0600)", err=True)
            settings = load_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Twilio's client logs every request's URL and headers at INFO: a dozen lines per SMS, which
    # at 20 SMS/s buries the worker's own log. Its warnings and errors still come through.
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
    context = Context(settings)
    ctx.obj = context
    ctx.call_on_close(context.close)


pass_context = click.make_pass_decorator(Context)


# --- database ----------------------------------------------------------------------------------
@main.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
@pass_context
def db_upgrade(context: Context) -> None:
    """Create or migrate the database to the newest schema."""
    db.upgrade(context.settings.database_url)
    click.echo(f"database at {redact_url(context.settings.database_url)} is up to date")


def _starts_a_process(command: click.Command) -> None:
    """Before ``command`` starts a long-running process (or renders a config that holds secrets):
    refuse weak secrets, and create files with the process umask (027)."""
    callback = command.callback
    assert callback is not None

    @functools.wraps(callback)
    def checked(*args: Any, **kwargs: Any) -> Any:
        services = click.get_current_context().find_object(Services)
        if services is not None:
            require_strong_secrets(services.settings)
        previous = os.umask(PROCESS_UMASK)
        try:
            return callback(*args, **kwargs)
        finally:
            os.umask(previous)

    command.callback = checked


# Commands that work without a current database: they migrate it themselves, or never touch it.
WITHOUT_DATABASE = {
    ("db", "upgrade"),
    ("run",),
    ("demo", "seed"),
    ("secrets", "init"),
    ("secrets", "rotate"),
    ("secrets", "check"),
    ("asterisk", "sandbox"),
    ("recordings", "prompts"),
    ("recordings", "replace-prompt"),
    ("recordings", "convert"),
    ("systemd", "render"),
    ("cluster", "up"),
    ("cluster", "down"),
}


def _needs_current_schema(command: click.Command) -> None:
    """Before ``command`` does anything, refuse an unreachable, empty or old database with one
    line that says what to run, rather than a traceback on its first query (or, for a process,
    on its first call)."""
    callback = command.callback
    assert callback is not None

    @functools.wraps(callback)
    def checked(*args: Any, **kwargs: Any) -> Any:
        services = click.get_current_context().find_object(Services)
        if services is not None:
            db.require_current_schema(_engine(services))
        return callback(*args, **kwargs)

    command.callback = checked


def _engine(services: Services) -> Engine:
    try:
        return services.engine
    except (ArgumentError, ImportError) as exc:  # a malformed URL, or one naming a missing driver
        where = redact_url(services.settings.database_url)
        raise DatabaseUnreachable(f"cannot use the database URL {where}: {exc}") from None


def _leaf_commands(
    group: click.Group, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _leaf_commands(command, (*path, name))
        else:
            yield (*path, name), command


# --- demo data ---------------------------------------------------------------------------------
@main.group("demo")
def demo_group() -> None:
    """Demo data."""


@demo_group.command("seed")
@click.option(
    "--participants",
    "count",
    type=click.IntRange(min=0),
    default=None,
    help="How many synthetic participants (default: settings demo.participants).",
)
@click.option(
    "--history",
    "history_months",
    type=click.IntRange(min=0, max=36),
    default=0,
    help="Months of closed actions, facts and calls before today, for the reports (once; 0: none).",
)
@click.option(
    "--history-per-month",
    type=click.IntRange(min=1, max=10_000),
    default=demo_history.NATIONAL_PER_MONTH,
    show_default=True,
    help="Actions a month nationally in that history (the product brief's 4,000; fewer for a quick demo).",
)
@pass_context
def demo_seed(context: Context, count: int | None, history_months: int, history_per_month: int) -> None:
    """The 10 police regions, 3 centralists each, postcode areas, participants and a few actions."""
    settings = context.settings
    wanted = settings.demo.participants if count is None else count
    db.upgrade(settings.database_url)
    rng = np.random.default_rng(settings.demo.seed)
    with session_scope(context.sessions) as session:
        demo.seed_regions(session, rng)
        existing = demo.participant_count(session)
    if existing:
        click.echo(f"{existing} participants already present: none added")
    elif wanted:
        with (
            session_scope(context.sessions) as session,
            click.progressbar(length=wanted, label="participants", file=sys.stderr) as bar,
        ):
            demo.seed_participants(session, wanted, rng, progress=bar.update)
    created = demo.seed_actions(context.actions)
    if history_months:
        with session_scope(context.sessions) as session:
            history = demo_history.seed_history(
                session, rng, months=history_months, per_month=history_per_month
            )
        click.echo(f"demo history: {history.actions} closed actions, {history.calls} calls")
    context.live.invalidate_actions()
    click.echo(
        f"demo data ready: {len(demo.REGIONS)} regions, {existing or wanted} "
        f"participants, {created} new actions"
    )


# --- imports -----------------------------------------------------------------------------------
@main.group("import")
def import_group() -> None:
    """Bulk imports (all-or-nothing unless --skip-bad)."""


def _report(report: ImportReport, what: str) -> None:
    for error in report.errors:
        click.echo(f"  {error}", err=True)
    if report.committed:
        click.echo(
            f"imported {report.imported} {what}"
            + (f", updated {report.updated}" if report.updated else "")
            + (f"; skipped {len(report.errors)} bad" if report.errors else "")
        )
    else:
        click.echo(f"nothing imported: {len(report.errors)} bad row(s); fix them or use --skip-bad", err=True)
        sys.exit(1)


@import_group.command("participants")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--skip-bad", is_flag=True, help="Import the good rows even when some are bad.")
@pass_context
def import_participants_cmd(context: Context, path: Path, skip_bad: bool) -> None:
    """Participants from CSV: phone,postcode[,house_number,email,language,channels,inquiry_opt_in,lat,lon]."""
    with session_scope(context.sessions) as session:
        report = import_participants(session, path, skip_bad=skip_bad)
    _report(report, "participants")


@import_group.command("areas")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--skip-bad", is_flag=True, help="Import the good features even when some are bad.")
@pass_context
def import_areas_cmd(context: Context, path: Path, skip_bad: bool) -> None:
    """Regions (properties.region, name) and PC4 postcode areas (properties.postcode) from GeoJSON."""
    with session_scope(context.sessions) as session:
        report = import_areas(session, path, skip_bad=skip_bad)
    if report.committed:
        context.live.invalidate_actions()
    _report(report, "areas")


# --- actions -----------------------------------------------------------------------------------
@main.group("action")
def action_group() -> None:
    """Burgernet actions: create, start, close, list."""


def _area_spec(circle: str | None, polygon: Path | None, postcodes: str | None, national: bool) -> AreaSpec:
    given = [option for option in (circle, polygon, postcodes) if option] + ([True] if national else [])
    if len(given) != 1:
        raise ActionError("give exactly one area: --circle, --polygon, --postcodes or --national")
    if circle:
        try:
            lon, lat, radius = (float(part) for part in circle.split(","))
        except ValueError:
            raise ActionError("--circle takes LON,LAT,RADIUS_METRES, e.g. 5.1214,52.0907,2500") from None
        return AreaSpec(AreaKind.CIRCLE, centre=(lon, lat), radius_m=radius)
    if polygon:
        if not polygon.is_file():
            raise ActionError(f"--polygon {polygon}: no such file")
        return AreaSpec(AreaKind.POLYGON, geojson=polygon.read_text(encoding="utf-8"))
    if postcodes:
        return AreaSpec(AreaKind.POSTCODES, postcodes=tuple(p for p in postcodes.split(",") if p.strip()))
    return AreaSpec(AreaKind.NATIONAL)


@action_group.command("create")
@click.option("--type", "action_type", type=click.Choice([t.value for t in ActionType]), required=True)
@click.option("--title", required=True, help="Short description, spoken in the phone menu.")
@click.option("--description", default="")
@click.option("--region", required=True, help="Region code, e.g. MN.")
@click.option("--circle", help="LON,LAT,RADIUS_METRES")
@click.option("--polygon", type=click.Path(path_type=Path), help="GeoJSON file with a (Multi)Polygon.")
@click.option("--postcodes", help="Comma-separated PC4/PC6 postcodes.")
@click.option("--national", is_flag=True, help="National AMBER Alert: everyone.")
@click.option(
    "--team", default="", help="Owning centralists' SIP endpoints in ringing order, comma-separated."
)
@click.option(
    "--channel",
    "channels",
    multiple=True,
    type=click.Choice([c.value for c in Channel]),
    help="A channel the alert uses (repeat for more); default: the type's template.",
)
@click.option(
    "--urgency", type=click.Choice(list(URGENCIES)), help="Queue priority; default: the type's template."
)
@click.option("--start", "start_now", is_flag=True, help="Start the action right away.")
@click.option("--actor", default="cli")
@pass_context
def action_create(
    context: Context,
    action_type: str,
    title: str,
    description: str,
    region: str,
    circle: str | None,
    polygon: Path | None,
    postcodes: str | None,
    national: bool,
    team: str,
    channels: tuple[str, ...],
    urgency: str | None,
    start_now: bool,
    actor: str,
) -> None:
    """Create an action (draft)."""
    view = context.actions.create(
        action_type=action_type,
        title=title,
        description=description,
        region_code=region.upper(),
        area=_area_spec(circle, polygon, postcodes, national),
        team=[t.strip() for t in team.split(",") if t.strip()],
        channels=channels or None,
        urgency=urgency,
        actor=actor,
    )
    if start_now:
        view = context.actions.start(view.id, actor=actor)
    click.echo(f"action {view.id} {view.status}: {view.title}")


@action_group.command("start")
@click.argument("action_id", type=int)
@click.option("--actor", default="cli")
@pass_context
def action_start(context: Context, action_id: int, actor: str) -> None:
    """Start an action: the free number routes calls about it from now on."""
    view = context.actions.start(action_id, actor=actor)
    click.echo(f"action {view.id} active since {view.started_at:%Y-%m-%d %H:%M:%S}")


@action_group.command("close")
@click.argument("action_id", type=int)
# Required since the structured outcomes: a script that passes only --outcome stops with click's "Missing
# option '--outcome-kind'" and the list to choose from, rather than counting as "other".
@click.option(
    "--outcome-kind",
    "outcome_kind",
    required=True,
    type=click.Choice(list(OUTCOME_KINDS)),
    help="How the action ended (solved_by_tip: found or solved through a Burgernet tip).",
)
@click.option(
    "--outcome", default="", help="Internal note, e.g. 'found safe at the station' (needed with 'other')."
)
@click.option("--message", "result_message", default="", help="Result message for everyone alerted.")
@click.option("--actor", default="cli")
@pass_context
def action_close(
    context: Context, action_id: int, outcome_kind: str, outcome: str, result_message: str, actor: str
) -> None:
    """Close an action with its outcome kind, an internal note and the public result message."""
    view = context.actions.close(
        action_id, outcome_kind=outcome_kind, outcome=outcome, result_message=result_message, actor=actor
    )
    note = f" ({view.outcome})" if view.outcome else ""
    click.echo(f"action {view.id} closed: {view.outcome_kind}{note}")


@action_group.command("list")
@click.option("--status", type=click.Choice([s.value for s in ActionStatus]))
@pass_context
def action_list(context: Context, status: str | None) -> None:
    """List actions."""
    views = context.actions.list_actions(status)
    for view in views:
        click.echo(
            f"{view.id:>5}  {view.status:<7} {view.action_type:<15} {view.region_code:<4} "
            f"{view.area_kind:<9} {','.join(view.team) or '-':<24} {view.title}"
        )
    if not views:
        click.echo("no actions")


# --- four-eyes approval (burgernet.approvals) ----------------------------------------------------
def _approvals(context: Context) -> ApprovalService:
    # The panel's service: the same recipient count as the new-action page and the broadcast.
    from callback_api.approvals.services import approval_service

    return approval_service(context)


@action_group.command("request-approval")
@click.argument("action_id", type=int)
@click.option("--actor", required=True, help="Who asks (a panel user name; an approver decides).")
@pass_context
def action_request_approval(context: Context, action_id: int, actor: str) -> None:
    """Ask a second person to start an AMBER Alert or national action (four eyes)."""
    view = _approvals(context).request_start(action_id, actor=actor, source="cli")
    counts = ", ".join(f"{key} {count}" for key, count in view.recipients.items()) or "not counted"
    click.echo(
        f"approval request {view.id} for action {action_id}: {counts}; expires {view.expires_at:%H:%M} UTC"
    )


@action_group.command("approvals")
@pass_context
def action_approvals(context: Context) -> None:
    """Requests waiting for an approver."""
    views = _approvals(context).pending()
    for view in views:
        counts = ", ".join(f"{key} {count}" for key, count in view.recipients.items())
        click.echo(
            f"{view.id:>5}  action {view.action_id:<5} {view.requested_by:<16} "
            f"{view.seconds_left // 60:>3} min left  {counts}  {view.action_title}"
        )
    if not views:
        click.echo("no approval requests waiting")


@action_group.command("approve")
@click.argument("request_id", type=int)
@click.option("--actor", required=True, help="The approver (a panel user with the approver flag).")
@pass_context
def action_approve(context: Context, request_id: int, actor: str) -> None:
    """Approve a request: the action starts, with the approver as its actor."""
    view = _approvals(context).approve(request_id, approver=actor, source="cli")
    click.echo(f"action {view.id} active since {view.started_at:%Y-%m-%d %H:%M:%S} (approved by {actor})")


@action_group.command("refuse")
@click.argument("request_id", type=int)
@click.option("--actor", required=True, help="The approver (a panel user with the approver flag).")
@click.option("--reason", required=True, help="Why the start is refused (the requester reads it).")
@pass_context
def action_refuse(context: Context, request_id: int, actor: str, reason: str) -> None:
    """Refuse a request with a reason: the action stays a draft."""
    view = _approvals(context).refuse(request_id, approver=actor, reason=reason, source="cli")
    click.echo(f"approval request {view.id} refused: action {view.action_id} stays a draft")


# --- centralists ---------------------------------------------------------------------------------
@main.group("centralist")
def centralist_group() -> None:
    """Centralists and their SIP endpoints (then: burgernet asterisk reload)."""


@centralist_group.command("add")
@click.argument("endpoint")
@click.option("--name", required=True)
@click.option("--region", required=True, help="Region code, e.g. MN.")
@click.option("--contact", default=None, help="Fixed SIP contact for a phone that does not register.")
@click.option("--actor", default="cli")
@pass_context
def centralist_add(
    context: Context,
    endpoint: str,
    name: str,
    region: str,
    contact: str | None,
    actor: str,
) -> None:
    """Add a centralist with SIP endpoint ENDPOINT (a-z, 0-9, '-') and a generated SIP password."""
    view = context.centralists.add(
        endpoint=endpoint,
        name=name,
        region_code=region.upper(),
        contact=contact,
        actor=actor,
    )
    click.echo(f"centralist {view.endpoint} added to {view.region_code}; run 'burgernet asterisk reload'")
    click.echo(f"SIP password for {view.endpoint} (shown once): {view.password}")


@centralist_group.command("new-password")
@click.argument("endpoint")
@click.option("--actor", default="cli")
@pass_context
def centralist_new_password(context: Context, endpoint: str, actor: str) -> None:
    """Give ENDPOINT a new generated SIP password; the old one stops working after the reload."""
    password = context.centralists.rotate_password(endpoint, actor=actor, source="cli")
    click.echo(f"SIP password for {endpoint} (shown once): {password}")
    click.echo("run 'burgernet asterisk reload' to put it into effect")


@centralist_group.command("duty")
@click.argument("endpoint")
@click.argument("state", type=click.Choice(["on", "off"]))
@click.option("--actor", default="cli")
@pass_context
def centralist_duty(context: Context, endpoint: str, state: str, actor: str) -> None:
    """Put a centralist on or off duty (off duty: never rung)."""
    context.centralists.set_on_duty(endpoint, state == "on", actor=actor)
    click.echo(f"{endpoint} is {'on' if state == 'on' else 'off'} duty")


@centralist_group.command("list")
@pass_context
def centralist_list(context: Context) -> None:
    """List centralists by region."""
    for view in context.centralists.list_all():
        click.echo(
            f"{view.region_code:<4} {view.endpoint:<12} {'on ' if view.on_duty else 'off'} "
            f"{view.name}{'  ' + view.contact if view.contact else ''}"
        )


# --- running ------------------------------------------------------------------------------------
@main.command("serve")
@click.option(
    "--standby",
    is_flag=True,
    help="Only a second FastAGI server (on asterisk.agi_backup's port): what the dialplan falls back on.",
)
@pass_context
def serve_cmd(context: Context, standby: bool) -> None:
    """FastAGI + AMI in one asyncio process (what Asterisk talks to)."""
    import asyncio

    from ivr.app import serve

    port = None
    if standby:
        backup = context.settings.asterisk.agi_backup
        if not backup:
            raise click.UsageError("--standby needs asterisk.agi_backup (host:port) to listen on")
        port = int(backup.rpartition(":")[2])
    asyncio.run(serve(context, standby=standby, port=port))


@main.group("cluster")
def cluster_group() -> None:
    """A whole cluster on this machine: Kamailio, N Asterisk nodes, PostgreSQL, Redis with Sentinel."""


@cluster_group.command("up")
@click.option("--nodes", type=click.IntRange(1, 9), default=2, show_default=True, help="Asterisk nodes.")
@click.option(
    "--base-port",
    type=click.IntRange(1024, 60_000),
    default=5100,
    show_default=True,
    help="Kamailio listens here; the other ports count up from it (see the README).",
)
@click.option(
    "--participants",
    type=click.IntRange(min=0),
    default=None,
    help="Demo participants to seed into an empty database (default: settings demo.participants).",
)
@pass_context
def cluster_up_cmd(context: Context, nodes: int, base_port: int, participants: int | None) -> None:
    """Start the cluster in the foreground (Ctrl-C, SIGTERM or `burgernet cluster down` stop it)."""
    from composition.cluster import run_cluster

    settings = context.settings
    run_cluster(
        settings, nodes, base_port, settings.demo.participants if participants is None else participants
    )


@cluster_group.command("down")
@pass_context
def cluster_down_cmd(context: Context) -> None:
    """Stop the cluster `burgernet cluster up` started with this data folder."""
    from composition.cluster import stop_cluster

    stopped = stop_cluster(context.settings)
    click.echo("no cluster is running here" if stopped is None else f"cluster (pid {stopped}) stopped")


@main.command("run")
@click.option(
    "--participants",
    type=click.IntRange(min=0),
    default=None,
    help="Demo participants to seed into an empty database (default: settings demo.participants).",
)
@pass_context
def run_cmd(context: Context, participants: int | None) -> None:
    """The whole system in the foreground: Redis, database, prompts, Asterisk, FastAGI/AMI, worker,
    panel; a child that dies or fails its health check is restarted (see the log and the panel's
    System page)."""
    from composition.runner import Supervisor, with_standby_fastagi

    run_context, environment = context, None
    standby = with_standby_fastagi(context.settings)
    if standby is not None:
        settings, environment = standby
        run_context = Context(settings)
    supervisor = Supervisor(
        run_context,
        context.settings.demo.participants if participants is None else participants,
        child_environment=environment,
        standby_fastagi=standby is not None,
    )
    try:
        code = supervisor.start_everything()
        if code == 0:
            code = supervisor.wait()
    finally:
        supervisor.stop_all()
        if run_context is not context:
            run_context.close()
    sys.exit(code)


# --- systemd --------------------------------------------------------------------------------------
@main.group("systemd")
def systemd_group() -> None:
    """systemd units for a real server (each part its own service, restarted by systemd)."""


@systemd_group.command("render")
@click.option(
    "--output",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder to write the units into (nothing is installed).",
)
@click.option("--user", default="burgernet", show_default=True, help="System user the services run as.")
@click.option("--group", default="burgernet", show_default=True, help="Its group.")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=Path("/var/lib/burgernet"),
    show_default=True,
    help="The data folder (database, prompts, recordings, secrets): the only writable path.",
)
@click.option(
    "--env-file",
    type=click.Path(path_type=Path),
    default=Path("/etc/burgernet/burgernet.env"),
    show_default=True,
    help="Environment file with the BURGERNET_* settings.",
)
@click.option(
    "--burgernet",
    "executable",
    type=click.Path(path_type=Path),
    default=None,
    help="Absolute path of the `burgernet` command (default: the one next to this Python, the venv's).",
)
@click.option("--restart-sec", type=float, default=2.0, show_default=True, help="systemd's RestartSec.")
@click.option(
    "--asterisk/--no-asterisk",
    default=True,
    show_default=True,
    help="Also a unit for the project's sandboxed Asterisk (leave out when Asterisk has its own).",
)
@pass_context
def systemd_render(
    context: Context,
    output: Path,
    user: str,
    group: str,
    data_dir: Path,
    env_file: Path,
    executable: Path | None,
    restart_sec: float,
    asterisk: bool,
) -> None:
    """Write burgernet-serve/-worker/-web(/-asterisk).service and burgernet.target into OUTPUT."""
    from composition.systemd import SystemdUnitError, UnitOptions, write_units

    options = UnitOptions(
        burgernet=executable if executable is not None else Path(sys.executable).parent / "burgernet",
        user=user,
        group=group,
        data_dir=data_dir,
        env_file=env_file,
        restart_seconds=restart_sec,
        asterisk=asterisk,
        sandbox_root=context.settings.asterisk.sandbox_root,
    )
    try:
        written = write_units(options, output)
    except SystemdUnitError as exc:
        raise click.UsageError(str(exc)) from None
    for path in written:
        click.echo(f"wrote {path}")


@contextmanager
def _tip_recordings(context: Context) -> Iterator[TipRecordings]:
    yield TipRecordings(context.sessions)


def _register_adapter_groups() -> None:
    """Command groups that live in the adapter packages, registered in this one place."""
    from asterisk_conf.cli import asterisk_group
    from broadcasting.cli import broadcast_group, worker_cmd
    from callback_api.cli import web
    from composition.addresses_cli import import_addresses_cmd
    from composition.report_cli import report_cmd
    from kamailio_conf.cli import kamailio_group
    from recordings.cli import recordings, register_repository_factory

    register_repository_factory(_tip_recordings)
    main.add_command(asterisk_group)
    main.add_command(kamailio_group)
    main.add_command(recordings)
    main.add_command(web)
    main.add_command(worker_cmd)
    main.add_command(broadcast_group)
    main.add_command(participant_group)
    main.add_command(retention_group)
    main.add_command(facts_group)
    main.add_command(secrets_group)
    main.add_command(report_cmd)
    import_group.add_command(import_addresses_cmd)
    leaves = dict(_leaf_commands(main))
    if stale := WITHOUT_DATABASE - leaves.keys():
        raise RuntimeError(f"WITHOUT_DATABASE names missing commands: {sorted(stale)}")
    for path, command in leaves.items():
        if path not in WITHOUT_DATABASE:
            _needs_current_schema(command)
    for command in (
        serve_cmd,
        run_cmd,
        worker_cmd,
        _subcommand(web, "serve"),
        *(_subcommand(asterisk_group, name) for name in ("render", "start", "reload")),
    ):
        _starts_a_process(command)


def _subcommand(group: click.Group, name: str) -> click.Command:
    command = group.commands.get(name)
    if command is None:
        raise RuntimeError(f"'{group.name} {name}' is missing")
    return command


_register_adapter_groups()


if __name__ == "__main__":  # pragma: no cover
    main()
