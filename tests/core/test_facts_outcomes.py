"""Structured outcomes in the core service and on the command line: a kind from the fixed list,
an internal note that participants never get, the public result message; audited."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from broadcasting import store
from burgernet.actions import ActionError, AreaSpec
from burgernet.db import session_scope
from burgernet.domain import AreaKind, outcome_words
from burgernet.models import AuditEvent, Broadcast, Delivery, Participant
from composition.cli import main
from composition.context import Context


def _action(context: Context) -> int:
    view = context.actions.create(
        action_type="missing_child",
        title="Meisje, 9",
        region_code="MN",
        area=AreaSpec(AreaKind.POSTCODES, postcodes=("3511",)),
        actor="t",
    )
    context.actions.start(view.id, actor="t", broadcast=False)
    return view.id


def test_the_service_checks_the_kind_and_keeps_the_note_internal(bn_context: Context) -> None:
    action_id = _action(bn_context)
    with pytest.raises(ActionError, match="unknown outcome kind 'lost'"):
        bn_context.actions.close(action_id, outcome_kind="lost", outcome="x", result_message="", actor="t")
    with pytest.raises(ActionError, match="needs a note"):
        bn_context.actions.close(action_id, outcome_kind="other", outcome=" ", result_message="", actor="t")
    assert bn_context.actions.get(action_id).status == "active"

    view = bn_context.actions.close(
        action_id,
        outcome_kind="found_otherwise",
        outcome="bij oma, Kerkstraat 7",
        result_message="Het meisje is terecht.",
        actor="operator",
        source="cli",
    )
    assert (view.outcome_kind, view.outcome, view.result_message) == (
        "found_otherwise",
        "bij oma, Kerkstraat 7",
        "Het meisje is terecht.",
    )
    with session_scope(bn_context.sessions) as session:
        detail = session.scalar(
            select(AuditEvent.detail).where(
                AuditEvent.entity_id == str(action_id), AuditEvent.verb == "closed"
            )
        )
        assert json.loads(detail or "{}")["outcome_kind"] == "found_otherwise"
        # What a participant's result message says about the outcome: the kind's words, not the note.
        person = Participant(
            phone_e164="+31612345000", postcode="3511AB", lat=52.09, lon=5.12, created_at=datetime.now(UTC)
        )
        broadcast = Broadcast(action_id=action_id, kind="result", created_at=datetime.now(UTC))
        session.add_all([person, broadcast])
        session.flush()
        delivery = Delivery(
            broadcast_id=broadcast.id, participant_id=person.id, channel="sms", updated_at=datetime.now(UTC)
        )
        session.add(delivery)
        session.flush()
        job = store.load_job(session, delivery.id)
    assert job is not None
    assert job.action_outcome == "op een andere manier gevonden" == outcome_words("found_otherwise", "nl")
    assert "Kerkstraat" not in job.action_outcome
    assert outcome_words("found_otherwise", "en") == "found otherwise" and outcome_words(None, "nl") == ""


def test_a_caller_that_knows_only_a_note_gets_other(bn_context: Context) -> None:
    action_id = _action(bn_context)
    view = bn_context.actions.close(action_id, outcome="gevonden", result_message="", actor="t")
    assert (view.outcome_kind, view.outcome) == ("other", "gevonden")


def test_burgernet_action_close_asks_for_the_kind(
    bn_context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    action_id = _action(bn_context)
    monkeypatch.setenv("BURGERNET_DATA_DIR", str(bn_context.settings.data_dir))
    monkeypatch.setenv("BURGERNET_DATABASE__URL", bn_context.settings.database_url)
    monkeypatch.setenv("BURGERNET_REDIS__URL", bn_context.settings.redis.url)
    monkeypatch.setenv("BURGERNET_REDIS__KEY_PREFIX", bn_context.settings.redis.key_prefix)
    runner = CliRunner()
    old_script = runner.invoke(main, ["action", "close", str(action_id), "--outcome", "gevonden"])
    assert old_script.exit_code == 2
    assert "Missing option '--outcome-kind'" in old_script.output and "solved_by_tip" in old_script.output
    assert bn_context.actions.get(action_id).status == "active"

    closed = runner.invoke(
        main,
        ["action", "close", str(action_id), "--outcome-kind", "cancelled", "--message", "Loos alarm."],
    )
    assert closed.exit_code == 0, closed.output
    assert f"action {action_id} closed: cancelled" in closed.output
    view = bn_context.actions.get(action_id)
    assert (view.outcome_kind, view.outcome, view.result_message) == ("cancelled", None, "Loos alarm.")
