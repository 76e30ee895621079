"""Closing an action in the panel and through the API records a kind from the fixed list, the
internal note and the public result message; without a kind nothing closes. The action page
shows the kind, in the user's language."""

from __future__ import annotations

import json
from collections.abc import Callable

from flask.testing import FlaskClient
from sqlalchemy import select

from burgernet.db import session_scope
from burgernet.domain import OUTCOME_KINDS
from burgernet.models import ActionFact, AuditEvent
from composition.context import Context
from tests.panel.conftest import World, csrf_token


def _close_audit(context: Context, action_id: int) -> dict[str, object]:
    with session_scope(context.sessions) as session:
        detail = session.scalar(
            select(AuditEvent.detail).where(
                AuditEvent.entity == "action",
                AuditEvent.entity_id == str(action_id),
                AuditEvent.verb == "closed",
            )
        )
    return json.loads(detail or "{}")


def test_the_close_form_offers_the_fixed_list_and_records_kind_note_and_message(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    client = client_for("operator")
    page = client.get(f"/actions/{world.active_id}").get_data(as_text=True)
    for kind in OUTCOME_KINDS:
        assert f'value="{kind}"' in page
    assert "gevonden of opgelost dankzij een Burgernet-tip" in page  # the list in Dutch

    token = csrf_token(client, f"/actions/{world.active_id}")
    # Only the note, as an older page or script would send it: refused, nothing closes.
    refused = client.post(
        f"/actions/{world.active_id}/close",
        data={"csrf_token": token, "outcome": "gevonden"},
        follow_redirects=True,
    )
    assert bn_context.actions.get(world.active_id).status == "active"
    assert "Afloop" in refused.get_data(as_text=True)
    # A kind outside the list: refused as well.
    client.post(f"/actions/{world.active_id}/close", data={"csrf_token": token, "outcome_kind": "lost"})
    assert bn_context.actions.get(world.active_id).status == "active"
    # "other" without a note says why it is refused.
    other = client.post(
        f"/actions/{world.active_id}/close",
        data={"csrf_token": token, "outcome_kind": "other"},
        follow_redirects=True,
    )
    assert "needs a note" in other.get_data(as_text=True)
    assert bn_context.actions.get(world.active_id).status == "active"

    done = client.post(
        f"/actions/{world.active_id}/close",
        data={
            "csrf_token": token,
            "outcome_kind": "solved_by_tip",
            "outcome": "tip van buurman, gevonden bij station",
            "result_message": "Het meisje is terecht. Dank voor uw hulp.",
        },
    )
    assert done.status_code == 302
    view = bn_context.actions.get(world.active_id)
    assert (view.status, view.outcome_kind, view.outcome, view.result_message) == (
        "closed",
        "solved_by_tip",
        "tip van buurman, gevonden bij station",
        "Het meisje is terecht. Dank voor uw hulp.",
    )
    assert _close_audit(bn_context, world.active_id) == {
        "from": "active",
        "outcome": "tip van buurman, gevonden bij station",
        "outcome_kind": "solved_by_tip",
    }
    shown = client.get(f"/actions/{world.active_id}").get_data(as_text=True)
    assert 'data-kind="solved_by_tip"' in shown
    assert "gevonden of opgelost dankzij een Burgernet-tip" in shown
    assert "Interne notitie" in shown and "tip van buurman" in shown
    with session_scope(bn_context.sessions) as session:  # closing refreshed the lasting figures
        fact = session.get(ActionFact, world.active_id)
        assert fact is not None and fact.outcome_kind == "solved_by_tip" and fact.closed_at is not None


def test_the_api_close_needs_a_kind_from_the_list(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    client = client_for(None)
    auth = {"Authorization": f"Bearer {world.tokens['centralist']}"}
    old_style = client.post(
        f"/api/v1/actions/{world.active_id}/close", headers=auth, json={"outcome": "gevonden"}
    )
    assert old_style.status_code == 422
    body = old_style.get_json()
    assert body["error_id"] == "input.invalid" and "outcome_kind is required" in body["message"]
    assert "solved_by_tip" in body["message"]
    assert bn_context.actions.get(world.active_id).status == "active"

    closed = client.post(
        f"/api/v1/actions/{world.active_id}/close",
        headers=auth,
        json={"outcome_kind": "not_found", "result_message": "De zoektocht is gestaakt."},
    )
    assert closed.status_code == 200
    data = closed.get_json()
    assert (data["status"], data["outcome_kind"], data["outcome"]) == ("closed", "not_found", None)
    spec = client.get("/api/v1/openapi.json").get_json()
    close_body = spec["paths"]["/actions/{action_id}/close"]["post"]["requestBody"]["content"]
    schema = close_body["application/json"]["schema"]
    assert schema["required"] == ["outcome_kind"]
    assert schema["properties"]["outcome_kind"]["enum"] == list(OUTCOME_KINDS)
