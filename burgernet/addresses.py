"""Finding the place: Dutch addresses imported from the BAG, and the search box behind the panel.

**Import** (``burgernet import addresses FILE``) reads the public shapes of the BAG
(Basisregistratie Adressen en Gebouwen) as PDOK and its derivatives publish them:

* CSV, separated by ``;``, ``,`` or tabs, with a header naming the street
  (``openbare_ruimte_naam``, ``openbareruimte``, ``straat`` ...), ``huisnummer``,
  ``huisletter``, ``huisnummertoevoeging``, ``postcode``, the place (``woonplaats_naam``,
  ``woonplaats`` ...) and the position as ``lat``/``lon`` (WGS84) or ``x``/``y`` in the Dutch
  grid (RD New, EPSG:28992). Other columns (gemeente, provincie, identificatie ...) are ignored.
* GeoJSON: a FeatureCollection of Point features with those names as properties (PDOK's
  ``verblijfsobject`` uses ``openbare_ruimte``, ``huisnummer``, ``huisletter``, ``toevoeging``,
  ``postcode``, ``woonplaats``); coordinates in WGS84, or in RD when they are metres.

Every row is checked and each bad one is reported with its line (CSV) or feature number. The
whole import is one transaction: with any bad row nothing is imported (unless ``skip_bad``).
An address already present (same postcode, number, letter and suffix) is updated, so a newer
extract can be imported over an older one; ``replace`` drops every address first (a full
national extract, where demolished addresses must go).

**Search** (:class:`AddressSearch`) answers one box: a PC4 (``3511``), a PC6 with or without a
house number (``3511 AB``, ``3511AB 12``), a street with a number and optionally the place
(``Oudegracht 12``, ``Oudegracht 12a, Utrecht``), or a place or street name (``Utrecht``,
``Oudegr``). It works offline from the database. Each answer is an index lookup: the exact
address from the unique index, names and PC4 areas from :class:`~burgernet.models.AddressName`
(rebuilt after each import with the centre of their addresses), prefixes as index ranges
with a limit. Without imported addresses a PC4 still finds its postcode area's centre.
"""

from __future__ import annotations

import csv
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from burgernet.db import session_scope
from burgernet.models import NL_BOUNDS, Address, AddressName, PostcodeArea
from burgernet.postcode import InvalidPostcode, normalise_postcode
from burgernet.repositories import record_audit

# Rows written per statement: big enough to be fast, small enough for SQLite's variable limit.
BATCH = 2_000
# Bad rows shown in full; beyond that only counted (a wrong file can have millions).
MAX_ERRORS_SHOWN = 50
MAX_RESULTS = 8

# Header names (lower case, spaces and dashes as underscores) per field, as BAG exports spell them.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "street": (
        "openbare_ruimte_naam",
        "openbareruimtenaam",
        "openbareruimte",
        "openbare_ruimte",
        "straatnaam",
        "straat",
        "street",
    ),
    "house_number": ("huisnummer", "house_number", "housenumber"),
    "house_letter": ("huisletter", "house_letter"),
    "house_suffix": ("huisnummertoevoeging", "toevoeging", "house_suffix", "house_number_addition"),
    "postcode": ("postcode", "postal_code", "zip"),
    "place": ("woonplaats_naam", "woonplaatsnaam", "woonplaats", "place", "city"),
    "lat": ("lat", "latitude", "breedtegraad"),
    "lon": ("lon", "lng", "longitude", "lengtegraad"),
    "x": ("x", "rd_x", "x_rd"),
    "y": ("y", "rd_y", "y_rd"),
}
REQUIRED_FIELDS = ("street", "house_number", "postcode", "place")
_NUMBER = re.compile(r"^[1-9][0-9]{0,4}$")
_LETTER = re.compile(r"^[A-Za-z]?$")
_SUFFIX = re.compile(r"^[A-Za-z0-9]{0,4}$")
_KEY_DROP = re.compile(r"[^a-z0-9]+")
_SEPARATORS = (";", "\t", ",")


