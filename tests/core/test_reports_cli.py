"""``burgernet report``: JSON, CSV and XLSX with the hand-computed figures; bad input is one
clear line and an exit code, never a traceback."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook
from sqlalchemy import func, select

from burgernet.db import session_scope
from burgernet.models import ActionFact, Call
from burgernet.reports import LOCAL_TZ, ReportService, parse_csv, parse_period, parse_scope
from burgernet.settings import Settings
from composition.cli import main
from composition.context import Context
from tests.core.test_reports import build_history


@pytest.fixture
def cli(bn_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("BURGERNET_DATA_DIR", str(bn_settings.data_dir))
    monkeypatch.setenv("BURGERNET_DATABASE__URL", bn_settings.database_url)
    monkeypatch.setenv("BURGERNET_REDIS__URL", bn_settings.redis.url)
    monkeypatch.setenv("BURGERNET_REDIS__KEY_PREFIX", bn_settings.redis.key_prefix)
    return CliRunner()


@pytest.fixture
def runner(cli: CliRunner, bn_context: Context) -> CliRunner:
    build_history(bn_context.sessions)
    return cli


def test_report_as_json_csv_and_xlsx(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["report", "--month", "2026-11"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["period"]["start"] == "2026-11-01T00:00:00+01:00"
    assert (document["summary"]["actions"], document["summary"]["alerted"]) == (4, 650)

    result = runner.invoke(main, ["report", "--month", "2026-11", "--region", "MN", "--format", "csv"])
    assert result.exit_code == 0, result.output
    tables = parse_csv(result.stdout)
    summary = {row["figure"]: row["value"] for row in tables["summary"]}
    assert (summary["scope"], summary["actions"], summary["inbound_calls"]) == ("MN", "3", "5")

    target = tmp_path / "q4.xlsx"
    result = runner.invoke(
        main,
        ["report", "--quarter", "2026-Q4", "--type", "missing_person", "--format", "xlsx", "-o", str(target)],
    )
    assert result.exit_code == 0, result.output
    assert f"written to {target}" in result.stderr
    workbook = load_workbook(target)
    figures = {row[0]: row[1] for row in workbook["summary"].iter_rows(min_row=3, values_only=True)}
    # a3 (December in Amsterdam, solved by a tip) and a5 (found otherwise).
    assert (figures["actions"], figures["solved_by_tip"], figures["missing_solved_ratio"]) == (2, 1, 0.5)

    result = runner.invoke(main, ["report", "--from", "2026-11-01", "--to", "2026-11-20", "--format", "json"])
    assert json.loads(result.stdout)["summary"]["actions"] == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--month", "2026-13"], "no such month: 2026-13"),
        (["--month", "2026-11", "--year", "2026"], "give exactly one period"),
        ([], "give exactly one period"),
        (["--from", "2026-11-01"], "needs both from and to"),
        (["--quarter", "Q4"], "quarter must look like 2026-Q4"),
        (["--month", "2026-11", "--region", "XX"], "no region with code XX"),
        (["--month", "2026-11", "--type", "burglary"], "action type must be one of"),
        (["--month", "2026-11", "--format", "xlsx"], "give --output FILE.xlsx"),
        (["--month", "2026-11", "--format", "pdf"], "'pdf' is not one of"),
        (
            ["--month", "2026-11", "-o", "/nonexistent/dir/report.json"],
            "cannot write /nonexistent/dir/report.json",
        ),
    ],
)
def test_bad_input_is_one_clear_line(runner: CliRunner, args: list[str], message: str) -> None:
    result = runner.invoke(main, ["report", *args])
    assert result.exit_code in (1, 2)
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_demo_history_fills_the_reports_once_without_personal_data(
    cli: CliRunner, bn_context: Context
) -> None:
    seed = ["demo", "seed", "--participants", "0", "--history", "12", "--history-per-month", "100"]
    result = cli.invoke(main, seed)
    assert result.exit_code == 0, result.output
    match = re.search(r"demo history: (\d+) closed actions, (\d+) calls", result.output)
    assert match and int(match[1]) > 1000 and int(match[2]) > 10_000
    again = cli.invoke(main, seed)
    assert "demo history: 0 closed actions, 0 calls" in again.output

    with session_scope(bn_context.sessions) as session:
        assert session.scalar(select(func.count()).where(Call.caller_number.is_not(None))) == 0
        assert session.scalar(select(func.count()).where(Call.recording_path.is_not(None))) == 0
        last_start = session.scalar(select(func.max(ActionFact.started_at)))
    today = datetime.now(UTC).astimezone(LOCAL_TZ).date()
    report = ReportService(bn_context.sessions).report(
        parse_period(date_from=(today - timedelta(days=366)).isoformat(), date_to=today.isoformat()),
        parse_scope(),
    )
    s = report.summary
    # Every history action is closed; the demo's live actions (started just now) are open.
    assert last_start is not None and s.actions_closed == int(match[1])
    # The public figures: about 10 % solved through a tip, 14 % of the missing persons.
    assert s.solved_ratio is not None and 0.07 <= s.solved_ratio <= 0.13
    assert s.missing_solved_ratio is not None and 0.10 <= s.missing_solved_ratio <= 0.18
    assert s.calls_without_action > 0 and s.calls_per_1000_alerted is not None
    assert all(row.total > 0 for row in report.by_region)
    assert {row.channel for row in report.alert_speed} == {"voice", "sms", "email"}
