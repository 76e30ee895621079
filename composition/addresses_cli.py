"""``burgernet import addresses FILE``: the BAG addresses the panel's search box finds.

Registered on the ``import`` group in :mod:`composition.cli`. The import itself, its file
shapes and its all-or-nothing rule are :mod:`burgernet.addresses`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from burgernet.addresses import AddressImportError, import_addresses
from composition.context import Context

pass_context = click.make_pass_decorator(Context)


@click.command("addresses")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--skip-bad", is_flag=True, help="Import the good rows even when some are bad.")
@click.option(
    "--replace", is_flag=True, help="Drop every address first (a full national extract: demolished ones go)."
)
@pass_context
def import_addresses_cmd(context: Context, path: Path, skip_bad: bool, replace: bool) -> None:
    """Addresses from a BAG/PDOK CSV (; , or tab) or GeoJSON file, for the panel's search box.

    CSV columns: openbare_ruimte_naam, huisnummer, huisletter, huisnummertoevoeging, postcode,
    woonplaats_naam and lat/lon (WGS84) or x/y (RD); other columns are ignored. An address
    already known (postcode, number, letter, suffix) is updated.
    """
    try:
        report = import_addresses(context.sessions, path, skip_bad=skip_bad, replace=replace)
    except AddressImportError as exc:
        click.echo(f"nothing imported: {exc}", err=True)
        sys.exit(1)
    for error in report.errors:
        click.echo(f"  {error}", err=True)
    if not report.committed:
        click.echo(f"nothing imported: {report.bad_rows} bad row(s); fix them or use --skip-bad", err=True)
        sys.exit(1)
    click.echo(
        f"imported {report.imported} addresses ({report.names} places, streets and PC4 areas to search)"
        + (f"; skipped {report.bad_rows} bad" if report.bad_rows else "")
    )