class AddressImportError(ValueError):
    """The file as a whole cannot be read (missing, not UTF-8, no header, not JSON ...)."""


@dataclass
class AddressImportReport:
    imported: int = 0  # rows written (new or updated)
    errors: list[str] = field(default_factory=list)
    bad_rows: int = 0  # every bad row, also those beyond the ones in ``errors``
    committed: bool = False
    names: int = 0  # places, streets and PC4 areas found by name afterwards

    def bad(self, where: str, why: object) -> None:
        self.bad_rows += 1
        if len(self.errors) < MAX_ERRORS_SHOWN:
            self.errors.append(f"{where}: {why}")
        elif len(self.errors) == MAX_ERRORS_SHOWN:
            self.errors.append("... more bad rows not shown")


def search_key(text: str) -> str:
    """What names are compared by: letters and digits only, lower case, accents off.

    ``"'s-Gravenhage"`` → ``"sgravenhage"``, ``"Oude Gracht"`` and ``"Oudegracht"`` meet.
    """
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _KEY_DROP.sub("", plain.lower())[:80]


def rd_to_wgs84(x: float, y: float) -> tuple[float, float]:
    """RD New (EPSG:28992) metres → (lon, lat) in WGS84, within a metre or so in the Netherlands.

    The published polynomial approximation (Schreutelkamp and Strang van Hees), enough to
    centre a map and a circle of hundreds of metres, and no projection library to install.
    """
    dx, dy = (x - 155_000.0) * 1e-5, (y - 463_000.0) * 1e-5
    north = (
        3235.65389 * dy
        - 32.58297 * dx**2
        - 0.2475 * dy**2
        - 0.84978 * dx**2 * dy
        - 0.0655 * dy**3
        - 0.01709 * dx**2 * dy**2
        - 0.00738 * dx
        + 0.0053 * dx**4
        - 0.00039 * dx**2 * dy**3
        + 0.00033 * dx**4 * dy
        - 0.00012 * dx * dy
    )
    east = (
        5260.52916 * dx
        + 105.94684 * dx * dy
        + 2.45656 * dx * dy**2
        - 0.81885 * dx**3
        + 0.05594 * dx * dy**3
        - 0.05607 * dx**3 * dy
        + 0.01199 * dy
        - 0.00256 * dx**3 * dy**2
        + 0.00128 * dx * dy**4
        + 0.00022 * dy**2
        - 0.00022 * dx**2
        + 0.00026 * dx**5
    )
    return 5.38720621 + east / 3600.0, 52.15517440 + north / 3600.0


# --- reading rows ----------------------------------------------------------------------------------
def _column_map(header: Sequence[str]) -> dict[str, str]:
    """Our field → the file's column, from the header (unknown columns are ignored)."""
    found: dict[str, str] = {}
    names = {name.strip().lower().replace(" ", "_").replace("-", "_"): name for name in header}
    for wanted, aliases in COLUMN_ALIASES.items():
        for alias in aliases:
            if alias in names:
                found[wanted] = names[alias]
                break
    return found


