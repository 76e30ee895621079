"""``burgernet participant ...``: a participant's rights from the command line.

``export`` writes everything stored about one person (GDPR art. 15) as JSON, the same document
as the panel's "Everything stored about this participant"; the read is audited like there.
"""

from __future__ import annotations

import getpass
import json
import os
from pathlib import Path

import click

from burgernet.participants import export_participant, find_participant
from composition.context import Context

pass_context = click.make_pass_decorator(Context)


@click.group("participant")
def participant_group() -> None:
    """One participant's data: a copy on request (GDPR art. 15)."""


@participant_group.command("export")
@click.argument("phone_or_id")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to this file (created readable by its owner only) instead of standard output.",
)
@pass_context
def export_cmd(context: Context, phone_or_id: str, output: Path | None) -> None:
    """Everything stored about the participant with this phone number (any notation) or id, as JSON."""
    participant_id = find_participant(context.sessions, phone_or_id)
    if participant_id is None:
        raise click.ClickException(f"no participant {phone_or_id!r}")
    document = export_participant(
        context.sessions,
        participant_id,
        actor=f"cli:{getpass.getuser()}",
        source="cli",
        secret_key=context.settings.web.secret_key,
    )
    if document is None:  # erased between the look-up and the export
        raise click.ClickException(f"no participant {phone_or_id!r}")
    text = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    # Personal data: the file is the owner's alone from the moment it exists.
    descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(text)
    click.echo(f"participant {participant_id}: written to {output}", err=True)
