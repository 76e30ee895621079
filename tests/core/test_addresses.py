"""Addresses: the BAG import (CSV and GeoJSON, all or nothing, line-numbered errors) and the
offline search behind the panel's search box, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import func, select

from burgernet import addresses as address_module
from burgernet.addresses import (
    DEMO_SAMPLE,
    AddressImportError,
    AddressSearch,
    import_addresses,
    rd_to_wgs84,
    search_key,
)
from burgernet.db import session_scope
from burgernet.models import Address, AddressName, AuditEvent, Base
from composition.addresses_cli import import_addresses_cmd
from composition.context import Context
from testbed.postgres import ManagedPostgres
from tests.conftest import postgres_context

# PDOK's BAG CSV shape: semicolons, Dutch column names, extra columns that are ignored.
CSV_HEADER = (
    "identificatie;openbare_ruimte_naam;huisnummer;huisletter;huisnummertoevoeging;postcode;"
    "woonplaats_naam;gemeente_naam;lat;lon\n"
)
GOOD_CSV = CSV_HEADER + (
    "0307200000000001;Langestraat;1;;;3811AA;Amersfoort;Amersfoort;52.1561;5.3872\n"
    "0307200000000002;Langestraat;2;B;;3811AA;Amersfoort;Amersfoort;52.1562;5.3874\n"
    "0307200000000003;Kerkstraat;7;;2;3811AB;Amersfoort;Amersfoort;52.1570;5.3880\n"
    "0307200000000004;Kerkstraat;7;;;3701AB;Zeist;Zeist;52.0890;5.2330\n"
)
# The reference points of the RD to WGS84 approximation: Amsterdam's Westertoren and
# Groningen's Martinitoren in the Dutch grid (RD New) and in WGS84 (lon, lat).
WESTERTOREN_RD, WESTERTOREN = (120_700.723, 487_525.501), (4.88352559, 52.37453253)
MARTINITOREN_RD, MARTINITOREN = (233_883.131, 582_065.167), (6.56820053, 53.21938317)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def addresses(context: Context) -> int:
    with session_scope(context.sessions) as session:
        return int(session.scalar(select(func.count()).select_from(Address)) or 0)


def labels(context: Context, query: str) -> list[str]:
    return [hit.label for hit in AddressSearch(context.sessions).search(query)]


def test_the_demo_sample_is_seeded_and_every_kind_of_query_finds_it(bn_context: Context) -> None:
    # The seeded test database has the demo regions, so it has the demo addresses too.
    sample_rows = sum(1 for _ in DEMO_SAMPLE.open(encoding="utf-8")) - 1
    assert addresses(bn_context) == sample_rows
    search = AddressSearch(bn_context.sessions)
    exact = search.search("3511 ah 3")
    assert [h.label for h in exact] == ["Oudegracht 3, 3511 AH Utrecht"]
    assert (exact[0].kind, round(exact[0].lon, 4), round(exact[0].lat, 4)) == ("address", 5.126, 52.0909)
    assert labels(bn_context, "3511AH") == ["3511 AH (Oudegracht, Utrecht)"]
    assert labels(bn_context, "3511") == ["3511 (Utrecht)"]
    assert labels(bn_context, "Oudegracht 9a") == ["Oudegracht 9A, 3511 AH Utrecht"]
    assert labels(bn_context, "oudegracht 11-2") == ["Oudegracht 11-2, 3511 AH Utrecht"]
    assert labels(bn_context, "Kerkstraat 3, Zeist") == ["Kerkstraat 3, 3703 AN Zeist"]
    # A label the search gave finds itself again (the box keeps it after a choice).
    assert labels(bn_context, "Kerkstraat 3, 3703 AN Zeist") == ["Kerkstraat 3, 3703 AN Zeist"]
    assert len(labels(bn_context, "Kerkstraat 3")) == 4  # in four places
    assert labels(bn_context, "Utrecht")[0] == "Utrecht"  # the place before its Utrechtseweg
    assert labels(bn_context, "den haag") == ["'s-Gravenhage"]
    assert labels(bn_context, "Vrijthof") == ["Vrijthof, Maastricht"]
    # A PC4 without imported addresses: the postcode area the routing knows.
    no_addresses = search.search("3400")
    assert [(h.kind, h.label) for h in no_addresses] == [("pc4", "3400")]
    assert search.search("nowhere at all") == [] and search.search("  ") == []


def test_an_import_is_all_or_nothing_with_the_bad_lines_named(bn_context: Context, tmp_path: Path) -> None:
    before = addresses(bn_context)
    bad = write(
        tmp_path,
        "bag.csv",
        GOOD_CSV
        + "0307200000000005;Hof;x;;;3811AC;Amersfoort;Amersfoort;52.15;5.38\n"
        + "0307200000000006;Hof;3;;;38;Amersfoort;Amersfoort;52.15;5.38\n"
        + "0307200000000007;Hof;4;;;3811AC;Amersfoort;Amersfoort;48.85;2.35\n"
        + "0307200000000008;;5;;;3811AC;Amersfoort;Amersfoort;52.15;5.38\n"
        + "0307200000000009;Hof;6;;;3811AC;Amersfoort\n",
    )
    report = import_addresses(bn_context.sessions, bad)
    assert not report.committed and report.imported == 0 and report.bad_rows == 5
    assert report.errors == [
        "line 6: house number 'x' is not a number from 1 to 99999",
        "line 7: not a Dutch postcode: '38' (expected 1234 AB)",
        "line 8: position 48.85000, 2.35000 (lat, lon) is outside the Netherlands",
        "line 9: missing street",
        "line 10: 7 fields where the header has 10",
    ]
    assert addresses(bn_context) == before  # nothing half-imported

    skipped = import_addresses(bn_context.sessions, bad, skip_bad=True)
    assert (skipped.committed, skipped.imported, skipped.bad_rows) == (True, 4, 5)
    assert addresses(bn_context) == before + 4
    assert labels(bn_context, "Langestraat 2b") == ["Langestraat 2B, 3811 AA Amersfoort"]
    assert labels(bn_context, "Kerkstraat 7, Amersfoort") == ["Kerkstraat 7-2, 3811 AB Amersfoort"]

    # A newer extract updates the same addresses (postcode, number, letter, suffix) in place.
    moved = write(
        tmp_path, "newer.csv", CSV_HEADER + "1;Langestraat;1;;;3811AA;Amersfoort;Amersfoort;52.1600;5.3900\n"
    )
    assert import_addresses(bn_context.sessions, moved).imported == 1
    assert addresses(bn_context) == before + 4
    assert AddressSearch(bn_context.sessions).search("3811AA 1")[0].lat == pytest.approx(52.16)
    with session_scope(bn_context.sessions) as session:
        audited = session.scalars(select(AuditEvent.detail).where(AuditEvent.entity == "addresses")).all()
    assert len(audited) == 2 and json.loads(audited[-1] or "{}")["file"] == "newer.csv"

    replaced = import_addresses(bn_context.sessions, moved, replace=True)
    assert replaced.committed and addresses(bn_context) == 1
    with session_scope(bn_context.sessions) as session:
        names = session.execute(select(AddressName.kind, AddressName.name).order_by(AddressName.kind)).all()
    assert [tuple(n) for n in names] == [("pc4", "3811"), ("place", "Amersfoort"), ("street", "Langestraat")]


def test_geojson_and_rd_coordinates(
    bn_context: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert rd_to_wgs84(*WESTERTOREN_RD) == pytest.approx(WESTERTOREN, abs=1e-6)
    assert rd_to_wgs84(*MARTINITOREN_RD) == pytest.approx(MARTINITOREN, abs=1e-6)
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": list(WESTERTOREN_RD)},  # PDOK's default: RD
            "properties": {
                "openbare_ruimte": "Prinsengracht",
                "huisnummer": 279,
                "toevoeging": "",
                "postcode": "1016 GW",
                "woonplaats": "Amsterdam",
            },
        },
        {
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": [[5, 52], [5.1, 52]]},
            "properties": {},
        },
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [5.12, 52.09]},
            "properties": {
                "openbare_ruimte": "Domplein",
                "huisnummer": 0,
                "postcode": "3512JC",
                "woonplaats": "Utrecht",
            },
        },
    ]
    path = write(tmp_path, "bag.geojson", json.dumps({"type": "FeatureCollection", "features": features}))
    report = import_addresses(bn_context.sessions, path)
    assert report.errors == [
        "feature 2: the geometry must be a Point",
        "feature 3: house number '0' is not a number from 1 to 99999",
    ]
    report = import_addresses(bn_context.sessions, path, skip_bad=True)
    assert report.imported == 1
    hit = AddressSearch(bn_context.sessions).search("1016GW 279")[0]
    assert hit.label == "Prinsengracht 279, 1016 GW Amsterdam"
    assert (hit.lon, hit.lat) == pytest.approx(WESTERTOREN, abs=1e-6)

    with pytest.raises(AddressImportError, match="no column for street, house_number"):
        import_addresses(bn_context.sessions, write(tmp_path, "x.csv", "postcode;woonplaats;lat;lon\n"))
    with pytest.raises(AddressImportError, match="expected a GeoJSON FeatureCollection"):
        import_addresses(bn_context.sessions, write(tmp_path, "x.json", "[1]"))
    # A broken byte after good rows already written: they are rolled back too.
    monkeypatch.setattr(address_module, "BATCH", 2)
    before = addresses(bn_context)
    broken = tmp_path / "broken.csv"
    broken.write_bytes(GOOD_CSV.encode() + b"9;Hof;1;;;3811AC;Amersf\xf6ort;A;52.15;5.38\n")
    with pytest.raises(AddressImportError, match="not UTF-8 text"):
        import_addresses(bn_context.sessions, broken)
    assert addresses(bn_context) == before
    with pytest.raises(AddressImportError, match="no such file"):
        import_addresses(bn_context.sessions, tmp_path / "missing.csv")


def test_the_import_command_says_what_happened(bn_context: Context, tmp_path: Path) -> None:
    runner = CliRunner()
    good = runner.invoke(import_addresses_cmd, [str(write(tmp_path, "a.csv", GOOD_CSV))], obj=bn_context)
    assert good.exit_code == 0, good.output
    assert good.output.startswith("imported 4 addresses (")
    bad = write(tmp_path, "b.csv", CSV_HEADER + "1;Hof;1;;;3811AC;Amersfoort;Amersfoort;52.15;east\n")
    refused = runner.invoke(import_addresses_cmd, [str(bad)], obj=bn_context)
    assert refused.exit_code == 1
    assert "line 2: lon 'east' is not a number" in refused.output
    assert "nothing imported: 1 bad row(s); fix them or use --skip-bad" in refused.output
    unreadable = runner.invoke(import_addresses_cmd, [str(tmp_path / "none.csv")], obj=bn_context)
    assert unreadable.exit_code == 1 and "no such file" in unreadable.output


def test_search_keys_fold_accents_and_punctuation() -> None:
    assert search_key("'s-Gravenhage") == "sgravenhage"
    assert search_key("Oude Gracht") == search_key("Oudegracht") == "oudegracht"
    assert search_key("Café Élysée 2") == "cafeelysee2"


def test_migrated_schema_matches_the_address_models(bn_context: Context) -> None:
    with bn_context.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    mine = [
        d for d in diff if any(t in str(d) for t in ("addresses", "address_names", "action_type_templates"))
    ]
    assert mine == []


@pytest.fixture
def pg_context(postgres_server: ManagedPostgres, redis_server: object) -> Iterator[Context]:
    data_dir = Path(tempfile.mkdtemp(prefix="bn-pg-addresses-"))
    context = postgres_context(postgres_server, redis_server, data_dir)  # type: ignore[arg-type]
    yield context
    context.close()
    shutil.rmtree(data_dir, ignore_errors=True)


def test_import_and_search_on_postgresql(pg_context: Context, tmp_path: Path) -> None:
    assert addresses(pg_context) > 0  # the demo sample, as on SQLite
    report = import_addresses(pg_context.sessions, write(tmp_path, "a.csv", GOOD_CSV))
    assert report.committed and report.imported == 4
    found = labels(pg_context, "Kerkstraat 7")
    assert {"Kerkstraat 7-2, 3811 AB Amersfoort", "Kerkstraat 7, 3701 AB Zeist"} <= set(found)
    # Prefix ranges compare bytes ("C" collation): "oude" finds Oudegracht in any locale.
    assert labels(pg_context, "Oudegr")[0] == "Oudegracht, Utrecht"
    assert labels(pg_context, "3811aa 2 b") == ["Langestraat 2B, 3811 AA Amersfoort"]
    with pg_context.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert [d for d in diff if "address" in str(d)] == []
