"""Action codes against the real database and Redis: given on start, unique among open actions,
reused only after close, printed in the messages, and found on a call with or without Redis."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from burgernet import action_codes, db
from burgernet.action_codes import (
    NoFreeActionCode,
    active_action_for_code,
    assign_code,
    codes_in_use,
    is_action_code,
)
from burgernet.actions import AreaSpec
from burgernet.db import session_scope
from burgernet.domain import ActionStatus, AreaKind
from burgernet.live import AsyncLiveState, RoutingSnapshot, decode_snapshot, encode_snapshot
from burgernet.message_templates import render_message
from burgernet.models import Action, AuditEvent, Base, Participant
from burgernet.routing_service import RoutingService
from composition.context import Context
from composition.redis_server import ManagedRedis
from routing import DecisionKind, RoutingPolicy
from testbed.approvals import start_approved
from testbed.ports import free_port
from testbed.postgres import ManagedPostgres
from tests.conftest import postgres_context

UTRECHT = (5.1214, 52.0907)
AMSTERDAM = (4.8952, 52.3702)


class FirstChoice(random.Random):
    """Draws the lowest free code, so a test knows which code comes next."""

    def choice(self, seq: Any) -> Any:
        return seq[0]


def _draft(context: Context, title: str = "Vermist", centre: tuple[float, float] = UTRECHT) -> int:
    return context.actions.create(
        action_type="missing_person",
        title=title,
        region_code="MN",
        area=AreaSpec(AreaKind.CIRCLE, centre=centre, radius_m=2000),
        team=["c-mn-1"],
        actor="test",
    ).id


def _start(context: Context, title: str = "Vermist", centre: tuple[float, float] = UTRECHT) -> int:
    return context.actions.start(_draft(context, title, centre), actor="test", broadcast=False).id


def _activate(context: Context, rng: random.Random, now: datetime | None = None) -> str:
    """A new action made active by hand, its code drawn with ``rng``."""
    action_id = _draft(context)
    with session_scope(context.sessions) as session:
        action = session.get(Action, action_id)
        assert action is not None
        action.status = ActionStatus.ACTIVE.value
        action.started_at = datetime.now(UTC)
        return assign_code(session, action, rng=rng, now=now)


def _close(context: Context, code: str) -> None:
    with session_scope(context.sessions) as session:
        action_id = session.scalar(
            select(Action.id).where(Action.action_code == code, Action.status != ActionStatus.CLOSED.value)
        )
    assert action_id is not None
    context.actions.close(action_id, outcome="klaar", result_message="", actor="test")


def test_starting_gives_a_code_that_routes_until_the_action_closes(bn_context: Context) -> None:
    draft = _draft(bn_context)
    assert bn_context.actions.get(draft).action_code is None  # a draft has none yet
    view = bn_context.actions.start(draft, actor="test", broadcast=False)
    code = view.action_code
    assert code is not None and is_action_code(code) and code[0] != "0" and len(code) == 4
    with session_scope(bn_context.sessions) as session:
        found = active_action_for_code(session, code)
        assert found is not None and found.id == draft and found.team[0].centralist.sip_endpoint == "c-mn-1"
        audit = session.scalars(
            select(AuditEvent.detail).where(AuditEvent.entity_id == str(draft), AuditEvent.verb == "active")
        ).one()
        assert json.loads(audit or "{}")["action_code"] == code

    bn_context.actions.close(draft, outcome="gevonden", result_message="", actor="test")
    assert bn_context.actions.get(draft).action_code == code  # kept on record
    with session_scope(bn_context.sessions) as session:
        assert active_action_for_code(session, code) is None  # but it no longer routes
        assert code not in codes_in_use(session)


@pytest.mark.parametrize("keyed", ["123", "12345", "0123", "12a4", "", "١٢٣٤"])
def test_only_four_ascii_digits_without_a_leading_zero_are_a_code(keyed: str) -> None:
    assert not is_action_code(keyed)
    assert is_action_code("1000") and is_action_code("9999")


def test_codes_are_unique_among_open_actions(bn_context: Context) -> None:
    codes = [_activate(bn_context, FirstChoice()) for _ in range(3)]
    assert codes == ["1000", "1001", "1002"]
    started = {bn_context.actions.get(_start(bn_context, f"Actie {n}")).action_code for n in range(20)}
    assert len(started | set(codes)) == 23  # random draws, never one in use


def test_a_closed_code_comes_back_only_when_no_quiet_code_is_left(
    bn_context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _activate(bn_context, FirstChoice())
    _close(bn_context, first)
    # Closed today: a caller may still have the SMS. The next action gets another code.
    assert _activate(bn_context, FirstChoice()) == "1001"
    # A month later it is quiet again and is the lowest free code.
    later = datetime.now(UTC) + timedelta(days=action_codes.QUIET_DAYS + 1)
    assert _activate(bn_context, FirstChoice(), now=later) == first
    # With every other code taken, a recently closed one is reused rather than refusing to start.
    _close(bn_context, first)
    monkeypatch.setattr(action_codes, "LAST_CODE", 1002)
    assert _activate(bn_context, FirstChoice()) == "1002"
    assert _activate(bn_context, FirstChoice()) == first
    with pytest.raises(NoFreeActionCode) as refused:
        _activate(bn_context, FirstChoice())
    assert refused.value.code == "action.codes_exhausted"


def test_a_code_taken_meanwhile_makes_the_start_draw_again(bn_context: Context) -> None:
    """Another start committed the drawn code between the read and the write: the partial unique
    index refuses it, and the savepoint lets this start draw again without losing its changes."""
    rival = _draft(bn_context, "Rivaal")
    action_id = _draft(bn_context)

    class Racing(random.Random):
        draws: ClassVar[list[int]] = []

        def choice(self, seq: Any) -> Any:
            pick = seq[0]
            if not self.draws:  # the rival takes the first pick, in the same transaction
                session.execute(
                    update(Action)
                    .where(Action.id == rival)
                    .values(status="active", started_at=datetime.now(UTC), action_code=str(pick))
                )
            self.draws.append(pick)
            return pick

    with session_scope(bn_context.sessions) as session:
        action = session.get(Action, action_id)
        assert action is not None
        action.status = ActionStatus.ACTIVE.value
        action.started_at = datetime.now(UTC)
        code = assign_code(session, action, rng=Racing())
        # 1000 was refused by the database, so the second draw is without it.
        assert Racing.draws == [1000, 1001] and code == "1001"
    with session_scope(bn_context.sessions) as session:
        query = select(Action.id, Action.action_code).where(Action.id.in_([rival, action_id]))
        rows = {action: code for action, code in session.execute(query)}
        statuses = set(session.scalars(select(Action.status).where(Action.id.in_([rival, action_id]))))
    assert rows == {rival: "1000", action_id: "1001"} and statuses == {"active"}


def test_the_database_refuses_two_open_actions_with_one_code(bn_context: Context) -> None:
    first, second = _start(bn_context, "Een"), _draft(bn_context, "Twee")
    code = bn_context.actions.get(first).action_code
    with pytest.raises(IntegrityError), session_scope(bn_context.sessions) as session:
        session.execute(update(Action).where(Action.id == second).values(action_code=code))
    bn_context.actions.close(first, outcome="klaar", result_message="", actor="test")
    with session_scope(bn_context.sessions) as session:  # closed: the code is free to go again
        session.execute(update(Action).where(Action.id == second).values(action_code=code))
    with pytest.raises(ValueError, match="four digits"):
        Action(action_code="0123")


def test_the_migration_gives_codes_to_active_actions_only(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    db.upgrade(url, "0014")
    engine = db.make_engine(url)
    with engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO regions (id, code, name) VALUES (1, 'MN', 'Midden-Nederland')")
        )
        for n, status in enumerate(["active", "active", "draft", "closed", "active"], start=1):
            connection.execute(
                sa.text(
                    "INSERT INTO actions (id, action_type, title, description, region_id, area_kind,"
                    " postcodes, status, created_at, started_at, closed_at) VALUES (:id, 'vehicle', 'Oud',"
                    " '', 1, 'postcodes', '3511', :status, '2026-12-01 10:00:00', :started, :closed)"
                ),
                {
                    "id": n,
                    "status": status,
                    "started": None if status == "draft" else "2026-12-01 10:05:00",
                    "closed": "2026-12-01 11:00:00" if status == "closed" else None,
                },
            )
    db.upgrade(url)
    with engine.connect() as connection:
        result = connection.execute(sa.text("SELECT id, action_code FROM actions"))
        codes: dict[int, str | None] = {int(action): code for action, code in result}
    active = [codes[1], codes[2], codes[5]]
    assert all(is_action_code(code) for code in active) and len(set(active)) == 3
    assert codes[3] is None and codes[4] is None
    with engine.connect() as connection:  # the migration made what the model says
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert [d for d in diff if "action_code" in str(d)] == []
    with engine.begin() as connection, pytest.raises(IntegrityError):
        connection.execute(sa.text("UPDATE actions SET action_code = :code WHERE id = 3"), {"code": codes[1]})
    command.downgrade(db.alembic_config(url), "0014")
    assert "action_code" not in {c["name"] for c in sa.inspect(engine).get_columns("actions")}
    db.upgrade(url)


def _render(context: Context, channel: str, language: str, code: str, kind: str = "alert") -> str:
    with session_scope(context.sessions) as session:
        fields = {"description": "Meisje, 8 jaar, rode jas", "area": "Utrecht-Oost", "action_code": code}
        return render_message(
            session, action_type="missing_child", kind=kind, channel=channel, language=language, fields=fields
        ).body


def test_messages_print_the_code_and_voice_says_it_digit_by_digit(bn_context: Context) -> None:
    sms = _render(bn_context, "sms", "nl", "4821")
    assert sms.endswith("Bel gratis 0800-0011, code 4821") and len(sms) <= 160
    assert _render(bn_context, "sms", "en", "4821").endswith("Call free 0800-0011, code 4821")
    assert "en toets de actiecode vier, acht, twee, één." in _render(bn_context, "voice", "nl", "4821")
    assert "key the action code four, eight, two, one." in _render(bn_context, "voice", "en", "4821")
    assert "toets de actiecode 4821. Bel bij direct gevaar 112." in _render(bn_context, "email", "nl", "4821")
    assert "code 4821" in _render(bn_context, "sms", "nl", "4821", kind="update")
    # No code (a draft's preview): the clause is left out, no stray comma or "code".
    assert _render(bn_context, "sms", "nl", "").endswith("Bel gratis 0800-0011")
    assert _render(bn_context, "voice", "nl", "").endswith("Bel dan gratis 0800-0011.")
    email = _render(bn_context, "email", "en", "")
    assert "free of charge. In immediate danger" in email and "code" not in email


def test_the_routing_snapshot_carries_the_code(bn_context: Context) -> None:
    action_id = _start(bn_context)
    with session_scope(bn_context.sessions) as session:
        from burgernet import repositories

        snapshot = RoutingSnapshot(7, tuple(repositories.active_actions(session)), ())
    decoded = decode_snapshot(encode_snapshot(snapshot))
    assert decoded == snapshot
    assert {a.action_id: a.code for a in decoded.actions}[action_id] == bn_context.actions.get(
        action_id
    ).action_code


def _caller(context: Context, phone: str, at: tuple[float, float]) -> None:
    with session_scope(context.sessions) as session:
        session.add(
            Participant(
                phone_e164=phone, postcode="1012AB", lat=at[1], lon=at[0], created_at=datetime.now(UTC)
            )
        )


def test_a_call_finds_the_code_in_the_snapshot_without_the_database(bn_context: Context) -> None:
    settings = bn_context.settings
    live = AsyncLiveState.from_url(settings.redis.url, settings.redis.key_prefix)
    service = RoutingService(bn_context.sessions, live, RoutingPolicy(), "MN", alerted_window_seconds=3600)
    _caller(bn_context, "+31612340001", AMSTERDAM)  # far from the Utrecht action
    action_id = _start(bn_context)
    code = bn_context.actions.get(action_id).action_code

    async def scenario() -> None:
        first = await service.route("+31612340001", call_id="c1", action_code=code)
        assert first.decision.kind is DecisionKind.ROUTE and first.decision.by_code
        assert first.decision.action_id == action_id and f"action code {code}" in first.decision.reason
        # The snapshot is cached now: with the database gone, the code still routes.
        service._load_snapshot = _no_database  # type: ignore[method-assign,assignment]
        again = await service.decide(first.caller, action_code=code, call_id="c2")
        assert again.by_code and again.action_id == action_id
        await live.close()

    asyncio.run(scenario())


def _no_database(_version: int) -> RoutingSnapshot:
    raise AssertionError("the code was looked up in the database")


def test_with_redis_down_a_code_of_an_action_started_meanwhile_is_found_in_the_database(
    bn_context: Context,
) -> None:
    nobody_listens = AsyncLiveState.from_url(f"redis://127.0.0.1:{free_port()}/0", "down:")
    service = RoutingService(
        bn_context.sessions, nobody_listens, RoutingPolicy(), "MN", alerted_window_seconds=3600
    )
    _caller(bn_context, "+31612340002", AMSTERDAM)

    async def scenario() -> None:
        # The first call builds this process's last-known-good index (no action yet).
        before = await service.route("+31612340002", call_id="d1")
        assert before.decision.kind is DecisionKind.NO_ACTION
        action_id = _start(bn_context, "Tijdens de storing")
        code = bn_context.actions.get(action_id).action_code
        routed = await service.route("+31612340002", call_id="d2", action_code=code)
        assert routed.decision.by_code and routed.decision.action_id == action_id
        assert routed.decision.endpoints_in_order()[0] == "c-mn-1"
        wrong = await service.route(
            "+31612340002", call_id="d3", action_code="9999" if code != "9999" else "9998"
        )
        assert not wrong.decision.by_code and wrong.decision.kind is DecisionKind.NO_ACTION
        await nobody_listens.close()

    asyncio.run(scenario())


def test_the_amber_feeds_and_page_publish_the_code_while_active_only(bn_context: Context) -> None:
    from callback_api.feeds.services import amber_alerts, cap_document, json_feed

    view = bn_context.actions.create(
        action_type="amber_alert",
        title="AMBER Alert: Sanne (6)",
        region_code="MN",
        area=AreaSpec(AreaKind.NATIONAL),
        actor="test",
    )
    code = start_approved(bn_context, view.id, requester="test", broadcast=False).action_code
    assert code is not None
    settings = bn_context.settings
    with session_scope(bn_context.sessions) as session:
        (alert,) = amber_alerts(session)
    assert alert.action_code == code
    item = json_feed([alert], settings)["items"][0]["_burgernet"]
    assert item["action_code"] == code and item["call_tel"] == f"tel:{settings.asterisk.free_number},{code}"
    cap = cap_document(alert, settings).decode()
    assert f"toets actiecode {code}" in cap and f"key action code {code}" in cap

    bn_context.actions.close(view.id, outcome="terecht", result_message="Sanne is terug.", actor="test")
    with session_scope(bn_context.sessions) as session:
        (ended,) = amber_alerts(session)
    assert ended.action_code is None  # a closed code no longer routes: not published
    assert "action_code" not in json_feed([ended], settings)["items"][0]["_burgernet"]
    assert "actiecode" not in cap_document(ended, settings).decode()


@pytest.mark.postgres
def test_on_postgres_a_concurrent_start_that_took_the_code_makes_the_other_draw_again(
    postgres_server: ManagedPostgres, redis_server: ManagedRedis, tmp_path: Path
) -> None:
    """Two transactions, two connections: the rival commits the drawn code first; the partial
    unique index (migration 0015 on PostgreSQL) refuses it to the other, which draws again."""
    context = postgres_context(postgres_server, redis_server, tmp_path)
    try:
        rival, action_id = _draft(context, "Rivaal"), _draft(context)

        class CommittedFirst(random.Random):
            draws: ClassVar[list[int]] = []

            def choice(self, seq: Any) -> Any:
                pick = seq[0]
                if not self.draws:
                    with session_scope(context.sessions) as other:  # another connection, committed
                        other.execute(
                            update(Action)
                            .where(Action.id == rival)
                            .values(status="active", started_at=datetime.now(UTC), action_code=str(pick))
                        )
                self.draws.append(pick)
                return pick

        with session_scope(context.sessions) as session:
            action = session.get(Action, action_id)
            assert action is not None
            action.status = ActionStatus.ACTIVE.value
            action.started_at = datetime.now(UTC)
            assert assign_code(session, action, rng=CommittedFirst()) == "1001"
        assert CommittedFirst.draws == [1000, 1001]
        assert context.actions.get(action_id).status == "active"
        assert context.actions.get(rival).action_code == "1000"
        with context.engine.connect() as connection:  # migration 0015 on PostgreSQL: as the model says
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert [d for d in diff if "action_code" in str(d)] == []
        # And the service's own start on PostgreSQL: a random free code that routes.
        started = _start(context, "Derde")
        with session_scope(context.sessions) as session:
            code = context.actions.get(started).action_code
            found = active_action_for_code(session, code or "")
            assert found is not None and found.id == started
    finally:
        context.close()
