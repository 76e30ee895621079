"""Facts that last: an action's figures come from a real broadcast (fan-out, a worker, a real
SMTP server) and real call-log writes, are refreshed at the moments they change without anyone
asking, and survive retention removing the personal rows they were counted from."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select

from broadcasting import store
from burgernet.actions import AreaSpec
from burgernet.calls import CallLog
from burgernet.db import session_scope
from burgernet.domain import AreaKind, Channel
from burgernet.facts import milestones
from burgernet.models import Action, ActionChannelFact, ActionFact, Call, Delivery, Tip
from burgernet.retention import Retention
from burgernet.settings import Settings
from composition.context import Context
from testbed.smtp import SmtpServer
from tests.broadcasting.conftest import Crowd, WorkerThread, crowd, start_worker
from tests.broadcasting.test_email_broadcast import email_senders

__all__ = ["crowd", "start_worker"]  # fixtures shared with the broadcasting tests


@pytest.fixture
def bn_settings(bn_settings: Settings, smtp_server: SmtpServer) -> Settings:
    return bn_settings.model_copy(
        update={
            "smtp": smtp_server.settings(bn_settings.smtp),
            "broadcast": bn_settings.broadcast.model_copy(
                update={"email_per_second": 200.0, "retry_base_seconds": 0.2, "claim_idle_seconds": 2.0}
            ),
        }
    )


def facts(context: Context, action_id: int) -> ActionFact:
    with session_scope(context.sessions) as session:
        fact = session.get(ActionFact, action_id)
        assert fact is not None, f"no facts for action {action_id}"
        session.expunge(fact)
        return fact


def channel_facts(context: Context, action_id: int) -> dict[tuple[str, str], ActionChannelFact]:
    with session_scope(context.sessions) as session:
        rows = list(
            session.scalars(select(ActionChannelFact).where(ActionChannelFact.action_id == action_id))
        )
        for row in rows:
            session.expunge(row)
    return {(row.channel, row.kind): row for row in rows}


def test_milestones_count_the_kth_final_delivery_against_all_recipients() -> None:
    assert milestones([3.0, 1.0, 2.0, 4.0], 4) == {50: 2.0, 90: 4.0, 100: 4.0}
    assert milestones([1.0, 2.0], 4) == {50: 2.0, 90: None, 100: None}  # half final: no 90 % yet
    assert milestones([], 0) == {50: None, 90: None, 100: None}


def test_an_actions_figures_come_from_its_broadcasts_and_calls_and_outlive_retention(
    crowd: Crowd,
    bn_context: Context,
    smtp_server: SmtpServer,
    start_worker: Callable[..., WorkerThread],
) -> None:
    people = crowd.add(8, email=True)
    smtp_server.refuse("p6@example.nl")  # a permanent refusal: failed
    # A worker that only selects recipients: the deliveries wait in the queue.
    start_worker(lambda: {}, fan_out=True)
    action_id = crowd.action()
    (alert_id,) = crowd.broadcasts(action_id, "alert")
    crowd.wait_until(lambda: sum(crowd.statuses(alert_id).values()) == 8, what="the fan-out")
    with session_scope(bn_context.sessions) as session:  # p7 sends STOP while it is queued
        assert store.cancel_for_participant(session, people[7], Channel.EMAIL) == 1
    start_worker(email_senders(bn_context.settings), fan_out=False)
    assert crowd.wait_done(alert_id) == {"sent": 6, "failed": 1, "cancelled": 1}

    # Calls about the action, written as the AMI tracker and FastAGI write them.
    calls = CallLog(bn_context.sessions)
    now = datetime.now(UTC)
    for n, (answered_after, outcome) in enumerate([(5.0, None), (25.0, None), (None, "abandoned")]):
        unique_id = f"facts-{n}"
        calls.open_call(unique_id, caller_number=f"+3161000000{n}", action_id=action_id, region_code="AM")
        if answered_after is not None:
            calls.answered(unique_id, "c-am-1", at=now + timedelta(seconds=answered_after))
        calls.ended(unique_id, outcome=outcome, hangup_cause=16, at=now + timedelta(seconds=40))
    # Every caller here is a participant the alert reached by e-mail: the closing word adds
    # nobody (tests/broadcasting/test_closing_word.py), so the result stays six e-mails.
    calls.open_call("facts-tip", caller_number="+31610000003", action_id=action_id)
    recording = bn_context.settings.recordings_dir / "tips" / str(action_id) / "facts-tip.wav"
    calls.register_tip("facts-tip", action_id=action_id, recording_path=str(recording), callback_number=None)
    calls.ended("facts-tip", outcome="tip_left", hangup_cause=16)
    calls.open_call("facts-elsewhere", caller_number="+31610000008")  # no action: not counted
    calls.ended("facts-elsewhere", outcome="no_action", hangup_cause=16)

    # Nobody refreshes by hand: the call's end and the broadcast's end did (the broadcast's
    # refresh runs right after it is marked done, so it may land a moment after wait_done).
    def alert_counted() -> bool:
        row = channel_facts(bn_context, action_id).get(("email", "alert"))
        return row is not None and row.delivered + row.failed + row.opted_out == 8

    crowd.wait_until(alert_counted, what="the alert's figures")
    alert = channel_facts(bn_context, action_id)[("email", "alert")]
    assert (alert.recipients, alert.delivered, alert.failed, alert.opted_out) == (8, 6, 1, 1)
    assert alert.t50_s is not None and alert.t90_s is not None and alert.t100_s is not None
    assert 0 <= alert.t50_s <= alert.t90_s <= alert.t100_s < 60
    fact = facts(bn_context, action_id)
    assert (fact.action_type, fact.region_code, fact.urgency) == ("missing_person", "AM", "urgent")
    assert (fact.calls_total, fact.calls_connected, fact.calls_abandoned, fact.calls_tip_left) == (4, 2, 1, 1)
    assert fact.calls_answered_within_20s == 1
    assert fact.longest_wait_s is not None and 25 <= fact.longest_wait_s <= 45  # abandoned after ~40 s
    assert fact.tips == 1 and fact.callbacks_done == 0
    assert fact.first_alert_at is not None and fact.first_call_at is not None
    assert fact.first_alert_at <= fact.first_call_at

    # Two updates to the six the alert reached: one row for both, each timed from its own start.
    for text in ("Gezien bij het station", "Nu richting park"):
        update_id = bn_context.actions.send_update(action_id, text, actor="t")
        assert crowd.wait_done(update_id) == {"sent": 6}

    def updates_counted() -> bool:
        row = channel_facts(bn_context, action_id).get(("email", "update"))
        return row is not None and row.delivered == 12 and row.t100_s is not None

    crowd.wait_until(updates_counted, what="the updates' figures")
    update = channel_facts(bn_context, action_id)[("email", "update")]
    assert (update.recipients, update.delivered, update.failed) == (12, 12, 0)

    # Closing asks for the result message to the six the alert reached.
    bn_context.actions.close(
        action_id, outcome_kind="solved_by_tip", outcome="via tip", result_message="Gevonden.", actor="t"
    )
    (result_id,) = crowd.broadcasts(action_id, "result")
    assert crowd.wait_done(result_id) == {"sent": 6}
    crowd.wait_until(lambda: facts(bn_context, action_id).result_deliveries == 6, what="the result's figures")
    before = facts(bn_context, action_id)
    assert (before.outcome_kind, before.closed_at is not None) == ("solved_by_tip", True)
    before_channels = channel_facts(bn_context, action_id)
    assert set(before_channels) == {("email", "alert"), ("email", "update"), ("email", "result")}

    # A year later retention removes the deliveries, the tip and the callers' numbers ...
    later = datetime.now(UTC) + timedelta(days=400)
    report = Retention(bn_context.sessions, bn_context.settings, bn_context.facts).run(later)
    assert report.kind("deliveries").counts["deliveries"] == 8 + 12 + 6
    assert report.kind("tips").counts["tips"] == 1
    with session_scope(bn_context.sessions) as session:
        assert session.scalar(select(func.count(Delivery.id))) == 0
        assert session.scalar(select(func.count(Tip.id))) == 0
        assert session.scalar(select(func.count(Call.id)).where(Call.caller_number.is_not(None))) == 0
        assert session.scalar(select(func.count(Call.id)).where(Call.action_id == action_id)) == 4

    # ... and the figures stay, however often they are refreshed again.
    assert bn_context.facts.refresh(action_id)
    assert bn_context.facts.refresh_open(later) >= 0
    after = facts(bn_context, action_id)
    for name in (
        "calls_total",
        "calls_connected",
        "calls_abandoned",
        "calls_tip_left",
        "calls_answered_within_20s",
        "longest_wait_s",
        "tips",
        "result_deliveries",
        "first_alert_at",
        "first_call_at",
        "outcome_kind",
    ):
        assert getattr(after, name) == getattr(before, name), name
    assert after.sources_purged_at is not None
    after_channels = channel_facts(bn_context, action_id)
    for key, row in before_channels.items():
        kept = after_channels[key]
        assert (kept.recipients, kept.delivered, kept.failed, kept.opted_out, kept.t50_s, kept.t100_s) == (
            row.recipients,
            row.delivered,
            row.failed,
            row.opted_out,
            row.t50_s,
            row.t100_s,
        ), key


def test_the_periodic_refresh_fills_in_actions_closed_before_facts_existed(bn_context: Context) -> None:
    view = bn_context.actions.create(
        action_type="suspect",
        title="Oud",
        region_code="MN",
        area=AreaSpec(AreaKind.POSTCODES, postcodes=("3511",)),
        actor="t",
    )
    bn_context.actions.start(view.id, actor="t", broadcast=False)
    bn_context.actions.close(view.id, outcome_kind="not_found", result_message="", actor="t")
    with session_scope(bn_context.sessions) as session:  # as an upgrade from before 0012 leaves it
        action = session.get(Action, view.id)
        assert action is not None
        action.closed_at = datetime.now(UTC) - timedelta(days=60)
        session.execute(delete(ActionFact).where(ActionFact.action_id == view.id))
    assert bn_context.facts.refresh_open() >= 1
    fact = facts(bn_context, view.id)
    assert (fact.action_type, fact.outcome_kind, fact.region_code) == ("suspect", "not_found", "MN")
