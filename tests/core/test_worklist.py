"""The call-back worklist (burgernet/callbacks.py) on the real database: what it holds, its order,
claims that only one can win and that expire, results, need-to-know, and the migrated schema."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, update

from burgernet.actions import AreaSpec
from burgernet.callbacks import (
    CallbackClaimed,
    CallbackNotClaimed,
    CallbackService,
    WorklistScope,
)
from burgernet.calls import CallLog
from burgernet.db import session_scope
from burgernet.domain import AreaKind
from burgernet.models import Action, AuditEvent, Base, Call, Centralist, Tip
from burgernet.ports import CallbackDial
from composition.context import Context
from composition.redis_server import ManagedRedis
from testbed.approvals import start_approved
from testbed.postgres import ManagedPostgres
from tests.conftest import postgres_context

UTRECHT = (5.1214, 52.0907)
EVERYTHING = WorklistScope.everything()


class RecordingDialer:
    """Stands in for Asterisk in the core tests (the real Originate: tests/asterisk)."""

    def __init__(self) -> None:
        self.requests: list[CallbackDial] = []

    def dial(self, request: CallbackDial) -> None:
        self.requests.append(request)


def _service(
    context: Context, dialer: RecordingDialer | None = None, claim_minutes: int = 10
) -> CallbackService:
    return CallbackService(
        context.sessions,
        context.live,
        dialer or RecordingDialer(),
        claim_minutes=claim_minutes,
        call_horizon_hours=72,
    )


def _action(context: Context, action_type: str, region: str, team: list[str], title: str) -> int:
    view = context.actions.create(
        action_type=action_type,
        title=title,
        region_code=region,
        area=AreaSpec(AreaKind.CIRCLE, centre=UTRECHT, radius_m=2000),
        team=team,
        actor="test",
        source="test",
    )
    start_approved(context, view.id, requester="test")
    return view.id


def _tip(context: Context, unique_id: str, action_id: int | None, number: str, region: str = "MN") -> int:
    log = CallLog(context.sessions)
    log.open_call(unique_id, caller_number=number, action_id=action_id, region_code=region, reason="test")
    recording = Path(context.settings.data_dir) / f"{unique_id}.wav"
    recording.write_bytes(b"RIFF")
    return log.register_tip(
        unique_id, action_id=action_id, recording_path=str(recording), callback_number=number
    )


def _call(context: Context, unique_id: str, action_id: int | None, number: str, outcome: str) -> None:
    log = CallLog(context.sessions)
    log.open_call(unique_id, caller_number=number, action_id=action_id, region_code="MN", reason="test")
    log.ended(unique_id, outcome=outcome, hangup_cause=16)


@pytest.fixture
def desk(bn_context: Context) -> dict[str, int]:
    """An information action (MN), an urgent one (RO, c-mn-1 on its team), an AMBER alert (NH)."""
    ids = {
        "info": _action(bn_context, "suspect", "MN", ["c-mn-1"], "Verdachte fietsendief"),
        "urgent": _action(bn_context, "missing_person", "RO", ["c-ro-1", "c-mn-1"], "Vermiste man"),
        "amber": _action(bn_context, "amber_alert", "NH", ["c-nh-1"], "AMBER Alert Sanne"),
    }
    ids["tip_info"] = _tip(bn_context, "1.1", ids["info"], "+31612340001")
    ids["tip_amber"] = _tip(bn_context, "1.2", ids["amber"], "+31612340002")
    _call(bn_context, "1.3", ids["urgent"], "+31612340003", "abandoned")
    _call(bn_context, "1.4", ids["info"], "+31612340004", "failed")
    _call(bn_context, "1.5", ids["info"], "+31612340005", "connected")  # reached someone: not listed
    log = CallLog(bn_context.sessions)  # the region's pool answered (overflowed): reached someone too
    log.open_call("1.7", caller_number="+31612340007", action_id=ids["info"], region_code="MN", reason="t")
    log.answered("1.7", "c-mn-3")
    log.ended("1.7", outcome="overflowed", hangup_cause=16)
    ids["tip_failure"] = _tip(bn_context, "1.6", None, "+31612340006", region="MN")  # failure path
    return ids


def _centralist(context: Context, endpoint: str) -> int:
    with session_scope(context.sessions) as session:
        found = session.scalar(select(Centralist.id).where(Centralist.sip_endpoint == endpoint))
    assert found is not None
    return int(found)


def test_the_list_holds_tips_and_unanswered_calls_amber_first_then_by_age(
    bn_context: Context, desk: dict[str, int]
) -> None:
    items = _service(bn_context).worklist(EVERYTHING)
    described = [(item.reason, item.number, item.urgency) for item in items]
    assert described == [
        ("tip", "+31612340002", "amber"),
        ("abandoned", "+31612340003", "urgent"),
        ("tip", "+31612340006", None),  # no action: ranked with urgent, younger than the call above
        ("tip", "+31612340001", "information"),
        ("unanswered", "+31612340004", "information"),
    ]
    assert _service(bn_context).sync() == 0  # listed once, however often the list is read


def test_a_centralist_sees_their_region_their_teams_and_their_regions_failure_path(
    bn_context: Context, desk: dict[str, int]
) -> None:
    mine = WorklistScope(False, _centralist(bn_context, "c-mn-1"))
    numbers = {item.number for item in _service(bn_context).worklist(mine)}
    # MN's own action, the RO action whose team they are on, MN's failure-path tip; not NH's AMBER.
    assert numbers == {"+31612340001", "+31612340003", "+31612340004", "+31612340006"}
    other = WorklistScope(False, _centralist(bn_context, "c-nh-1"))
    assert {item.number for item in _service(bn_context).worklist(other)} == {"+31612340002"}
    assert _service(bn_context).worklist(WorklistScope(False, None)) == []


def test_only_one_of_two_simultaneous_claims_wins(bn_context: Context, desk: dict[str, int]) -> None:
    _claim_race(bn_context)


def test_only_one_of_two_simultaneous_claims_wins_on_postgresql(
    postgres_server: ManagedPostgres, redis_server: ManagedRedis, tmp_path: Path
) -> None:
    context = postgres_context(postgres_server, redis_server, tmp_path)
    try:
        action = _action(context, "amber_alert", "MN", ["c-mn-1"], "AMBER Alert")
        _tip(context, "9.1", action, "+31612349999")
        _claim_race(context)
    finally:
        context.close()


def _claim_race(context: Context) -> None:
    service = _service(context)
    item = service.worklist(EVERYTHING)[0]
    start = threading.Barrier(8)
    winners: list[str] = []
    losers: list[str] = []

    def attempt(name: str) -> None:
        start.wait()
        try:
            service.claim(item.id, EVERYTHING, actor=name, source="test")
            winners.append(name)
        except CallbackClaimed:
            losers.append(name)

    threads = [threading.Thread(target=attempt, args=(f"centralist-{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1 and len(losers) == 7
    assert service.item(item.id, EVERYTHING).claimed_by == winners[0]
    with session_scope(context.sessions) as session:
        claims = session.scalars(
            select(AuditEvent.actor).where(AuditEvent.entity == "callback", AuditEvent.verb == "claim")
        ).all()
    assert claims == winners


def test_a_claim_left_alone_expires_back_into_the_list(bn_context: Context, desk: dict[str, int]) -> None:
    service = _service(bn_context, claim_minutes=10)
    item = service.worklist(EVERYTHING)[0]
    now = datetime.now(UTC)
    service.claim(item.id, EVERYTHING, actor="anna", source="test", now=now)
    with pytest.raises(CallbackClaimed, match="anna"):
        service.claim(item.id, EVERYTHING, actor="bert", source="test", now=now + timedelta(minutes=9))
    later = now + timedelta(minutes=10, seconds=1)
    assert not service.item(item.id, EVERYTHING, now=later).claim_active(later)
    taken = service.claim(item.id, EVERYTHING, actor="bert", source="test", now=later)
    assert taken.claimed_by == "bert"
    # Anna's expired claim no longer lets her note a result.
    with pytest.raises(CallbackNotClaimed):
        service.finish(item.id, EVERYTHING, result="reached", actor="anna", source="test", now=later)


def test_click_to_call_logs_a_callback_call_and_the_result_ends_the_item(
    bn_context: Context, desk: dict[str, int]
) -> None:
    dialer = RecordingDialer()
    service = _service(bn_context, dialer)
    mine = WorklistScope(False, _centralist(bn_context, "c-mn-1"))
    item = next(i for i in service.worklist(mine) if i.tip_id == desk["tip_info"])
    with pytest.raises(CallbackNotClaimed):
        service.call(item.id, mine, centralist_id=mine.centralist_id, actor="centralist", source="test")
    service.claim(item.id, mine, actor="centralist", source="test")
    unique_id = service.call(
        item.id, mine, centralist_id=mine.centralist_id, actor="centralist", source="test"
    )
    [request] = dialer.requests
    assert (request.centralist_endpoint, request.number, request.action_id) == (
        "c-mn-1",
        "0612340001",
        desk["info"],
    )
    with session_scope(bn_context.sessions) as session:
        call = session.scalar(select(Call).where(Call.unique_id == unique_id))
        assert call is not None and call.kind == "callback" and call.action_id == desk["info"]
    done = service.finish(
        item.id, mine, result="voicemail", note="ingesproken", actor="centralist", source="test"
    )
    assert (done.result, done.done_by, done.note) == ("voicemail", "centralist", "ingesproken")
    assert item.id not in {i.id for i in service.worklist(mine)}
    assert item.id in {i.id for i in service.worklist(mine, done=True)}
    with session_scope(bn_context.sessions) as session:
        tip = session.get(Tip, desk["tip_info"])
        assert tip is not None and tip.callback_done_at is not None
        verbs = session.scalars(
            select(AuditEvent.verb).where(
                AuditEvent.entity == "callback", AuditEvent.entity_id == str(item.id)
            )
        ).all()
    assert verbs == ["claim", "call-back", "call-back-done"]
    with pytest.raises(CallbackClaimed):  # done: nobody claims it again
        service.claim(item.id, mine, actor="someone", source="test")


def test_tips_of_an_action_closed_long_ago_still_show_marked(
    bn_context: Context, desk: dict[str, int]
) -> None:
    bn_context.actions.close(
        desk["amber"], outcome="gevonden", result_message="Sanne is gevonden", actor="test", source="test"
    )
    service = _service(bn_context)
    with session_scope(bn_context.sessions) as session:
        session.execute(
            update(Action)
            .where(Action.id == desk["amber"])
            .values(closed_at=datetime.now(UTC) - timedelta(days=3))
        )
    item = next(i for i in service.worklist(EVERYTHING) if i.tip_id == desk["tip_amber"])
    assert item.action_status == "closed" and item.closed_long_ago


def test_migrated_schema_matches_the_worklist_and_sighting_models(bn_context: Context) -> None:
    with bn_context.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    mine = [d for d in diff if any(t in str(d) for t in ("sightings", "callback_items"))]
    assert mine == []
