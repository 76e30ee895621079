"""``burgernet report``: the management report from the command line, as JSON, CSV or XLSX.

Registered in :mod:`composition.cli`. The figures and their definitions are
:mod:`burgernet.reports` (the same as the panel's Reports page and ``/api/v1/reports``).
A bad period or scope is one line on standard error and exit code 2 (the ``burgernet``
group turns the core's typed errors into that), never a traceback.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import click

from burgernet.reports import ReportService, parse_period, parse_scope, to_csv, to_json, to_xlsx
from composition.context import Context

pass_context = click.make_pass_decorator(Context)


@click.command("report")
@click.option("--month", help="A month in Europe/Amsterdam: 2026-11.")
@click.option("--quarter", help="A quarter: 2026-Q4.")
@click.option("--year", help="A year: 2026.")
@click.option("--from", "date_from", help="First day of a custom range (ISO date, with --to).")
@click.option("--to", "date_to", help="Last day of a custom range, included (ISO date).")
@click.option("--region", help="A region code (MN); national without it.")
@click.option("--type", "action_type", help="One action type (missing_child); every type without it.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "csv", "xlsx"]),
    default="json",
    show_default=True,
    help="JSON document; CSV with one section per table; XLSX with one sheet per table.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output (needed for xlsx).",
)
@pass_context
def report_cmd(
    context: Context,
    month: str | None,
    quarter: str | None,
    year: str | None,
    date_from: str | None,
    date_to: str | None,
    region: str | None,
    action_type: str | None,
    fmt: str,
    output: Path | None,
) -> None:
    """Management figures for one period: actions, reach, alert speed, calls, tips, outcomes.

    Give exactly one of --month, --quarter, --year, or --from and --to.
    """
    if fmt == "xlsx" and output is None:
        raise click.UsageError("an XLSX workbook is binary: give --output FILE.xlsx")
    period = parse_period(month=month, quarter=quarter, year=year, date_from=date_from, date_to=date_to)
    scope = parse_scope(region, action_type)
    report = ReportService(context.sessions).report(
        period, scope, actor=f"cli:{getpass.getuser()}", source="cli", purpose=fmt
    )
    if fmt == "xlsx":
        body: bytes = to_xlsx(report)
    elif fmt == "csv":
        body = to_csv(report).encode("utf-8")
    else:
        body = (json.dumps(to_json(report), ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    if output is None:
        click.echo(body.decode("utf-8"), nl=False)
        return
    try:
        output.write_bytes(body)
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror or exc}") from None
    click.echo(f"report {period.label} ({scope.label}): written to {output}", err=True)
