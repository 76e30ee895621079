"""``burgernet retention run`` and ``burgernet facts refresh``: the scheduled jobs, by hand.

Both also run by themselves inside every ``burgernet worker`` (burgernet/housekeeping.py);
these commands are for a first run, a check (``--dry-run``) or after changing a setting.
"""

from __future__ import annotations

import json

import click

from burgernet.retention import KINDS, Retention
from composition.context import Context

pass_context = click.make_pass_decorator(Context)


@click.group("retention")
def retention_group() -> None:
    """Remove personal data older than its retention setting (retention.*_days)."""


@retention_group.command("run")
@click.option("--dry-run", is_flag=True, help="Count what would be removed; change nothing.")
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(list(KINDS)),
    help="Only this kind of data (repeat for more); all kinds by default.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of the table.")
@pass_context
def retention_run(context: Context, dry_run: bool, kinds: tuple[str, ...], as_json: bool) -> None:
    """Purge what has expired, per kind of personal data (audited with counts); facts are kept."""
    report = Retention(context.sessions, context.settings, context.facts).run(
        dry_run=dry_run, kinds=kinds or KINDS
    )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "dry_run": dry_run,
                    "kinds": {
                        k.kind: {
                            "days": k.days,
                            "cutoff": k.cutoff.isoformat(),
                            **k.counts,
                            "failed": k.failed,
                        }
                        for k in report.kinds
                    },
                }
            )
        )
    else:
        verb = "would remove" if dry_run else "removed"
        for k in report.kinds:
            counts = ", ".join(f"{n} {what}" for what, n in k.counts.items()) or "nothing"
            click.echo(f"{k.kind:<13} older than {k.days:>4} days: {verb} {counts}")
            for why in k.failed:
                click.echo(f"{'':<13} failed: {why}", err=True)
    if any(k.failed for k in report.kinds):
        raise SystemExit(1)


@click.group("facts")
def facts_group() -> None:
    """Each action's lasting, anonymous figures (action_facts)."""


@facts_group.command("refresh")
@click.option("--action", "action_id", type=int, help="Only this action (else every open one).")
@click.option("--all", "everything", is_flag=True, help="Every action ever (after an upgrade).")
@pass_context
def facts_refresh(context: Context, action_id: int | None, everything: bool) -> None:
    """Recompute figures from the rows that still exist (never lowering purged ones)."""
    if action_id is not None:
        if not context.facts.refresh(action_id):
            raise click.ClickException(f"no action {action_id}")
        click.echo(f"action {action_id}: figures refreshed")
        return
    done = context.facts.refresh_all() if everything else context.facts.refresh_open()
    click.echo(f"{done} actions refreshed")
