"""``burgernet secrets ...``: the generated secrets in ``<data_dir>/secrets.toml``.

``init`` makes the ones the file lacks (the first ``burgernet run`` does the same), ``rotate``
replaces one and says what must be restarted, ``check`` says what a starting process would
refuse. See :mod:`burgernet.secrets`.
"""

from __future__ import annotations

import os

import click

from burgernet.secrets import (
    PROCESS_UMASK,
    SECRETS,
    create_missing_secrets,
    overridden_by,
    rotate_secret,
    secret_problems,
)
from burgernet.settings import SettingsError
from composition.context import Context

pass_context = click.make_pass_decorator(Context)


@click.group("secrets")
def secrets_group() -> None:
    """The generated secrets in <data_dir>/secrets.toml (mode 0600)."""


@secrets_group.command("init")
@pass_context
def secrets_init(context: Context) -> None:
    """Create the secrets file, or add the secrets it lacks; existing ones stay as they are."""
    settings = context.settings
    previous = os.umask(PROCESS_UMASK)
    try:
        generated = create_missing_secrets(settings.data_dir)
    finally:
        os.umask(previous)
    if generated:
        click.echo(f"generated {', '.join(generated)} into {settings.secrets_file} (mode 0600)")
    else:
        click.echo(f"{settings.secrets_file} already holds every secret; nothing changed")
    _warn_overrides([spec.name for spec in SECRETS if spec.generated])


@secrets_group.command("rotate")
@click.argument("name", type=click.Choice([spec.name for spec in SECRETS if spec.generated]))
@pass_context
def secrets_rotate(context: Context, name: str) -> None:
    """Replace secret NAME in the secrets file with a new random one (atomically)."""
    settings = context.settings
    previous = os.umask(PROCESS_UMASK)
    try:
        restart = rotate_secret(settings.data_dir, name)
    finally:
        os.umask(previous)
    click.echo(f"{name} rotated in {settings.secrets_file}; now {restart}")
    _warn_overrides([name])


@secrets_group.command("check")
@pass_context
def secrets_check(context: Context) -> None:
    """Say whether the processes would start with these secrets (what they refuse, and why)."""
    problems = secret_problems(context.settings)
    if problems:
        raise SettingsError("these secrets would be refused:\n" + "\n".join(problems))
    click.echo("secrets: all set, strong and different")


def _warn_overrides(names: list[str]) -> None:
    for spec in SECRETS:
        source = overridden_by(spec) if spec.name in names else None
        if source is not None:
            click.echo(f"note: {spec.name} is set by {source}, which overrides the secrets file", err=True)
