"""The call card: announced to the phones a call rings (real Redis), its details and who may read
them (real database, the panel's own routes), and the desk as a centralist's landing page."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from burgernet import channel_vars as cv
from burgernet.db import session_scope
from burgernet.desk import AsyncDeskFeed, DeskCall
from burgernet.live import AsyncLiveState
from burgernet.models import Broadcast, Call, Delivery, Participant, Sighting
from composition.context import Context
from ivr.desk_signals import REASON_DIALPLAN_ONLY, DeskSignals
from tests.panel.conftest import PASSWORD, UTRECHT, World, audit_count, csrf_token

CALLER = "+31612345678"  # the world's participant, inside the active action's circle


def feed_of(context: Context) -> tuple[AsyncDeskFeed, AsyncLiveState]:
    live = AsyncLiveState.from_url(context.settings.redis.url, context.live.keys.prefix)
    return AsyncDeskFeed(live), live


def announce(context: Context, call: DeskCall, endpoints: tuple[str, ...]) -> None:
    async def run() -> None:
        feed, live = feed_of(context)
        try:
            await feed.route_decided(call, endpoints)
        finally:
            await live.close()

    asyncio.run(run())


def desk_call(
    unique_id: str, action_id: int | None, participant_id: int | None, number: str = CALLER
) -> DeskCall:
    return DeskCall(
        unique_id, action_id, "Vermist meisje", number, participant_id, "team of the action", "inbound"
    )


@pytest.fixture
def events(bn_context: Context) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    pubsub = bn_context.live.client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(bn_context.live.keys.events)
    pubsub.get_message(timeout=1)

    def read() -> list[dict[str, Any]]:
        seen = []
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.1)
            if message is not None:
                seen.append(json.loads(message["data"]))
                deadline = time.monotonic() + 0.3
        return seen

    yield read
    pubsub.close()


def test_a_call_is_announced_once_to_every_phone_it_rings_and_closed_on_all(
    bn_context: Context, world: World, events: Callable[[], list[dict[str, Any]]]
) -> None:
    call = desk_call("1700000200.1", world.active_id, world.participant_id)
    marked = [f"{cv.VAR_CALL_KIND}={cv.CALL_KIND_INBOUND}", f"{cv.VAR_ACTION_ID}={world.active_id}"]

    async def run() -> None:
        feed, live = feed_of(bn_context)
        signals = DeskSignals(feed)
        try:
            await feed.route_decided(call, ("c-mn-1",))
            for endpoint in ("c-mn-1", "c-mn-3"):  # the first step again, then the region pool
                await signals.on_event(
                    {
                        "Event": "DialBegin",
                        "Uniqueid": call.call,
                        "CallerIDNum": "0612345678",
                        "DestChannel": f"PJSIP/{endpoint}-0000002a",
                        "ChanVariable": marked,
                    }
                )
            await signals.on_event(
                {
                    "Event": "DialEnd",
                    "Uniqueid": call.call,
                    "DestChannel": "PJSIP/c-mn-3-0000002b",
                    "DialStatus": "ANSWER",
                    "ChanVariable": marked,
                }
            )
            await signals.on_event(
                {"Event": "Hangup", "Uniqueid": call.call, "ChanVariable": [*marked, "BN_OUTCOME=overflowed"]}
            )
            # Not ours (an alert call's own leg): ignored.
            await signals.on_event(
                {"Event": "Hangup", "Uniqueid": "x", "ChanVariable": ["BN_CALL_KIND=alert"]}
            )
        finally:
            await live.close()

    asyncio.run(run())
    seen = [(e["type"], e["for_endpoint"]) for e in events()]
    assert seen == [
        ("call_ringing", "c-mn-1"),
        ("call_ringing", "c-mn-3"),  # c-mn-1's DialBegin was announced already: no second event
        ("desk_answered", "c-mn-3"),
        ("desk_closed", "c-mn-1"),
        ("desk_closed", "c-mn-3"),
    ]


def test_a_phone_rung_without_a_routing_decision_still_gets_a_card(
    bn_context: Context, world: World, events: Callable[[], list[dict[str, Any]]]
) -> None:
    async def run() -> None:
        feed, live = feed_of(bn_context)
        try:
            await DeskSignals(feed).on_event(
                {
                    "Event": "DialBegin",
                    "Uniqueid": "1700000300.1",
                    "CallerIDNum": "0612345678",
                    "DestChannel": "PJSIP/c-mn-2-0000002c",
                    "ChanVariable": [f"{cv.VAR_CALL_KIND}={cv.CALL_KIND_INBOUND}", f"{cv.VAR_ACTION_ID}="],
                }
            )
        finally:
            await live.close()

    asyncio.run(run())
    (event,) = events()
    assert (event["type"], event["for_endpoint"], event["caller_number"]) == (
        "call_ringing",
        "c-mn-2",
        CALLER,
    )
    assert event["action_id"] is None and event["reason"] == REASON_DIALPLAN_ONLY


def _history(context: Context, world: World) -> int:
    """An SMS alert that reached the caller, an earlier call of theirs, a sighting; a second
    participant about 5.5 km from the action's centre (the circle is 3 km). Returns their id."""
    now = datetime.now(UTC)
    with session_scope(context.sessions) as session:
        broadcast = Broadcast(action_id=world.active_id, kind="alert", status="done", created_at=now)
        session.add(broadcast)
        session.flush()
        session.add(
            Delivery(
                broadcast_id=broadcast.id,
                participant_id=world.participant_id,
                channel="sms",
                status="delivered",
                updated_at=now - timedelta(minutes=9),
                finished_at=now - timedelta(minutes=10),
            )
        )
        session.add(
            Sighting(
                action_id=world.active_id,
                seen_at=now - timedelta(minutes=3),
                lat=UTRECHT[1] + 0.01,
                lon=UTRECHT[0],
                direction="N",
                description="rode jas bij het station",
                reliability="probable",
                created_by="centralist",
                created_at=now,
            )
        )
        far = Participant(
            phone_e164="+31687654321",
            postcode="3584CS",
            lat=52.1003,
            lon=5.2003,
            created_at=now,
        )
        session.add(far)
        session.flush()
        return far.id


