"""CSV and GeoJSON imports: every bad row reported by line, nothing imported unless --skip-bad."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from shapely.geometry import box, mapping
from sqlalchemy import func, select

from burgernet.db import session_scope
from burgernet.imports import ImportFileError, import_areas, import_participants
from burgernet.models import Participant, PostcodeArea, Region
from composition.cli import main
from composition.context import Context

GOOD_AND_BAD = """phone,postcode,email,language,channels,inquiry_opt_in
06 1234 5678,3511 AB,,nl,voice;sms,yes
+31 6 2345 6789,3512CD,a@example.nl,en,sms;email,no
0612,3511AB,,nl,,no
0634567890,ABCD12,,nl,,no
06 1234 5678,3511AB,,nl,,no
0645678901,3511AB,,fr,,no
0656789012,3511AB,,nl,fax,no
0612131415,3511AB,,nl,email,no
0638765432,3511AB,,nl,,maybe
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _count(context: Context) -> int:
    with session_scope(context.sessions) as session:
        return int(session.scalar(select(func.count()).select_from(Participant)) or 0)


def test_bad_rows_are_reported_with_line_numbers_and_nothing_is_imported(
    bn_context: Context, tmp_path: Path
) -> None:
    path = _write(tmp_path, "people.csv", GOOD_AND_BAD)
    with session_scope(bn_context.sessions) as session:
        report = import_participants(session, path)
    assert not report.committed
    assert [error.split(":")[0] for error in report.errors] == [f"line {n}" for n in range(4, 11)]
    assert "already on line 2" in report.errors[2]
    assert "language must be nl or en" in report.errors[3]
    assert "unknown channel(s) fax" in report.errors[4]
    assert "needs an e-mail address" in report.errors[5]
    assert "yes or no" in report.errors[6]
    assert _count(bn_context) == 0


def test_skip_bad_imports_the_good_rows_normalised(bn_context: Context, tmp_path: Path) -> None:
    path = _write(tmp_path, "people.csv", GOOD_AND_BAD)
    with session_scope(bn_context.sessions) as session:
        report = import_participants(session, path, skip_bad=True)
    assert report.committed and report.imported == 2 and len(report.errors) == 7
    with session_scope(bn_context.sessions) as session:
        rows = session.execute(
            select(
                Participant.phone_e164, Participant.postcode, Participant.channel_email, Participant.region_id
            ).order_by(Participant.id)
        ).all()
        utrecht_region = session.scalar(select(PostcodeArea.region_id).where(PostcodeArea.pc4 == "3511"))
    assert rows == [
        ("+31612345678", "3511AB", False, utrecht_region),
        ("+31623456789", "3512CD", True, utrecht_region),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty file"),
        ("postcode\n3511AB\n", "missing column(s) phone"),
        ("phone,postcode,shoe_size\n", "unknown column(s) shoe_size"),
    ],
)
def test_unusable_files_are_refused_whole(
    bn_context: Context, tmp_path: Path, content: str, message: str
) -> None:
    path = _write(tmp_path, "x.csv", content)
    with (
        pytest.raises(ImportFileError, match=re.escape(message)),
        session_scope(bn_context.sessions) as session,
    ):
        import_participants(session, path)


def test_binary_file_is_refused(bn_context: Context, tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"phone,postcode\n\xff\xfe\x00garbage")
    with pytest.raises(ImportFileError, match="not UTF-8"), session_scope(bn_context.sessions) as session:
        import_participants(session, path)


def _collection(*features: dict[str, object]) -> str:
    return json.dumps({"type": "FeatureCollection", "features": list(features)})


def _feature(geometry: dict[str, object] | None, **properties: object) -> dict[str, object]:
    return {"type": "Feature", "properties": properties, "geometry": geometry}


def test_geojson_areas_all_or_nothing(bn_context: Context, tmp_path: Path) -> None:
    square = mapping(box(5.10, 52.08, 5.12, 52.10))
    path = _write(
        tmp_path,
        "areas.geojson",
        _collection(
            _feature(square, postcode="3599"),
            _feature({"type": "Point", "coordinates": [5.1, 52.1]}, postcode="3598"),
            _feature(mapping(box(1.0, 40.0, 1.1, 40.1)), postcode="3597"),
            _feature(square, postcode="35"),
            _feature(square),
            _feature(mapping(box(4.0, 51.0, 4.2, 51.2)), region="ZZ"),
        ),
    )
    with session_scope(bn_context.sessions) as session:
        report = import_areas(session, path)
    assert not report.committed
    assert [error.split(":")[0] for error in report.errors] == [f"feature {n}" for n in range(2, 7)]
    assert "Polygon or MultiPolygon" in report.errors[0]
    assert "outside the Netherlands" in report.errors[1]
    assert "needs properties.name" in report.errors[4]
    with session_scope(bn_context.sessions) as session:
        area = session.get(PostcodeArea, "3599")
        assert area is not None and area.boundary_geojson is None  # the good feature waited too

    with session_scope(bn_context.sessions) as session:
        report = import_areas(session, path, skip_bad=True)
    assert report.committed and report.updated == 1 and report.imported == 0
    with session_scope(bn_context.sessions) as session:
        area = session.get(PostcodeArea, "3599")
        mn = session.scalar(select(Region.id).where(Region.code == "MN"))
        assert area is not None and area.boundary_geojson is not None
        assert area.region_id == mn and 52.08 < area.lat < 52.10


def test_geojson_region_boundary_update(bn_context: Context, tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "regions.geojson",
        _collection(_feature(mapping(box(4.8, 52.3, 5.0, 52.45)), region="AM", name="Amsterdam-Amstelland")),
    )
    with session_scope(bn_context.sessions) as session:
        report = import_areas(session, path)
    assert report.committed and report.updated == 1
    with session_scope(bn_context.sessions) as session:
        name = session.scalar(select(Region.name).where(Region.code == "AM"))
    assert name == "Amsterdam-Amstelland"


def test_cli_import_exit_codes(bn_settings: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _export_settings(monkeypatch, bn_settings)
    bad = _write(tmp_path, "people.csv", GOOD_AND_BAD)
    runner = CliRunner()
    result = runner.invoke(main, ["import", "participants", str(bad)])
    assert result.exit_code == 1
    assert "line 4:" in result.output and "nothing imported" in result.output
    result = runner.invoke(main, ["import", "participants", str(bad), "--skip-bad"])
    assert result.exit_code == 0, result.output
    assert "imported 2 participants; skipped 7 bad" in result.output
    result = runner.invoke(main, ["import", "areas", str(tmp_path / "missing.geojson")])
    assert result.exit_code == 2 and "no such file" in result.output


def _export_settings(monkeypatch: pytest.MonkeyPatch, settings: object) -> None:
    from burgernet.settings import Settings

    assert isinstance(settings, Settings)
    monkeypatch.setenv("BURGERNET_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("BURGERNET_DATABASE__URL", settings.database_url)
    monkeypatch.setenv("BURGERNET_REDIS__URL", settings.redis.url)
    monkeypatch.setenv("BURGERNET_REDIS__KEY_PREFIX", settings.redis.key_prefix)
