"""``burgernet asterisk ...``: the sandbox, the rendered configuration, and a load check."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from asterisk_conf.instance import check, prepare
from asterisk_conf.plan import plan_from_database
from asterisk_conf.render import AsteriskPlan, render
from asterisk_conf.sandbox import SandboxError, provision
from burgernet.context import Context
from burgernet.db import session_scope


def _plan(context: Context) -> AsteriskPlan:
    with session_scope(context.sessions) as session:
        return plan_from_database(session, context.settings)


@click.group("asterisk")
def asterisk_group() -> None:
    """The Asterisk side: sandbox, configuration, check."""


@asterisk_group.command("sandbox")
@click.pass_obj
def sandbox_cmd(context: Context) -> None:
    """Provision Asterisk 22 (Debian sid chroot, cached) unless a system Asterisk is installed."""
    settings = context.settings.asterisk
    try:
        install = provision(
            settings.sandbox_root,
            settings.prefer_system_asterisk,
            log=lambda line: click.echo(line, err=True),
        )
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from None
    where = install.root or "the host (system Asterisk)"
    click.echo(f"{install.version} in {where}")


@asterisk_group.command("render")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Write here instead of the instance's own configuration folder.",
)
@click.pass_obj
def render_cmd(context: Context, out: Path | None) -> None:
    """Render the configuration from settings and the database (admin files are kept)."""
    try:
        configured = prepare(context.settings, _plan(context), log=lambda line: click.echo(line, err=True))
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from None
    target = out or configured.config_dir
    if out is not None:
        render(out, context.settings, _plan(context), configured.paths)
    click.echo(f"configuration written to {target}")


@asterisk_group.command("check")
@click.pass_obj
def check_cmd(context: Context) -> None:
    """Render, let Asterisk load the result on this instance's ports, and report its errors."""
    try:
        configured = prepare(context.settings, _plan(context), log=lambda line: click.echo(line, err=True))
        problems = check(configured)
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from None
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        sys.exit(1)
    click.echo(f"Asterisk loaded {configured.config_dir} without errors")
