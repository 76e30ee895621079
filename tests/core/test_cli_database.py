"""A database the code cannot use gives one clear line and exit code 2, never a traceback.

Every command that needs the database checks, before it does anything, that the database is
reachable and at the code's newest migration; processes (serve, worker, web serve) refuse to
start. The commands that migrate the database themselves keep working on an empty one.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import inspect, text

from burgernet import db
from burgernet.secrets import generate
from composition.cli import main
from testbed.postgres import ManagedPostgres

# One representative command of each command group that needs the database.
DATABASE_COMMANDS = [
    ["action", "list"],
    ["centralist", "list"],
    ["broadcast", "list", "1"],
    ["web", "users-create", "alice", "--role", "operator", "--password", "a long enough password 1"],
    ["recordings", "purge"],
    ["import", "participants", "participants.csv"],
    ["participant", "export", "+31612345678"],
    ["asterisk", "render", "--out", "rendered"],
]
PROCESSES = [["serve"], ["worker"], ["web", "serve"]]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BURGERNET_DATA_DIR", str(tmp_path / "data"))
    # Processes refuse weak secrets first; this test is about the database check after that.
    monkeypatch.setenv("BURGERNET_REDIS__PASSWORD", generate())
    (tmp_path / "participants.csv").write_text("phone,postcode\n+31612345678,3511\n", encoding="utf-8")
    return tmp_path


def _use_database(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("BURGERNET_DATABASE__URL", url)


def _invoke(args: list[str]) -> Result:
    return CliRunner().invoke(main, args, catch_exceptions=False)


def _assert_refused(result: Result, *expected: str) -> None:
    output = result.output
    assert result.exit_code == 2, output
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    for part in expected:
        assert part in output, output


@pytest.fixture
def empty_sqlite(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = workdir / "empty.db"
    _use_database(monkeypatch, f"sqlite:///{path}")
    return path


@pytest.fixture
def old_sqlite(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = workdir / "old.db"
    db.upgrade(f"sqlite:///{path}", "0005")
    _use_database(monkeypatch, f"sqlite:///{path}")
    return path


@pytest.mark.parametrize("args", DATABASE_COMMANDS + PROCESSES, ids=" ".join)
def test_empty_database_says_to_upgrade(empty_sqlite: Path, args: list[str]) -> None:
    _assert_refused(_invoke(args), "no Burgernet schema", "burgernet db upgrade", str(empty_sqlite))


@pytest.mark.parametrize("args", DATABASE_COMMANDS + PROCESSES, ids=" ".join)
def test_old_database_says_to_upgrade(old_sqlite: Path, args: list[str]) -> None:
    result = _invoke(args)
    _assert_refused(result, "revision 0005", "burgernet db upgrade")
    # Refused before doing anything: nothing imported, rendered or created.
    assert not Path("rendered").exists()


def test_upgrade_then_the_same_commands_work(empty_sqlite: Path) -> None:
    upgraded = _invoke(["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    assert "is up to date" in upgraded.output
    result = _invoke(["action", "list"])
    assert result.exit_code == 0, result.output
    assert "no actions" in result.output


def test_old_database_is_upgraded_by_db_upgrade(old_sqlite: Path) -> None:
    assert _invoke(["db", "upgrade"]).exit_code == 0
    assert _invoke(["centralist", "list"]).exit_code == 0


def test_database_newer_than_the_code_is_named(old_sqlite: Path) -> None:
    with db.make_engine(f"sqlite:///{old_sqlite}").begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    _assert_refused(_invoke(["action", "list"]), "revision 9999", "does not know")


def test_unreachable_database_names_the_url_without_its_password(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Port 1 on the loopback: nothing listens there, so the connection is refused at once.
    _use_database(monkeypatch, "postgresql+psycopg2://burgernet:s3cret-pw@127.0.0.1:1/burgernet")
    for args in (["action", "list"], ["serve"]):
        result = _invoke(args)
        _assert_refused(result, "cannot reach the database", "burgernet:***@127.0.0.1:1/burgernet")
        assert "s3cret-pw" not in result.output


def test_a_database_url_naming_no_installed_driver_is_one_line(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_database(monkeypatch, "postgresql+nosuchdriver://burgernet:s3cret-pw@127.0.0.1/burgernet")
    for args in (["action", "list"], ["db", "upgrade"]):
        result = _invoke(args)
        _assert_refused(result, "cannot use the database URL", "burgernet:***@127.0.0.1/burgernet")
        assert "s3cret-pw" not in result.output


def test_db_upgrade_of_an_unreachable_database_is_one_line(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_database(monkeypatch, "postgresql+psycopg2://burgernet:s3cret-pw@127.0.0.1:1/burgernet")
    _assert_refused(_invoke(["db", "upgrade"]), "cannot reach the database", "burgernet:***@127.0.0.1:1")


def test_a_table_missing_under_a_current_revision_falls_back_to_the_same_line(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The up-front check passes (the revision is current) but a table is gone: the query's own
    # "no such table" is caught in one place and explained the same way.
    path = workdir / "damaged.db"
    url = f"sqlite:///{path}"
    db.upgrade(url)
    engine = db.make_engine(url)
    with engine.begin() as connection:
        tables = inspect(connection).get_table_names()
    engine.dispose()
    assert "centralists" in tables
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA foreign_keys=OFF")
        raw.execute("DROP TABLE centralists")
    _use_database(monkeypatch, url)
    _assert_refused(_invoke(["centralist", "list"]), "centralists", "burgernet db upgrade")


def test_postgres_without_tables_says_to_upgrade(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, postgres_server: ManagedPostgres
) -> None:
    with db.make_engine(postgres_server.url).begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    _use_database(monkeypatch, postgres_server.url)
    for args in (["action", "list"], ["import", "participants", "participants.csv"], ["worker"]):
        _assert_refused(_invoke(args), "no Burgernet schema", "burgernet db upgrade")
    db.upgrade(postgres_server.url, "0005")
    _assert_refused(_invoke(["centralist", "list"]), "revision 0005", "burgernet db upgrade")
    upgraded = _invoke(["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    assert _invoke(["action", "list"]).exit_code == 0
