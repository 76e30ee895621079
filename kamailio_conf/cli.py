"""``burgernet kamailio ...``: render the SIP edge's configuration, and let Kamailio check it."""

from __future__ import annotations

import signal
import sys
import tempfile
from pathlib import Path

import click

from burgernet.db import session_scope
from burgernet.services import Services
from kamailio_conf.plan import plan_from_database
from kamailio_conf.process import KamailioError, KamailioProcess, check_configuration, reload_running
from kamailio_conf.render import KamailioRenderError, RenderedEdge, render


def default_output(context: Services) -> Path:
    """Where the edge's files go unless told otherwise: ``<data_dir>/kamailio``."""
    return context.settings.data_dir / "kamailio"


def _render(context: Services, output: Path) -> RenderedEdge:
    with session_scope(context.sessions) as session:
        plan = plan_from_database(session)
    try:
        return render(output, context.settings, plan)
    except KamailioRenderError as exc:
        raise click.ClickException(str(exc)) from None


@click.group("kamailio")
def kamailio_group() -> None:
    """The SIP edge: Kamailio in front of the Asterisk nodes (configuration, check)."""


@kamailio_group.command("render")
@click.option(
    "--output",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Write here instead of <data_dir>/kamailio.",
)
@click.pass_obj
def render_cmd(context: Services, output: Path | None) -> None:
    """Render kamailio.cfg, dispatcher.list and the centralists' digests from settings and the database."""
    edge = _render(context, output or default_output(context))
    nodes = ", ".join(f"{host}:{port}" for host, port in edge.nodes)
    click.echo(
        f"configuration written to {edge.directory} (SIP {edge.listen_address}:{edge.listen_port}, "
        f"Asterisk nodes {nodes})"
    )
    click.echo(f"run it with: kamailio -DD -E -f {edge.config_file} -Y {edge.runtime_dir}")


@kamailio_group.command("reload")
@click.option(
    "--output",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="The folder the running Kamailio was started on (default: <data_dir>/kamailio).",
)
@click.pass_obj
def reload_cmd(context: Services, output: Path | None) -> None:
    """Render again and make the running Kamailio read the nodes and the centralists' digests.

    Calls and registrations stay. A change to [kamailio] settings themselves needs a restart.
    """
    edge = _render(context, output or default_output(context))
    try:
        replies = reload_running(edge)
    except KamailioError as exc:
        raise click.ClickException(str(exc)) from None
    for reply in replies:
        click.echo(reply)


@kamailio_group.command("check")
@click.option(
    "--output",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Render into this folder and check it there (default: a temporary folder, removed afterwards).",
)
@click.pass_obj
def check_cmd(context: Services, output: Path | None) -> None:
    """Render the configuration and let Kamailio parse it (`kamailio -c`)."""
    with tempfile.TemporaryDirectory(prefix="bn-kamailio-check-") as scratch:
        edge = _render(context, output or Path(scratch))
        try:
            result = check_configuration(edge.config_file)
        except KamailioError as exc:
            raise click.ClickException(str(exc)) from None
    if not result.ok:
        click.echo(result.output, err=True)
        click.echo("Kamailio refused the configuration (see above)", err=True)
        sys.exit(1)
    click.echo("Kamailio accepted the configuration (kamailio -c)")


@kamailio_group.command("start")
@click.pass_obj
def start_cmd(context: Services) -> None:
    """Render and run Kamailio in the foreground on <data_dir>/kamailio until Ctrl-C."""
    edge = _render(context, default_output(context))
    log_file = context.settings.data_dir / "logs" / "kamailio.log"
    process = KamailioProcess(edge, log_file)
    # Before the start: a SIGTERM at any moment from here on stops Kamailio with us.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        process.start()
        nodes = ", ".join(f"{host}:{port}" for host, port in edge.nodes)
        click.echo(
            f"Kamailio: SIP {edge.listen_address}:{edge.listen_port}, Asterisk nodes {nodes}, "
            f"log {log_file}; Ctrl-C stops it"
        )
        assert process.process is not None
        process.process.wait()
    except KamailioError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        pass
    finally:
        process.stop()
