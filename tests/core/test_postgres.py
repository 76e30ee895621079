"""The same schema, constraints and services on a real PostgreSQL (production's database)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.exc import IntegrityError

from burgernet import repositories
from burgernet.actions import ActionError, AreaSpec
from burgernet.db import session_scope
from burgernet.domain import AreaKind
from burgernet.models import Participant
from composition import demo
from composition.context import Context
from composition.redis_server import ManagedRedis
from testbed.approvals import start_approved
from testbed.postgres import ManagedPostgres
from tests.conftest import postgres_context

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_context(
    postgres_server: ManagedPostgres, redis_server: ManagedRedis, tmp_path: Path
) -> Iterator[Context]:
    context = postgres_context(postgres_server, redis_server, tmp_path)
    yield context
    context.close()


def test_schema_and_services_on_postgres(pg_context: Context) -> None:
    with session_scope(pg_context.sessions) as session:
        demo.seed_participants(session, 500, np.random.default_rng(5))
    view = pg_context.actions.create(
        action_type="amber_alert",
        title="AMBER Alert",
        region_code="ON",
        area=AreaSpec(AreaKind.NATIONAL),
        team=["c-on-1"],
        actor="t",
    )
    start_approved(pg_context, view.id, requester="t")
    with pytest.raises(ActionError, match=r"from active to (draft|active)"):
        pg_context.actions.start(view.id, actor="t")
    with session_scope(pg_context.sessions) as session:
        active = repositories.active_actions(session)
        assert [a.action_id for a in active] == [view.id] and active[0].team == ("c-on-1",)
        assert len(repositories.centralists(session)) == 30


@pytest.mark.parametrize("bad", [{"language": "de"}, {"lat": 10.0}, {"opted_out": True}])
def test_check_constraints_hold_on_postgres(pg_context: Context, bad: dict[str, object]) -> None:
    values: dict[str, object] = {
        "phone_e164": "+31612345678",
        "postcode": "3511AB",
        "lat": 52.0,
        "lon": 5.0,
        "created_at": datetime.now(UTC),
    }
    values.update(bad)
    with pytest.raises(IntegrityError), session_scope(pg_context.sessions) as session:
        session.add(Participant(**values))


def test_unique_phone_on_postgres(pg_context: Context) -> None:
    row = {
        "phone_e164": "+31612345678",
        "postcode": "3511AB",
        "lat": 52.0,
        "lon": 5.0,
        "created_at": datetime.now(UTC),
    }
    with session_scope(pg_context.sessions) as session:
        session.add(Participant(**row))
    with pytest.raises(IntegrityError), session_scope(pg_context.sessions) as session:
        session.add(Participant(**row))
