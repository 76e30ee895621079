"""``burgernet asterisk ...``: the sandbox, the rendered configuration, a load check, start/stop."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from asterisk_conf.instance import check_configuration, install_for, paths_for, prepare
from asterisk_conf.plan import plan_from_database
from asterisk_conf.render import AsteriskPlan, render
from asterisk_conf.sandbox import SandboxError
from burgernet.db import session_scope
from burgernet.services import Services


def _plan(context: Services) -> AsteriskPlan:
    with session_scope(context.sessions) as session:
        return plan_from_database(session, context.settings)


def _err(line: str) -> None:
    click.echo(line, err=True)


@click.group("asterisk")
def asterisk_group() -> None:
    """The Asterisk side: sandbox, configuration, check."""


@asterisk_group.command("sandbox")
@click.pass_obj
def sandbox_cmd(context: Services) -> None:
    """Provision Asterisk 22 (Debian sid chroot, cached) unless a system Asterisk is installed."""
    try:
        install = install_for(context.settings, log=_err)
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from None
    where = install.root or "the host (system Asterisk)"
    click.echo(f"{install.version} in {where}")


@asterisk_group.command("render")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Write here instead of the instance's own configuration folder.",
)
@click.pass_obj
def render_cmd(context: Services, out: Path | None) -> None:
    """Render the configuration from settings and the database (admin files are kept)."""
    plan = _plan(context)
    try:
        if out is None:
            target = prepare(context.settings, plan, log=_err).config_dir
        else:
            install = install_for(context.settings, log=_err)
            render(out, context.settings, plan, paths_for(context.settings, install))
            target = out
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"configuration written to {target}")


@asterisk_group.command("reload")
@click.pass_obj
def reload_cmd(context: Services) -> None:
    """Render from the database again and make the running Asterisk reload it (no call is dropped)."""
    try:
        configured = prepare(context.settings, _plan(context), log=lambda line: click.echo(line, err=True))
        output = configured.instance.rx("core reload")
    except SandboxError as exc:
        raise click.ClickException(f"{exc} (is Asterisk running? start it with 'burgernet run')") from None
    click.echo(output.strip() or f"Asterisk reloaded {configured.config_dir}")


@asterisk_group.command("check")
@click.option(
    "--admin-dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=None,
    help="Take pjsip_custom.conf/extensions_custom.conf from here (default: the instance's folder).",
)
@click.pass_obj
def check_cmd(context: Services, admin_dir: Path | None) -> None:
    """Let Asterisk load the configuration on spare ports and report every error it logs."""
    try:
        problems = check_configuration(context.settings, _plan(context), admin_dir, log=_err)
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from None
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        sys.exit(1)
    click.echo("Asterisk loaded the configuration without errors")


@asterisk_group.command("start")
@click.pass_obj
def start_cmd(context: Services) -> None:
    """Render and run this instance in the foreground until Ctrl-C (without `serve`)."""
    try:
        configured = prepare(context.settings, _plan(context), log=_err)
        configured.instance.start()
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from None
    a = context.settings.asterisk
    click.echo(
        f"{configured.install.version}: SIP {a.sip_bind}:{a.sip_port}, AMI {a.ami_host}:{a.ami_port}, "
        f"config {configured.config_dir}; Ctrl-C stops it"
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        assert configured.instance.process is not None
        configured.instance.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        configured.instance.stop()