def test_the_card_shows_what_the_centralist_needs_and_not_the_address(
    bn_context: Context, world: World, client_for: Callable[[str | None], FlaskClient]
) -> None:
    far = _history(bn_context, world)
    announce(bn_context, desk_call("1700000400.1", world.active_id, world.participant_id), ("c-mn-1",))
    announce(bn_context, desk_call("1700000400.2", world.active_id, far, "+31687654321"), ("c-mn-1",))
    client = client_for("centralist")

    near = client.get("/desk/calls/1700000400.1.json")
    assert near.status_code == 200, near.get_data(as_text=True)
    card = near.get_json()
    assert (card["caller_number"], card["known_participant"], card["postcode"]) == (CALLER, True, "3511AB")
    assert card["distance_km"] == 0.0  # inside the circle
    assert [(a["channel"], a["status"]) for a in card["alerted"]] == [("sms", "delivered")]
    assert datetime.fromisoformat(card["alerted"][0]["at"]).utcoffset() is not None  # ISO 8601 with offset
    assert len(card["earlier_calls"]) == 1  # the world's call from this number about the action
    assert [s["description"] for s in card["sightings"]] == ["rode jas bij het station"]
    assert card["reason"] == "team of the action" and card["rang_you"] is True
    assert card["area"]["properties"]["radius_m"] == 3000
    far_card = client.get("/desk/calls/1700000400.2.json").get_json()
    assert far_card["postcode"] == "3584CS" and 2.0 <= far_card["distance_km"] <= 3.0
    assert far_card["alerted"] == [] and far_card["earlier_calls"] == []
    # Their address and position never leave the server: the postcode and the distance only.
    text = client.get("/desk/calls/1700000400.2.json").get_data(as_text=True)
    assert "52.1003" not in text and "5.2003" not in text and "address" not in text
    assert audit_count(bn_context, verb="read", entity="call") == 3


