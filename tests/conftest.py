"""Shared fixtures: a real redis-server, a real SQLite database with the demo regions, settings."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text

from asterisk_conf.sandbox import AsteriskInstall, provision
from burgernet import db
from burgernet.db import session_scope
from burgernet.secrets import generate
from burgernet.settings import Settings, get_settings, load_settings
from composition import demo
from composition.context import Context
from composition.redis_server import ManagedRedis
from testbed.fake_twilio import FakeTwilio
from testbed.ports import free_port
from testbed.postgres import ManagedPostgres
from testbed.smtp import SmtpServer

# Secrets every process of the test session reads (the code ships none). In the environment,
# so that settings built anywhere in the tests, and the workers and servers they start, have
# them. Redis is not here: every test server has its own password, carried in its URL.
GENERATED_SECRETS = (
    "WEB__SECRET_KEY",
    "ASTERISK__AMI_SECRET",
    "TWILIO__AUTH_TOKEN",
    "PUSH__VAPID_PRIVATE_KEY",
    "ASTERISK__NODE_SECRET",
)


@pytest.fixture(scope="session", autouse=True)
def _strong_secrets_in_environment() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name in GENERATED_SECRETS:
            patch.setenv(f"BURGERNET_{name}", generate())
        yield


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedRedis]:
    server = ManagedRedis(free_port(), tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[ManagedPostgres]:
    """A private PostgreSQL cluster for the session (initdb'd and started by the tests)."""
    # Not under pytest's tmp dir: that is root-only (0700) and the server runs as postgres.
    base = Path(tempfile.mkdtemp(prefix="burgernet-pg-"))
    server = ManagedPostgres(base, free_port())
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def postgres_context(server: ManagedPostgres, redis: ManagedRedis, data_dir: Path) -> Context:
    """An empty, migrated PostgreSQL database with the demo regions, and a context on it."""
    with db.make_engine(server.url).begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    db.upgrade(server.url)
    context = Context(
        load_settings(
            data_dir=data_dir,
            database={"url": server.url},
            redis={"url": redis.url, "key_prefix": f"pg-{uuid.uuid4().hex[:8]}:"},
        )
    )
    with session_scope(context.sessions) as session:
        demo.seed_regions(session, np.random.default_rng(3))
    return context


@pytest.fixture(scope="session")
def seeded_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file with the 10 regions, centralists and PC4 areas (no participants)."""
    path = tmp_path_factory.mktemp("seed") / "template.db"
    url = f"sqlite:///{path}"
    db.upgrade(url)
    context = Context(load_settings(database={"url": url}))
    with session_scope(context.sessions) as session:
        demo.seed_regions(session, np.random.default_rng(7))
    context.engine.dispose()
    return path


@pytest.fixture(scope="session")
def asterisk_install() -> AsteriskInstall:
    """Asterisk 22: the system's, or the cached Debian sid sandbox (built on first use).

    A failure to provision is a test failure with the reason, never a skip.
    """
    return provision(load_settings().asterisk.sandbox_root, prefer_system=True)


@pytest.fixture
def bn_settings(tmp_path: Path, redis_server: ManagedRedis, seeded_database: Path) -> Settings:
    database = tmp_path / "burgernet.db"
    shutil.copyfile(seeded_database, database)
    return load_settings(
        data_dir=tmp_path,
        database={"url": f"sqlite:///{database}"},
        # A key prefix per test keeps tests apart on the one shared redis-server.
        redis={"url": redis_server.url, "key_prefix": f"test-{uuid.uuid4().hex[:8]}:"},
    )


@pytest.fixture
def bn_context(bn_settings: Settings) -> Iterator[Context]:
    context = Context(bn_settings)
    yield context
    context.close()


@pytest.fixture(autouse=True)
def _fresh_settings_cache() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on loopback that records every message it accepts.

    Point the code under test at it with ``smtp_server.settings()`` (an ``SmtpSettings``); to make
    the whole app use it, override ``bn_settings`` in the test module:
    ``bn_settings.model_copy(update={"smtp": smtp_server.settings(bn_settings.smtp)})``.
    """
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    """A Twilio-speaking server on loopback (testbed/fake_twilio.py) that records every
    message and call and posts signed status callbacks. Point code at it with
    ``fake_twilio.settings(bn_settings.twilio, callback_base_url=...)``."""
    server = FakeTwilio().start()
    yield server
    server.stop()
