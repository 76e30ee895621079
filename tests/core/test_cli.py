"""The burgernet command end to end: demo seed, actions, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import phonenumbers
import pytest
import shapely
from click.testing import CliRunner
from shapely.geometry import shape
from sqlalchemy import select

from burgernet.db import session_scope
from burgernet.models import Centralist, Participant, Region
from burgernet.settings import Settings
from composition.cli import main
from composition.context import Context


@pytest.fixture
def runner(bn_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("BURGERNET_DATA_DIR", str(bn_settings.data_dir))
    monkeypatch.setenv("BURGERNET_DATABASE__URL", bn_settings.database_url)
    monkeypatch.setenv("BURGERNET_REDIS__URL", bn_settings.redis.url)
    monkeypatch.setenv("BURGERNET_REDIS__KEY_PREFIX", bn_settings.redis.key_prefix)
    return CliRunner()


def test_demo_seed_gives_valid_participants_inside_their_regions(
    runner: CliRunner, bn_context: Context
) -> None:
    result = runner.invoke(main, ["demo", "seed", "--participants", "2000"])
    assert result.exit_code == 0, result.output
    assert "2000 participants" in result.output
    with session_scope(bn_context.sessions) as session:
        regions = {
            rid: (code, shape(json.loads(boundary or "null")))
            for rid, code, boundary in session.execute(
                select(Region.id, Region.code, Region.boundary_geojson)
            )
        }
        people = session.execute(
            select(Participant.phone_e164, Participant.lon, Participant.lat, Participant.region_id)
        ).all()
        per_region = {code: 0 for code, _ in regions.values()}
        for (code,) in session.execute(
            select(Region.code).join(Centralist, Centralist.region_id == Region.id)
        ):
            per_region[code] += 1
    assert sorted(code for code, _ in regions.values()) == sorted(
        ["NN", "ON", "MN", "NH", "AM", "DH", "RO", "ZWB", "OB", "LB"]
    )
    assert all(count >= 3 for count in per_region.values())
    assert len(people) == 2000 and len({p[0] for p in people}) == 2000
    for phone, _lon, _lat, _rid in people[:300]:
        parsed = phonenumbers.parse(phone)
        assert phonenumbers.is_valid_number(parsed)
        assert phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.MOBILE
    inside = sum(
        bool(shapely.intersects_xy(regions[rid or 0][1].buffer(0.02), lon, lat))
        for _, lon, lat, rid in people
    )
    assert inside / len(people) > 0.97  # jitter near a border may cross it a little

    again = runner.invoke(main, ["demo", "seed"])
    assert again.exit_code == 0 and "already present: none added" in again.output


def test_action_commands(runner: CliRunner, tmp_path: Path) -> None:
    created = runner.invoke(
        main,
        [
            "action",
            "create",
            "--type",
            "vehicle",
            "--title",
            "Rode Golf",
            "--region",
            "mn",
            "--circle",
            "5.12,52.09,1500",
            "--team",
            "c-mn-1,c-mn-2",
        ],
    )
    assert created.exit_code == 0, created.output
    action_id = created.output.split()[1]
    assert runner.invoke(main, ["action", "start", action_id]).exit_code == 0
    listing = runner.invoke(main, ["action", "list", "--status", "active"])
    assert "Rode Golf" in listing.output and "c-mn-1,c-mn-2" in listing.output
    again = runner.invoke(main, ["action", "start", action_id])
    assert again.exit_code == 2 and "from active to active" in again.output
    closed = runner.invoke(
        main,
        [
            *("action", "close", action_id, "--outcome-kind", "found_otherwise"),
            *("--outcome", "gevonden", "--message", "Dank!"),
        ],
    )
    assert closed.exit_code == 0 and "closed: found_otherwise (gevonden)" in closed.output

    polygon = tmp_path / "area.geojson"
    polygon.write_text(
        '{"type": "Polygon", "coordinates": [[[4.8, 52.3], [4.9, 52.3], [4.9, 52.4], [4.8, 52.3]]]}'
    )
    made = runner.invoke(
        main,
        [
            "action",
            "create",
            "--type",
            "suspect",
            "--title",
            "X",
            "--region",
            "AM",
            "--polygon",
            str(polygon),
            "--start",
        ],
    )
    assert made.exit_code == 0 and "active" in made.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--circle", "5.1,52.1"], "--circle takes LON,LAT,RADIUS_METRES"),
        (["--circle", "5.1,52.1,100", "--national"], "exactly one area"),
        (["--polygon", "/nonexistent.geojson"], "no such file"),
        (["--postcodes", "3511,ABCD"], "not a Dutch postcode"),
    ],
)
def test_bad_action_input_is_one_clear_line(runner: CliRunner, args: list[str], message: str) -> None:
    result = runner.invoke(
        main, ["action", "create", "--type", "suspect", "--title", "X", "--region", "MN", *args]
    )
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_bad_settings_stop_the_command_with_the_key_named(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BURGERNET_WEB__PORT", "http")
    result = runner.invoke(main, ["action", "list"])
    assert result.exit_code == 2 and "web.port (env BURGERNET_WEB__PORT)" in result.output


def test_centralist_commands(runner: CliRunner, bn_context: Context) -> None:
    added = runner.invoke(
        main,
        [
            "centralist",
            "add",
            "c-mn-7",
            "--name",
            "Fleur",
            "--region",
            "mn",
            "--contact",
            "sip:c-mn-7@10.0.0.7:5060",
        ],
    )
    assert added.exit_code == 0, added.output
    assert "burgernet asterisk reload" in added.output
    listing = runner.invoke(main, ["centralist", "list"])
    assert "c-mn-7" in listing.output and "sip:c-mn-7@10.0.0.7:5060" in listing.output
    assert runner.invoke(main, ["centralist", "duty", "c-mn-7", "off"]).exit_code == 0
    assert "off Fleur" in runner.invoke(main, ["centralist", "list"]).output
    for bad, message in (
        (["c-mn-7"], "already exists"),
        (["Bad;Name"], "SIP endpoint"),
        (["c-xx-1", "--region", "XX"], "unknown region"),
    ):
        args = ["centralist", "add", *bad[:1], "--name", "X", "--region", bad[2] if len(bad) > 2 else "MN"]
        result = runner.invoke(main, args)
        assert result.exit_code == 2 and message in result.output, result.output


def test_a_standby_serve_needs_the_backup_address_to_listen_on(runner: CliRunner) -> None:
    result = runner.invoke(main, ["serve", "--standby"])
    assert result.exit_code == 2
    assert "--standby needs asterisk.agi_backup" in result.output and "Traceback" not in result.output


def test_a_backup_fastagi_address_that_is_not_host_and_port_is_refused(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BURGERNET_ASTERISK__AGI_BACKUP", "127.0.0.1:4574;evil")
    result = runner.invoke(main, ["action", "list"])
    assert result.exit_code == 2 and "asterisk.agi_backup" in result.output


def test_a_redis_that_cannot_be_reached_is_one_clear_line(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from testbed.ports import free_port

    monkeypatch.setenv("BURGERNET_REDIS__URL", f"redis://:secret-pw@127.0.0.1:{free_port()}/0")
    result = runner.invoke(main, ["demo", "seed", "--participants", "20"])
    assert result.exit_code == 2, result.output
    assert "Redis at redis://" in result.output and "cannot be reached" in result.output
    assert "secret-pw" not in result.output and "Traceback" not in result.output
