"""Engine and session handling. Sessions are scoped explicitly: ``with session_scope(factory) as s``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from burgernet.errors import DatabaseUnreachable, SchemaNotCurrent
from burgernet.secrets import redact_url

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def make_engine(url: str, echo: bool = False) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the IVR read while the panel or a worker writes; foreign keys are off by default.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error, always close."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (creates it from empty)."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)


UPGRADE_HINT = "run 'burgernet db upgrade'"


def require_current_schema(engine: Engine) -> None:
    """Refuse a database this code cannot use, with a message that says what to run.

    Raises :class:`DatabaseUnreachable` when no connection can be made, and
    :class:`SchemaNotCurrent` when the database is empty or at another Alembic revision than
    the newest migration shipped with the code.
    """
    url = engine.url.render_as_string(hide_password=False)
    where = redact_url(url)
    try:
        with engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    except DBAPIError as exc:
        raise DatabaseUnreachable(f"cannot reach the database at {where}: {_first_line(exc)}") from None
    script = ScriptDirectory.from_config(alembic_config(url))
    heads = set(script.get_heads())
    if current == heads:
        return
    if not current:
        raise SchemaNotCurrent(f"the database at {where} has no Burgernet schema yet: {UPGRADE_HINT}")
    known = {revision for revision in current if _is_known(script, revision)}
    if known != current:
        raise SchemaNotCurrent(
            f"the database at {where} is at revision {', '.join(sorted(current))}, which this version "
            f"of Burgernet does not know (is the code older than the database?)"
        )
    raise SchemaNotCurrent(
        f"the database at {where} is at revision {', '.join(sorted(current))}, older than this "
        f"version's {', '.join(sorted(heads))}: {UPGRADE_HINT}"
    )


def _is_known(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except Exception:  # alembic raises several kinds for an unknown revision
        return False


def _first_line(exc: DBAPIError) -> str:
    # The driver's own message, without SQLAlchemy's statement dump and background link.
    text = str(exc.orig).strip() or type(exc.orig).__name__
    return text.splitlines()[0]
