"""``burgernet web ...``: panel users, API tokens, and serving the panel with waitress.

The lead wires ``web`` into the ``burgernet`` group (``main.add_command(web)``); it also works
on its own: ``python -m callback_api.cli users-create alice --role operator``.
"""

from __future__ import annotations

import getpass
import sys

import click

from burgernet.approvals import ApproverInvalid, set_approver
from burgernet.domain import Role
from burgernet.services import Services
from burgernet.settings import SettingsError
from callback_api.auth.services import UserError, create_user, issue_token


def _context(ctx: click.Context) -> Services:
    # The `burgernet` command (the composition root) builds the services and hands them down.
    context = ctx.find_object(Services)
    if context is None:
        raise click.UsageError("run this as 'burgernet web ...'")
    return context


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


@click.group("web")
def web() -> None:
    """The control panel: users, API tokens, the web server."""


@web.command("users-create")
@click.argument("username")
@click.option(
    "--role", type=click.Choice([r.value for r in Role]), required=True, help="What the user may do."
)
@click.option("--with-token", is_flag=True, help="Also issue an API token (printed once).")
@click.password_option(prompt="Password (at least 12 characters)")
@click.pass_context
def users_create(ctx: click.Context, username: str, role: str, with_token: bool, password: str) -> None:
    """Create a panel user; the password is asked for (twice) and stored hashed."""
    context = _context(ctx)
    try:
        info = create_user(
            context.sessions, username=username, role=role, password=password, actor=_actor(), source="cli"
        )
        click.echo(f"user {info.username} created with role {info.role.value}")
        if with_token:
            token = issue_token(context.sessions, username, actor=_actor(), source="cli")
            click.echo(f"API token (shown once): {token}")
    except UserError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


@web.command("token-create")
@click.argument("username")
@click.pass_context
def token_create(ctx: click.Context, username: str) -> None:
    """Issue a new API token for USERNAME (the old one stops working); printed once."""
    try:
        token = issue_token(_context(ctx).sessions, username, actor=_actor(), source="cli")
    except UserError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(token)


@web.command("approver")
@click.argument("username")
@click.option("--on/--off", "approver", default=True, help="Give (default) or take the approver flag.")
@click.pass_context
def approver_flag(ctx: click.Context, username: str, approver: bool) -> None:
    """Let USERNAME approve another person's start of an AMBER Alert or national action (audited)."""
    try:
        changed = set_approver(_context(ctx).sessions, username, approver, actor=_actor(), source="cli")
    except ApproverInvalid as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    state = "an approver" if approver else "not an approver"
    click.echo(f"user {username} is {state}{'' if changed else ' (unchanged)'}")


@web.command("serve")
@click.option("--host", default=None, help="Listen address (default: settings web.host).")
@click.option("--port", type=int, default=None, help="Port (default: settings web.port).")
@click.option(
    "--threads",
    type=click.IntRange(2, 256),
    default=96,
    help="Worker threads; each open live feed (SSE) holds one (at most 3/4 of them).",
)
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, threads: int) -> None:
    """Serve the panel, API and feeds with waitress (a production WSGI server)."""
    import waitress

    from callback_api.app import create_app

    context = _context(ctx)
    settings = context.settings
    app = create_app(settings, context=context)
    # Live streams (SSE) may hold at most three quarters of the threads: pages always get the rest.
    app.config["LIVE_STREAM_SLOTS"] = max(1, threads * 3 // 4)
    bind_host, bind_port = host or settings.web.host, port or settings.web.port
    click.echo(
        f"Burgernet panel on http://{bind_host}:{bind_port}/ (public URL {settings.web.public_base_url})"
    )
    # Connections: every browser tab keeps one open for its live stream, on top of its page loads.
    waitress.serve(
        app, host=bind_host, port=bind_port, threads=threads, connection_limit=1000, ident="burgernet"
    )


def main() -> None:
    try:
        web(standalone_mode=True)
    except SettingsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
