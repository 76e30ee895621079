"""Bulk imports: participants from CSV, regions and postcode areas from GeoJSON.

Both validate every row first and report each bad one with its line (CSV) or feature
number (GeoJSON). By default nothing is imported when any row is bad; ``skip_bad=True``
imports the good rows and still reports the bad ones. Imports run in one transaction.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from shapely.geometry import shape
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from burgernet.domain import Language
from burgernet.geo import InvalidGeometry, parse_area_geometry, to_geojson
from burgernet.models import NL_BOUNDS, Participant, PostcodeArea, Region
from burgernet.phone import InvalidPhoneNumber, normalise
from burgernet.postcode import InvalidPostcode, is_pc4, normalise_postcode
from burgernet.repositories import record_audit

PARTICIPANT_COLUMNS = (
    "phone",
    "postcode",
    "house_number",
    "email",
    "language",
    "channels",
    "inquiry_opt_in",
    "lat",
    "lon",
    # Alerts in the quiet hours too (burgernet.night_rules); yes/no, default no.
    "night_alerts",
)
REQUIRED_COLUMNS = ("phone", "postcode")
_TRUE = {"1", "yes", "ja", "true", "y", "j"}
_FALSE = {"0", "no", "nee", "false", "n", ""}
MAX_FILE_BYTES = 512 * 1024 * 1024


@dataclass
class ImportReport:
    imported: int = 0
    updated: int = 0
    errors: list[str] = field(default_factory=list)
    committed: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors


class ImportFileError(ValueError):
    """The file as a whole cannot be read (missing, not UTF-8, no header, not JSON...)."""


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise ImportFileError(f"{path}: no such file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ImportFileError(f"{path}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def _flag(value: str, column: str) -> bool:
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{column} must be yes or no, not {value!r}")


def _channels(value: str) -> tuple[bool, bool, bool]:
    names = {part.strip().lower() for part in value.replace(",", ";").split(";") if part.strip()}
    if not names:
        return True, True, False
    unknown = names - {"voice", "sms", "email"}
    if unknown:
        raise ValueError(f"unknown channel(s) {', '.join(sorted(unknown))} (use voice;sms;email)")
    return "voice" in names, "sms" in names, "email" in names


def import_participants(
    session: Session, path: Path, *, skip_bad: bool = False, actor: str = "cli", source: str = "cli"
) -> ImportReport:
    text = _read_text(path)
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None:
        raise ImportFileError(f"{path}: empty file (expected a header row)")
    header = [name.strip().lower() for name in reader.fieldnames]
    reader.fieldnames = header
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    if missing:
        raise ImportFileError(f"{path}: missing column(s) {', '.join(missing)} in the header")
    unknown = [column for column in header if column not in PARTICIPANT_COLUMNS]
    if unknown:
        raise ImportFileError(
            f"{path}: unknown column(s) {', '.join(unknown)}; known: {', '.join(PARTICIPANT_COLUMNS)}"
        )

    places = {
        pc4: (lat, lon, rid)
        for pc4, lat, lon, rid in session.execute(
            select(PostcodeArea.pc4, PostcodeArea.lat, PostcodeArea.lon, PostcodeArea.region_id)
        )
    }
    existing = set(session.scalars(select(Participant.phone_e164)))
    report = ImportReport()
    seen: dict[str, int] = {}
    good: list[dict[str, object]] = []
    now = datetime.now(UTC)
    for row in reader:
        line = reader.line_num
        try:
            if None in row:
                raise ValueError("more fields than the header has")
            values = {key: (value or "").strip() for key, value in row.items()}
            phone = normalise(values["phone"])
            if phone in seen:
                raise ValueError(f"phone {phone} already on line {seen[phone]}")
            if phone in existing:
                raise ValueError(f"phone {phone} is already registered")
            postcode = normalise_postcode(values["postcode"])
            if is_pc4(postcode):
                raise ValueError("a full postcode (1234 AB) is required")
            place = places.get(postcode[:4])
            if values.get("lat") or values.get("lon"):
                lat, lon = float(values["lat"]), float(values["lon"])
                lo_lon, lo_lat, hi_lon, hi_lat = NL_BOUNDS
                if not (lo_lat <= lat <= hi_lat and lo_lon <= lon <= hi_lon):
                    raise ValueError("lat/lon outside the Netherlands")
            elif place is None:
                raise ValueError(f"postcode area {postcode[:4]} is unknown and no lat/lon given")
            else:
                lat, lon = place[0], place[1]
            language = (values.get("language") or "nl").lower()
            if language not in {lang.value for lang in Language}:
                raise ValueError(f"language must be nl or en, not {language!r}")
            voice, sms, email_channel = _channels(values.get("channels", ""))
            email = values.get("email") or None
            if email is not None and ("@" not in email or len(email) > 254 or " " in email):
                raise ValueError(f"not an e-mail address: {email!r}")
            if email_channel and email is None:
                raise ValueError("channel email needs an e-mail address")
            seen[phone] = line
            good.append(
                {
                    "phone_e164": phone,
                    "email": email,
                    "postcode": postcode,
                    "house_number": values.get("house_number") or None,
                    "lat": lat,
                    "lon": lon,
                    "region_id": place[2] if place else None,
                    "language": language,
                    "channel_voice": voice,
                    "channel_sms": sms,
                    "channel_email": email_channel,
                    "inquiry_opt_in": _flag(values.get("inquiry_opt_in", ""), "inquiry_opt_in"),
                    "night_alerts": _flag(values.get("night_alerts", ""), "night_alerts"),
                    "opted_out": False,
                    "created_at": now,
                }
            )
        except (ValueError, InvalidPhoneNumber, InvalidPostcode) as exc:
            report.errors.append(f"line {line}: {exc}")
    if report.errors and not skip_bad:
        return report
    if good:
        session.execute(insert(Participant), good)
    report.imported = len(good)
    record_audit(
        session,
        actor=actor,
        verb="import",
        entity="participants",
        entity_id=None,
        detail={"file": path.name, "imported": len(good), "bad_rows": len(report.errors)},
        source=source,
    )
    report.committed = True
    return report


def _features(data: object, path: Path) -> Iterable[tuple[int, dict[str, object]]]:
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise ImportFileError(f"{path}: expected a GeoJSON FeatureCollection")
    features = data.get("features")
    if not isinstance(features, list):
        raise ImportFileError(f"{path}: 'features' must be a list")
    yield from enumerate(features, start=1)


def import_areas(session: Session, path: Path, *, skip_bad: bool = False, actor: str = "cli") -> ImportReport:
    """Features with ``properties.postcode`` (PC4) become postcode areas; with
    ``properties.region`` (code) and ``name`` they become or update a region's territory."""
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise ImportFileError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from None
    regions = {
        code: (rid, shape(json.loads(b)) if b else None)
        for code, rid, b in session.execute(select(Region.code, Region.id, Region.boundary_geojson))
    }
    report = ImportReport()
    postcode_rows: dict[str, dict[str, object]] = {}
    region_rows: dict[str, dict[str, object]] = {}
    for number, feature in _features(data, path):
        try:
            if not isinstance(feature, dict) or feature.get("type") != "Feature":
                raise ValueError("not a GeoJSON Feature")
            properties = feature.get("properties") or {}
            if not isinstance(properties, dict):
                raise ValueError("properties must be an object")
            geometry = parse_area_geometry(feature.get("geometry"))
            if "postcode" in properties:
                pc4 = str(properties["postcode"]).strip()
                if not is_pc4(pc4):
                    raise ValueError(f"postcode must be four digits (PC4), not {pc4!r}")
                if pc4 in postcode_rows:
                    raise ValueError(f"postcode {pc4} appears twice")
                centre = geometry.representative_point()
                code = str(properties.get("region") or "").strip()
                region_id = regions[code][0] if code in regions else None
                if region_id is None:
                    region_id = next(
                        (
                            rid
                            for rid, boundary in regions.values()
                            if boundary is not None and boundary.covers(centre)
                        ),
                        None,
                    )
                if region_id is None:
                    raise ValueError(f"postcode {pc4}: no region covers it (give properties.region)")
                postcode_rows[pc4] = {
                    "pc4": pc4,
                    "region_id": region_id,
                    "lat": centre.y,
                    "lon": centre.x,
                    "boundary_geojson": to_geojson(geometry),
                }
            elif "region" in properties:
                code = str(properties["region"]).strip().upper()
                name = str(properties.get("name") or "").strip()
                if not code or len(code) > 8:
                    raise ValueError("region code must be 1 to 8 characters")
                if code not in regions and not name:
                    raise ValueError(f"new region {code} needs properties.name")
                region_rows[code] = {"code": code, "name": name, "boundary_geojson": to_geojson(geometry)}
            else:
                raise ValueError("properties need 'postcode' (PC4) or 'region' (code)")
        except (ValueError, InvalidGeometry) as exc:
            report.errors.append(f"feature {number}: {exc}")
    if report.errors and not skip_bad:
        return report
    for code, row in region_rows.items():
        region = session.scalar(select(Region).where(Region.code == code))
        if region is None:
            session.add(
                Region(code=code, name=str(row["name"]), boundary_geojson=str(row["boundary_geojson"]))
            )
            report.imported += 1
        else:
            region.boundary_geojson = str(row["boundary_geojson"])
            if row["name"]:
                region.name = str(row["name"])
            report.updated += 1
    for pc4, row in postcode_rows.items():
        area = session.get(PostcodeArea, pc4)
        if area is None:
            session.add(PostcodeArea(**row))
            report.imported += 1
        else:
            for key, value in row.items():
                setattr(area, key, value)
            report.updated += 1
    record_audit(
        session,
        actor=actor,
        verb="import",
        entity="areas",
        entity_id=None,
        detail={
            "file": path.name,
            "imported": report.imported,
            "updated": report.updated,
            "bad_features": len(report.errors),
        },
    )
    report.committed = True
    return report