def _number(value: object, name: str) -> float:
    try:
        number = float(str(value).strip().replace(",", "."))
    except ValueError:
        raise ValueError(f"{name} {value!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"{name} is not a finite number")
    return number


def _position(values: Mapping[str, object]) -> tuple[float, float]:
    """(lon, lat) from lat/lon or from RD x/y; ValueError outside the Netherlands."""
    if values.get("lat") not in (None, "") and values.get("lon") not in (None, ""):
        lon, lat = _number(values["lon"], "lon"), _number(values["lat"], "lat")
    elif values.get("x") not in (None, "") and values.get("y") not in (None, ""):
        lon, lat = rd_to_wgs84(_number(values["x"], "x"), _number(values["y"], "y"))
    else:
        raise ValueError("no position: give lat and lon (WGS84) or x and y (RD)")
    lo_lon, lo_lat, hi_lon, hi_lat = NL_BOUNDS
    if not (lo_lat <= lat <= hi_lat and lo_lon <= lon <= hi_lon):
        raise ValueError(f"position {lat:.5f}, {lon:.5f} (lat, lon) is outside the Netherlands")
    return lon, lat


def address_row(values: Mapping[str, object]) -> dict[str, object]:
    """One checked row for the ``addresses`` table, or ValueError naming what is wrong."""
    text = {name: "" if values.get(name) is None else str(values[name]).strip() for name in COLUMN_ALIASES}
    missing = [name for name in REQUIRED_FIELDS if not text[name]]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    number = text["house_number"]
    if number.endswith(".0"):  # spreadsheets write numbers as 12.0
        number = number[:-2]
    if not _NUMBER.match(number):
        raise ValueError(f"house number {text['house_number']!r} is not a number from 1 to 99999")
    if not _LETTER.match(text["house_letter"]):
        raise ValueError(f"house letter {text['house_letter']!r} is not one letter")
    if not _SUFFIX.match(text["house_suffix"]):
        raise ValueError(f"house number suffix {text['house_suffix']!r}: at most 4 letters or digits")
    try:
        postcode = normalise_postcode(text["postcode"])
    except InvalidPostcode as exc:
        raise ValueError(str(exc)) from None
    if len(postcode) != 6:
        raise ValueError(f"postcode {text['postcode']!r}: a full postcode (1234 AB) is required")
    street, place = " ".join(text["street"].split()), " ".join(text["place"].split())
    if len(street) > 80 or len(place) > 80:
        raise ValueError("street and place are at most 80 characters")
    street_key, place_key = search_key(street), search_key(place)
    if not street_key or not place_key:
        raise ValueError("street and place need letters or digits")
    lon, lat = _position(values)
    return {
        "postcode": postcode,
        "house_number": int(number),
        "house_letter": text["house_letter"].upper(),
        "house_suffix": text["house_suffix"].upper(),
        "street": street,
        "place": place,
        "street_key": street_key,
        "place_key": place_key,
        "lat": round(lat, 7),
        "lon": round(lon, 7),
    }


def _csv_rows(path: Path) -> Iterator[tuple[str, dict[str, object] | Exception]]:
    """(where, row or the reason it is bad) per data row, streamed: a national file is GBs."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        try:
            first = handle.readline()
        except UnicodeDecodeError as exc:
            raise AddressImportError(f"{path}: not UTF-8 text (byte {exc.start})") from None
        if not first.strip():
            raise AddressImportError(f"{path}: empty file (expected a header row)")
        separator = max(_SEPARATORS, key=first.count)
        header = next(csv.reader([first], delimiter=separator))
        columns = _column_map(header)
        missing = [name for name in REQUIRED_FIELDS if name not in columns]
        if not ({"lat", "lon"} <= columns.keys() or {"x", "y"} <= columns.keys()):
            missing.append("lat and lon (or x and y)")
        if missing:
            raise AddressImportError(
                f"{path}: the header has no column for {', '.join(missing)}; "
                f"expected BAG names such as openbare_ruimte_naam;huisnummer;huisletter;"
                f"huisnummertoevoeging;postcode;woonplaats_naam;lat;lon"
            )
        reader = csv.reader(handle, delimiter=separator)
        index = {name: header.index(column) for name, column in columns.items()}
        line = 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as exc:
                raise AddressImportError(
                    f"{path}: after line {line}: not UTF-8 text (byte {exc.start})"
                ) from None
            except csv.Error as exc:
                raise AddressImportError(f"{path}: line {reader.line_num + 1}: {exc}") from None
            line = reader.line_num + 1  # the header was read before the reader started
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                yield f"line {line}", ValueError(f"{len(row)} fields where the header has {len(header)}")
                continue
            try:
                yield f"line {line}", address_row({name: row[i] for name, i in index.items()})
            except ValueError as exc:
                yield f"line {line}", exc


_GEOJSON_PROPERTIES = {**COLUMN_ALIASES, "house_suffix": (*COLUMN_ALIASES["house_suffix"], "toevoeging")}


def _geojson_rows(path: Path) -> Iterator[tuple[str, dict[str, object] | Exception]]:
    try:
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise AddressImportError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise AddressImportError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise AddressImportError(f"{path}: expected a GeoJSON FeatureCollection of points")
    features = data.get("features")
    if not isinstance(features, list):
        raise AddressImportError(f"{path}: 'features' must be a list")
    for number, feature in enumerate(features, start=1):
        where = f"feature {number}"
        try:
            if not isinstance(feature, dict) or feature.get("type") != "Feature":
                raise ValueError("not a GeoJSON Feature")
            properties = feature.get("properties")
            geometry = feature.get("geometry")
            if not isinstance(properties, dict):
                raise ValueError("properties must be an object")
            if not isinstance(geometry, dict) or geometry.get("type") != "Point":
                raise ValueError("the geometry must be a Point")
            coordinates = geometry.get("coordinates")
            if not isinstance(coordinates, list) or len(coordinates) < 2:
                raise ValueError("a Point needs [x, y] coordinates")
            columns = _column_map(list(properties))
            values: dict[str, object] = {name: properties[column] for name, column in columns.items()}
            x, y = _number(coordinates[0], "x"), _number(coordinates[1], "y")
            # Metres are RD (PDOK serves EPSG:28992 by default); degrees are WGS84.
            if abs(x) > 1000 or abs(y) > 1000:
                values.update(x=x, y=y, lat=None, lon=None)
            else:
                values.update(lon=x, lat=y)
            yield where, address_row(values)
        except ValueError as exc:
            yield where, exc


def read_address_file(path: Path) -> Iterator[tuple[str, dict[str, object] | Exception]]:
    """Rows of a BAG CSV or GeoJSON file (by its name, or by a first ``{``)."""
    if not path.is_file():
        raise AddressImportError(f"{path}: no such file")
    if path.suffix.lower() in (".json", ".geojson"):
        return _geojson_rows(path)
    with path.open("rb") as probe:
        if probe.read(64).lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
            return _geojson_rows(path)
    return _csv_rows(path)


# --- writing ---------------------------------------------------------------------------------------
_KEY_COLUMNS = ("postcode", "house_number", "house_letter", "house_suffix")
_UPDATED_COLUMNS = ("street", "place", "street_key", "place_key", "lat", "lon")


def _upsert(session: Session, rows: list[dict[str, object]]) -> None:
    """Insert, or update the address with the same postcode, number, letter and suffix."""
    # The last row for one address wins inside a batch too (both databases refuse to touch a
    # row twice in one statement).
    unique = list({tuple(row[c] for c in _KEY_COLUMNS): row for row in rows}.values())
    dialect = session.get_bind().dialect.name
    statement: Any
    if dialect == "postgresql":
        statement = postgresql.insert(Address)
    elif dialect == "sqlite":
        statement = sqlite.insert(Address)
    else:  # pragma: no cover - the project runs on SQLite and PostgreSQL
        raise AddressImportError(f"addresses cannot be imported into {dialect}")
    statement = statement.on_conflict_do_update(
        index_elements=list(_KEY_COLUMNS),
        set_={name: getattr(statement.excluded, name) for name in _UPDATED_COLUMNS},
    )
    session.execute(statement, unique)


def rebuild_names(session: Session) -> int:
    """Places, streets (per place) and PC4 areas with the centre of their addresses."""
    session.execute(delete(AddressName))
    places = select(
        literal("place"),
        Address.place_key,
        func.min(Address.place),
        literal(""),
        func.avg(Address.lat),
        func.avg(Address.lon),
        func.count(),
    ).group_by(Address.place_key)
    streets = select(
        literal("street"),
        Address.street_key,
        func.min(Address.street),
        func.min(Address.place),
        func.avg(Address.lat),
        func.avg(Address.lon),
        func.count(),
    ).group_by(Address.street_key, Address.place_key)
    pc4 = func.substr(Address.postcode, 1, 4)
    areas = select(
        literal("pc4"),
        pc4,
        pc4,
        func.min(Address.place),
        func.avg(Address.lat),
        func.avg(Address.lon),
        func.count(),
    ).group_by(pc4)
    columns = ["kind", "key", "name", "place", "lat", "lon", "addresses"]
    for query in (places, streets, areas):
        session.execute(insert(AddressName).from_select(columns, query))
    return int(session.scalar(select(func.count()).select_from(AddressName)) or 0)


def import_addresses(
    sessions: sessionmaker[Session],
    path: Path,
    *,
    skip_bad: bool = False,
    replace: bool = False,
    actor: str = "cli",
    source: str = "cli",
) -> AddressImportReport:
    """Import a BAG CSV or GeoJSON file in one transaction (see the module's docstring).

    AddressImportError when the file as a whole is unusable; bad rows are in the report and,
    without ``skip_bad``, nothing is written.
    """
    rows = read_address_file(path)
    session = sessions()
    try:
        with session.begin():
            report = write_addresses(session, rows, skip_bad=skip_bad, replace=replace)
            if not report.committed:
                session.rollback()
                return report
            record_audit(
                session,
                actor=actor,
                verb="import",
                entity="addresses",
                entity_id=None,
                detail={
                    "file": path.name,
                    "imported": report.imported,
                    "bad_rows": report.bad_rows,
                    "replace": replace,
                },
                source=source,
            )
        return report
    finally:
        session.close()


def write_addresses(
    session: Session,
    rows: Iterable[tuple[str, dict[str, object] | Exception]],
    *,
    skip_bad: bool = False,
    replace: bool = False,
) -> AddressImportReport:
    """Write checked rows in the caller's transaction; ``committed`` False: roll it back."""
    report = AddressImportReport()
    if replace:
        session.execute(delete(Address))
    batch: list[dict[str, object]] = []
    for where, row in rows:
        if isinstance(row, Exception):
            report.bad(where, row)
            continue
        if report.errors and not skip_bad:
            continue  # nothing will be written: only look for more bad rows
        batch.append(row)
        if len(batch) >= BATCH:
            _upsert(session, batch)
            report.imported += len(batch)
            batch.clear()
    if report.errors and not skip_bad:
        report.imported = 0
        return report
    if batch:
        _upsert(session, batch)
        report.imported += len(batch)
    report.names = rebuild_names(session)
    report.committed = True
    return report


# The demo's synthetic sample: BAG-shaped, a few hundred addresses in eight places.
DEMO_SAMPLE = Path(__file__).with_name("data") / "demo_addresses.csv"


def seed_demo_addresses(session: Session) -> int:
    """The demo sample, when no address is there yet; returns how many were added."""
    if session.scalar(select(Address.id).limit(1)) is not None:
        return 0
    report = write_addresses(session, read_address_file(DEMO_SAMPLE))
    if not report.committed:  # pragma: no cover - the sample is checked by the tests
        raise AddressImportError(f"{DEMO_SAMPLE}: {report.errors}")
    return report.imported


# --- searching -------------------------------------------------------------------------------------
# "3511 AB", "3511AB 12", "3511 ab 12-bis", "3511AB, 12 a"
_PC6_QUERY = re.compile(
    r"^([1-9][0-9]{3})\s?([A-Za-z]{2})(?:[\s,]+([1-9][0-9]{0,4})\s*-?\s*([A-Za-z0-9]{0,4}))?$"
)
_PC4_QUERY = re.compile(r"^[1-9][0-9]{3}$")
_LEADING_PC6 = re.compile(r"^\s*[1-9][0-9]{3}\s?[A-Za-z]{2}\b\s*")
# "Oudegracht 12", "Oudegracht 12a", "Oudegracht 12-2, Utrecht", "Oudegracht 12 Utrecht"
_STREET_QUERY = re.compile(
    r"^(?P<street>.*?[^\d\s,].*?)[\s,]+(?P<number>[1-9][0-9]{0,4})\s*-?\s*(?P<extra>[A-Za-z0-9]{0,4})"
    r"(?:[\s,]+(?P<place>.+))?$"
)
# Places people call by another name than the BAG's.
PLACE_ALIASES = {"denhaag": "sgravenhage", "thehague": "sgravenhage", "denbosch": "shertogenbosch"}
# The end of a prefix range: search keys hold only a-z and 0-9, all before "~".
_AFTER_KEY = "~"
MIN_PREFIX = 2


@dataclass(frozen=True)
class PlaceHit:
    """One answer to a search: what was found, where, and how close the map should zoom."""

    kind: str  # address | pc6 | pc4 | street | place
    label: str
    lon: float
    lat: float
    zoom: int

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "label": self.label, "lon": self.lon, "lat": self.lat, "zoom": self.zoom}


def _address_label(street: str, number: int, letter: str, suffix: str, postcode: str, place: str) -> str:
    extra = letter + (f"-{suffix}" if suffix else "")
    return f"{street} {number}{extra}, {postcode[:4]} {postcode[4:]} {place}"


_ZOOM = {"address": 17, "pc6": 17, "street": 16, "pc4": 14, "place": 13}


class AddressSearch:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def search(self, query: str, limit: int = MAX_RESULTS) -> list[PlaceHit]:
        text = " ".join(query.split())[:200]
        if not text:
            return []
        with session_scope(self._sessions) as session:
            if match := _PC6_QUERY.match(text):
                digits, letters, number, extra = match.groups()
                return self._postcode6(session, digits + letters.upper(), number, extra or "", limit)
            if _PC4_QUERY.match(text):
                return self._postcode4(session, text)
            if match := _STREET_QUERY.match(text):
                hits = self._street_number(
                    session,
                    match["street"].strip(" ,"),
                    int(match["number"]),
                    match["extra"] or "",
                    match["place"] or "",
                    limit,
                )
                if hits:
                    return hits
            return self._names(session, text, limit)

    def _addresses(self, session: Session, where: Sequence[Any], limit: int) -> list[PlaceHit]:
        rows = session.execute(
            select(
                Address.street,
                Address.house_number,
                Address.house_letter,
                Address.house_suffix,
                Address.postcode,
                Address.place,
                Address.lon,
                Address.lat,
            )
            .where(*where)
            .limit(limit)
        ).all()
        return [
            PlaceHit("address", _address_label(s, n, letter, suffix, pc, place), lon, lat, _ZOOM["address"])
            for s, n, letter, suffix, pc, place, lon, lat in rows
        ]

    def _postcode6(
        self, session: Session, postcode: str, number: str | None, extra: str, limit: int
    ) -> list[PlaceHit]:
        if number is not None:
            where: list[Any] = [Address.postcode == postcode, Address.house_number == int(number)]
            hits = self._addresses(session, [*where, *self._extra(extra)], limit) if extra else []
            return (
                hits
                or self._addresses(session, where, limit)
                or self._postcode6(session, postcode, None, "", 1)
            )
        found = session.execute(
            select(
                func.avg(Address.lon),
                func.avg(Address.lat),
                func.min(Address.street),
                func.min(Address.place),
            ).where(Address.postcode == postcode)
        ).one()
        if found[0] is None:
            return self._postcode4(session, postcode[:4])
        lon, lat, street, place = found
        label = f"{postcode[:4]} {postcode[4:]} ({street}, {place})"
        return [PlaceHit("pc6", label, float(lon), float(lat), _ZOOM["pc6"])]

    @staticmethod
    def _extra(extra: str) -> list[Any]:
        """ "12a" is a house letter; "12-2" or "12 bis" a suffix (both uppercase in the BAG)."""
        extra = extra.upper()
        if len(extra) == 1 and extra.isalpha():
            return [Address.house_letter == extra]
        return [Address.house_suffix == extra]

    def _postcode4(self, session: Session, pc4: str) -> list[PlaceHit]:
        row = session.execute(
            select(AddressName.lon, AddressName.lat, AddressName.place).where(
                AddressName.key == pc4, AddressName.kind == "pc4"
            )
        ).first()
        if row is not None:
            return [PlaceHit("pc4", f"{pc4} ({row.place})", row.lon, row.lat, _ZOOM["pc4"])]
        # No addresses imported there: the PC4 area the routing already knows.
        area = session.execute(
            select(PostcodeArea.lon, PostcodeArea.lat).where(PostcodeArea.pc4 == pc4)
        ).first()
        if area is None:
            return []
        return [PlaceHit("pc4", pc4, area.lon, area.lat, _ZOOM["pc4"])]

    def _street_number(
        self, session: Session, street: str, number: int, extra: str, place: str, limit: int
    ) -> list[PlaceHit]:
        key = search_key(street)
        if len(key) < MIN_PREFIX:
            return []
        where: list[Any] = [Address.house_number == number]
        # A label the search gave before ("Oudegracht 3, 3511 AH Utrecht") names the postcode too.
        place = _LEADING_PC6.sub("", place)
        if place_key := search_key(place):
            where.append(Address.place_key.startswith(place_key, autoescape=True))
        exact = [Address.street_key == key, *where]
        if extra:
            hits = self._addresses(session, [*exact, *self._extra(extra)], limit)
            if hits:
                return hits
        return self._addresses(session, exact, limit) or self._addresses(
            session, [Address.street_key > key, Address.street_key < key + _AFTER_KEY, *where], limit
        )

    def _names(self, session: Session, text: str, limit: int) -> list[PlaceHit]:
        """Places and streets by name: "Utrecht", "Oudegracht", "Oudegracht, Utrecht", "Oudegr"."""
        street, _comma, place = text.partition(",")
        key, place_key = search_key(street), search_key(place)
        key, place_key = PLACE_ALIASES.get(key, key), PLACE_ALIASES.get(place_key, place_key)
        if len(key) < MIN_PREFIX:
            return []
        columns = (AddressName.kind, AddressName.name, AddressName.place, AddressName.lon, AddressName.lat)
        kinds = AddressName.kind.in_(("street",) if place_key else ("place", "street"))
        exact = session.execute(
            select(*columns)
            .where(AddressName.key == key, kinds)
            .order_by(AddressName.addresses.desc())
            .limit(200)
        ).all()
        rows = list(exact)
        if len(rows) < limit:
            rows += session.execute(
                select(*columns)
                .where(AddressName.key > key, AddressName.key < key + _AFTER_KEY, kinds)
                .limit(limit * 4 if place_key else limit)
            ).all()
        if place_key:
            rows = [row for row in rows if search_key(row.place).startswith(place_key)]
        # A place before its streets of the same name ("Utrecht" the city, not "Utrechtseweg").
        rows.sort(key=lambda row: row.kind != "place")
        return [
            PlaceHit(
                row.kind,
                row.name if row.kind == "place" else f"{row.name}, {row.place}",
                row.lon,
                row.lat,
                _ZOOM[row.kind],
            )
            for row in rows[:limit]
        ]

    def count(self) -> int:
        with session_scope(self._sessions) as session:
            return int(session.scalar(select(func.count()).select_from(Address)) or 0)