def test_who_may_read_a_card(
    bn_context: Context, world: World, client_for: Callable[[str | None], FlaskClient]
) -> None:
    # A call about the draft action of region RO: c-mn-1's user has no need to know it ...
    announce(bn_context, desk_call("1700000500.1", world.draft_id, None), ("c-ro-1",))
    # ... unless the call rings their phone (the routing gave it to them).
    announce(bn_context, desk_call("1700000500.2", world.draft_id, None), ("c-mn-1",))
    expected = {None: 401, "viewer": 403, "centralist": 403, "operator": 200, "admin": 200}
    for role, status in expected.items():
        client = client_for(role)
        response = client.get("/desk/calls/1700000500.1.json", headers={"Accept": "application/json"})
        assert response.status_code == status, (role, response.get_data(as_text=True))
    assert client_for("centralist").get("/desk/calls/1700000500.2.json").status_code == 200
    assert client_for("viewer").get("/desk/calls/1700000500.2.json").status_code == 403
    missing = client_for("admin").get("/desk/calls/nope.json")
    assert missing.status_code == 404


def test_after_redis_forgot_the_call_the_card_comes_from_the_call_log(
    bn_context: Context, world: World, client_for: Callable[[str | None], FlaskClient]
) -> None:
    card = client_for("operator").get("/desk/calls/1700000000.1.json").get_json()
    assert (card["action_id"], card["caller_number"], card["reason"]) == (world.active_id, CALLER, "test")
    with session_scope(bn_context.sessions) as session:
        assert session.query(Call).filter(Call.unique_id == "1700000000.1").count() == 1


def test_a_centralist_lands_on_the_desk(app: Any, world: World) -> None:
    landing = {}
    for role in ("centralist", "operator"):
        client = app.test_client()
        response = client.post(
            "/login", data={"username": role, "password": PASSWORD, "csrf_token": csrf_token(client)}
        )
        landing[role] = (response.status_code, response.headers["Location"])
        page = client.get("/desk").get_data(as_text=True)
        if role == "centralist":
            assert "Uw toestel: c-mn-1." in page and 'data-endpoint="c-mn-1"' in page
        else:
            assert "niet gekoppeld aan een toestel van een centralist" in page
    assert landing == {"centralist": (302, "/desk"), "operator": (302, "/")}


def test_a_desk_that_reconnects_reads_the_calls_on_its_phone_again(
    bn_context: Context, world: World, client_for: Callable[[str | None], FlaskClient]
) -> None:
    call = desk_call("1700000600.1", world.active_id, world.participant_id)
    centralist, operator = client_for("centralist"), client_for("operator")

    def on_the_phone() -> list[tuple[str, str, str | None]]:
        calls = centralist.get("/desk/current.json").get_json()["calls"]
        return [(c["call"], c["state"], c["caller_number"]) for c in calls]

    announce(bn_context, call, ("c-mn-1",))
    assert on_the_phone() == [(call.call, "ringing", CALLER)]
    assert operator.get("/desk/current.json").get_json() == {"calls": []}  # not linked to a phone

    async def answer_then_hang_up(step: str) -> None:
        feed, live = feed_of(bn_context)
        try:
            if step == "answer":
                await feed.leg_ended(call.call, "c-mn-1", "ANSWER", world.active_id)
            else:
                await feed.call_ended(call.call, "connected", world.active_id)
        finally:
            await live.close()

    asyncio.run(answer_then_hang_up("answer"))
    assert on_the_phone() == [(call.call, "answered", CALLER)]
    asyncio.run(answer_then_hang_up("hang up"))
    assert on_the_phone() == []
