"""The database refuses bad data whichever path writes it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from burgernet.actions import ActionError, AreaSpec
from burgernet.db import session_scope
from burgernet.domain import AreaKind, InvalidTransition
from burgernet.models import Action, AuditEvent, Centralist, Participant, Region
from composition.context import Context

NOW = datetime.now(UTC)


def _participant(phone: str, **extra: object) -> Participant:
    values: dict[str, object] = {
        "phone_e164": phone,
        "postcode": "3511AB",
        "lat": 52.09,
        "lon": 5.12,
        "created_at": NOW,
    }
    values.update(extra)
    return Participant(**values)


def test_phone_numbers_are_unique(bn_context: Context) -> None:
    with session_scope(bn_context.sessions) as session:
        session.add(_participant("+31612345678"))
    with pytest.raises(IntegrityError), session_scope(bn_context.sessions) as session:
        session.add(_participant("+31612345678"))


@pytest.mark.parametrize(
    "bad", [{"language": "de"}, {"lat": 48.0}, {"phone_e164": "0612345678"}, {"opted_out": True}]
)
def test_check_constraints(bn_context: Context, bad: dict[str, object]) -> None:
    with pytest.raises(IntegrityError), session_scope(bn_context.sessions) as session:
        session.add(_participant("+31687654321", **bad))


def test_centralist_endpoint_name_is_checked() -> None:
    with pytest.raises(ValueError, match="SIP endpoint"):
        Centralist(name="x", sip_endpoint="Bad Name;Dial", region_id=1)


def _circle_action(context: Context) -> int:
    return context.actions.create(
        action_type="missing_child",
        title="Vermist kind",
        region_code="MN",
        area=AreaSpec(AreaKind.CIRCLE, centre=(5.12, 52.09), radius_m=2000),
        team=["c-mn-1"],
        actor="tester",
    ).id


def test_action_life_cycle_and_audit(bn_context: Context) -> None:
    action_id = _circle_action(bn_context)
    assert bn_context.actions.start(action_id, actor="tester").status == "active"
    closed = bn_context.actions.close(
        action_id, outcome="found safe", result_message="Thanks!", actor="tester"
    )
    assert closed.status == "closed" and closed.closed_at is not None
    with session_scope(bn_context.sessions) as session:
        verbs = session.scalars(
            select(AuditEvent.verb).where(AuditEvent.entity_id == str(action_id)).order_by(AuditEvent.id)
        ).all()
    # Starting asked for the alert; closing asked for the result message to those it reached.
    assert verbs == ["create", "active", "broadcast-alert", "closed", "broadcast-result"]


def test_invalid_transitions_are_refused_by_service_and_model(bn_context: Context) -> None:
    action_id = _circle_action(bn_context)
    bn_context.actions.close(action_id, outcome="cancelled", result_message="", actor="tester")
    with pytest.raises(ActionError, match="from closed to active"):
        bn_context.actions.start(action_id, actor="tester")
    with session_scope(bn_context.sessions) as session:
        action = session.get(Action, action_id)
        assert action is not None
        with pytest.raises(InvalidTransition):
            action.status = "draft"


def test_database_refuses_a_closed_action_without_close_time(bn_context: Context) -> None:
    with session_scope(bn_context.sessions) as session:
        region_id = session.scalar(select(Region.id).where(Region.code == "MN"))
    with pytest.raises(IntegrityError), session_scope(bn_context.sessions) as session:
        session.add(
            Action(
                action_type="suspect",
                title="x",
                region_id=region_id,
                area_kind="national",
                status="closed",
                created_at=NOW,
            )
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"action_type": "parade"}, "unknown action type"),
        ({"region_code": "XX"}, "unknown region"),
        ({"team": ["c-zz-9"]}, "unknown centralist"),
        ({"team": ["c-mn-1", "c-mn-1"]}, "twice"),
        ({"area": AreaSpec(AreaKind.CIRCLE, centre=(2.0, 40.0), radius_m=100)}, "outside the Netherlands"),
        (
            {"area": AreaSpec(AreaKind.POLYGON, geojson='{"type": "Point", "coordinates": [5, 52]}')},
            "Polygon",
        ),
        ({"area": AreaSpec(AreaKind.POLYGON, geojson="{nope")}, "not JSON"),
        (
            {
                "area": AreaSpec(
                    AreaKind.POLYGON,
                    geojson='{"type":"Polygon","coordinates":[[[5,52],[5.1,52.1],[5.1,52],[5,52.1],[5,52]]]}',
                )
            },
            "not a valid polygon",
        ),
        ({"area": AreaSpec(AreaKind.POSTCODES, postcodes=("12345",))}, "not a Dutch postcode"),
        ({"area": AreaSpec(AreaKind.NATIONAL)}, "only an AMBER Alert"),
        ({"title": ""}, "title"),
    ],
)
def test_bad_actions_are_refused_and_nothing_is_written(
    bn_context: Context, kwargs: dict[str, object], message: str
) -> None:
    request: dict[str, object] = {
        "action_type": "missing_person",
        "title": "Vermiste man",
        "region_code": "MN",
        "area": AreaSpec(AreaKind.CIRCLE, centre=(5.12, 52.09), radius_m=1000),
        "team": ["c-mn-1"],
        "actor": "tester",
    }
    request.update(kwargs)
    with pytest.raises(ActionError, match=message):
        bn_context.actions.create(**request)  # type: ignore[arg-type]
    assert bn_context.actions.list_actions() == []
