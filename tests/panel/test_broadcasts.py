"""Broadcasts in the panel and the API: progress from real delivery rows, updates, roles, CSRF."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis
from flask import Flask
from flask.testing import FlaskClient
from lxml import html
from sqlalchemy import func, select

from broadcasting import progress
from burgernet.db import session_scope
from burgernet.models import AuditEvent, Broadcast, Delivery, Participant
from composition.context import Context
from tests.panel.conftest import UTRECHT, World, audit_count, csrf_token

ROLES = [None, "viewer", "centralist", "operator", "admin"]
ENGLISH = {"Accept-Language": "en"}

# What the workers would have left: per channel, one delivery per status listed.
DELIVERIES = {
    "voice": ["answered", "answered", "no_answer", "queued"],
    "sms": ["delivered", "sent", "failed"],
    "email": ["sent"],
}
TOTAL = sum(len(statuses) for statuses in DELIVERIES.values())  # 8
HANDLED = TOTAL - 1  # all but the queued one are final


def _auth(world: World, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.tokens[role]}"}


def _is_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["status"] == status and body["message"]
    assert body["error_id"] == code, body
    uuid.UUID(body["request_id"])
    return dict(body)


def _broadcasts(context: Context, action_id: int) -> list[tuple[int, str, str, str]]:
    with session_scope(context.sessions) as session:
        rows = session.execute(
            select(Broadcast.id, Broadcast.kind, Broadcast.status, Broadcast.message)
            .where(Broadcast.action_id == action_id)
            .order_by(Broadcast.id)
        )
        return [(i, kind, status, message) for i, kind, status, message in rows]


def _broadcast_total(context: Context) -> int:
    with session_scope(context.sessions) as session:
        return int(session.scalar(select(func.count()).select_from(Broadcast)) or 0)


def _alert_id(context: Context, world: World) -> int:
    """Starting the active action (conftest) queued its alert broadcast."""
    [(broadcast_id, kind, status, _)] = _broadcasts(context, world.active_id)
    assert (kind, status) == ("alert", "pending")
    return broadcast_id


def _fan_out_by_hand(context: Context, broadcast_id: int) -> None:
    """What a worker's fan-out and sends leave behind: delivery rows, the running broadcast and
    the progress hash in Redis (counted by the workers' own Lua script)."""
    now = datetime.now(UTC)
    with session_scope(context.sessions) as session:
        people = []
        for number in range(max(len(statuses) for statuses in DELIVERIES.values())):
            person = Participant(
                phone_e164=f"+316200000{number:02d}",
                postcode="3511AB",
                lat=UTRECHT[1],
                lon=UTRECHT[0],
                email=f"p{number}@example.org",
                language="nl",
                channel_voice=True,
                channel_sms=True,
                channel_email=True,
                inquiry_opt_in=False,
                opted_out=False,
                created_at=now,
            )
            session.add(person)
            people.append(person)
        session.flush()
        for channel, statuses in DELIVERIES.items():
            for person, status in zip(people, statuses, strict=False):
                session.add(
                    Delivery(
                        broadcast_id=broadcast_id,
                        participant_id=person.id,
                        channel=channel,
                        status=status,
                        attempts=0 if status == "queued" else 1,
                        updated_at=now,
                        finished_at=None if status == "queued" else now,
                    )
                )
        broadcast = session.get(Broadcast, broadcast_id)
        assert broadcast is not None
        broadcast.status, broadcast.total, broadcast.started_at = "running", TOTAL, now
    prefix = context.settings.redis.key_prefix
    progress.start(context.live.client, prefix, broadcast_id, TOTAL)

    async def count_handled() -> None:
        client = aioredis.Redis.from_url(context.settings.redis.url)
        counter = progress.AsyncProgress(client, prefix)
        for _ in range(HANDLED):
            await counter.handled(broadcast_id)
        await client.aclose()

    asyncio.run(count_handled())


def _cells(page: str, broadcast_id: int) -> dict[str, dict[str, str]]:
    """channel → {status column: number} from the broadcast's table on the page."""
    tree = html.fromstring(page)
    table: dict[str, dict[str, str]] = {}
    for row in tree.xpath(f'//*[@data-broadcast-id="{broadcast_id}"]//tr[@data-channel]'):
        table[row.get("data-channel")] = {
            cell.get("data-status"): cell.text_content().strip() for cell in row.xpath("td[@data-status]")
        }
    return table


def _article(page: str, broadcast_id: int) -> Any:
    [article] = html.fromstring(page).xpath(f'//*[@data-broadcast-id="{broadcast_id}"]')
    return article


# --- every route × every role ----------------------------------------------------------------------
@pytest.mark.parametrize("role_index", range(len(ROLES)), ids=[str(r) for r in ROLES])
def test_broadcast_pages_for_every_role(
    role_index: int, world: World, client_for: Callable[[str | None], FlaskClient]
) -> None:
    role = ROLES[role_index]
    client = client_for(role)
    expected = {
        f"/actions/{world.active_id}": 200,
        f"/actions/{world.active_id}/broadcasts": 200,
        f"/actions/{world.draft_id}/broadcasts": 200,
        "/actions/999999/broadcasts": 404,
        "/dashboard/broadcasts.json": 200,
    }
    got = {path: client.get(path).status_code for path in expected}
    if role is None:
        assert set(got.values()) == {302}
    else:
        assert got == expected


@pytest.mark.parametrize("role", ROLES)
def test_update_form_post_for_every_role(
    role: str | None, world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    client = client_for(role)
    token = csrf_token(client, "/login" if role is None else "/")
    before = _broadcasts(bn_context, world.active_id)
    response = client.post(
        f"/actions/{world.active_id}/updates",
        data={"message": "Het meisje draagt een rode jas.", "csrf_token": token},
    )
    after = _broadcasts(bn_context, world.active_id)
    if role in ("centralist", "operator", "admin"):
        assert response.status_code == 302
        assert response.headers["Location"].endswith(f"/actions/{world.active_id}#broadcasts-title")
        assert [(kind, status, message) for _, kind, status, message in after[len(before) :]] == [
            ("update", "pending", "Het meisje draagt een rode jas.")
        ]
    else:
        assert response.status_code == (302 if role is None else 403)
        if role is None:
            assert "/login" in response.headers["Location"]
        assert after == before


@pytest.mark.parametrize("role", ["viewer", "centralist", "operator", "admin"])
def test_api_routes_for_every_role(role: str, world: World, bn_context: Context, app: Flask) -> None:
    client = app.test_client()
    alert_id = _alert_id(bn_context, world)
    listed = client.get(f"/api/v1/actions/{world.active_id}/broadcasts", headers=_auth(world, role))
    assert listed.status_code == 200
    assert [b["broadcast_id"] for b in listed.get_json()["broadcasts"]] == [alert_id]
    assert client.get(f"/api/v1/broadcasts/{alert_id}", headers=_auth(world, role)).status_code == 200
    posted = client.post(
        f"/api/v1/actions/{world.active_id}/updates", headers=_auth(world, role), json={"message": "Update"}
    )
    if role == "viewer":
        _is_error(posted, 403, "auth.forbidden")
        assert len(_broadcasts(bn_context, world.active_id)) == 1
    else:
        assert posted.status_code == 201
        assert len(_broadcasts(bn_context, world.active_id)) == 2


def test_api_routes_refuse_anonymous_and_bad_tokens(world: World, bn_context: Context, app: Flask) -> None:
    client = app.test_client()
    alert_id = _alert_id(bn_context, world)
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        unauthenticated = "auth.unauthenticated"
        _is_error(
            client.get(f"/api/v1/actions/{world.active_id}/broadcasts", headers=headers), 401, unauthenticated
        )
        _is_error(client.get(f"/api/v1/broadcasts/{alert_id}", headers=headers), 401, unauthenticated)
        _is_error(
            client.post(f"/api/v1/actions/{world.active_id}/updates", headers=headers, json={"message": "x"}),
            401,
            unauthenticated,
        )
    assert _broadcast_total(bn_context) == 1


# --- the detail page -------------------------------------------------------------------------------------
def test_detail_page_shows_counts_from_delivery_rows(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    alert_id = _alert_id(bn_context, world)
    _fan_out_by_hand(bn_context, alert_id)
    client = client_for("viewer")
    page = client.get(f"/actions/{world.active_id}", headers=ENGLISH).get_data(as_text=True)
    assert _cells(page, alert_id) == {
        "voice": {
            "answered": "2",
            "no_answer": "1",
            "queued": "1",
            "sent": "0",
            "delivered": "0",
            "failed": "0",
        },
        "sms": {
            "answered": "0",
            "no_answer": "0",
            "queued": "0",
            "sent": "1",
            "delivered": "1",
            "failed": "1",
        },
        "email": {
            "answered": "0",
            "no_answer": "0",
            "queued": "0",
            "sent": "1",
            "delivered": "0",
            "failed": "0",
        },
    }
    article = _article(page, alert_id)
    # Columns in the order a delivery lives through them; channels voice, sms, email.
    headers = [th.text_content().strip() for th in article.xpath(".//thead/tr/th")]
    assert headers == ["Channel", "queued", "sent", "delivered", "answered", "no answer", "failed", "Total"]
    assert [th.text_content().strip() for th in article.xpath(".//tbody/tr/th")] == ["Voice", "SMS", "E-mail"]
    [bar] = article.xpath(".//progress")
    assert (bar.get("value"), bar.get("max")) == (str(HANDLED), str(TOTAL))
    # The bar is labelled and described by its figures (screen readers get both).
    [label] = article.xpath(f'.//label[@for="{bar.get("id")}"]')
    assert label.text_content().strip() == "Handled"
    [text] = article.xpath(f'.//*[@id="{bar.get("aria-describedby")}"]')
    assert text.text_content().strip() == f"{HANDLED} of {TOTAL} handled (87 %)"
    milestones = {dd.get("data-milestone"): dd.text_content().strip() for dd in article.xpath(".//dd")}
    # 7 of 8 counted in Redis: 50 % reached (a moment ago), 90 % and 100 % not yet.
    assert milestones["50%"].endswith(" s") and float(milestones["50%"][:-2]) < 60
    assert (milestones["90%"], milestones["100%"]) == ("–", "–")
    assert "Alert #" in article.xpath(".//h3")[0].text_content()
    # The fragment the page refreshes itself with carries the same figures.
    fragment = client.get(f"/actions/{world.active_id}/broadcasts", headers=ENGLISH).get_data(as_text=True)
    assert _cells(fragment, alert_id) == _cells(page, alert_id)
    assert "<html" not in fragment


def test_detail_page_speaks_dutch(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    alert_id = _alert_id(bn_context, world)
    _fan_out_by_hand(bn_context, alert_id)
    page = client_for("centralist").get(f"/actions/{world.active_id}", headers={"Accept-Language": "nl"})
    text = page.get_data(as_text=True)
    assert "Verzendingen" in text and "Een bericht versturen" in text
    article = _article(text, alert_id)
    assert "Alarmering #" in article.xpath(".//h3")[0].text_content()
    assert f"{HANDLED} van {TOTAL} afgehandeld (87 %)" in article.text_content()
    assert "geen gehoor" in article.text_content()


def test_pending_broadcast_and_update_form_visibility(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    alert_id = _alert_id(bn_context, world)
    page = client_for("centralist").get(f"/actions/{world.active_id}", headers=ENGLISH).get_data(as_text=True)
    article = _article(page, alert_id)
    assert "Waiting for a broadcast worker" in article.text_content()
    assert article.xpath(".//progress")[0].get("value") == "0"
    tree = html.fromstring(page)
    # The page listens to the live feed while something can still move (it holds a server thread).
    assert tree.xpath('//*[@id="broadcasts"]')[0].get("data-live") == "yes"
    [form] = tree.xpath('//form[contains(@action, "/updates")]')
    assert form.xpath('.//input[@name="csrf_token"]') and form.xpath('.//textarea[@name="message"]')
    # Viewers read the progress but get no form; a draft has neither broadcasts nor form.
    viewer_page = client_for("viewer").get(f"/actions/{world.active_id}").get_data(as_text=True)
    assert _article(viewer_page, alert_id) is not None
    assert not html.fromstring(viewer_page).xpath('//form[contains(@action, "/updates")]')
    draft_page = client_for("admin").get(f"/actions/{world.draft_id}", headers=ENGLISH).get_data(as_text=True)
    assert "No broadcasts yet" in draft_page
    assert html.fromstring(draft_page).xpath('//*[@id="broadcasts"]')[0].get("data-live") == "no"
    assert not html.fromstring(draft_page).xpath('//form[contains(@action, "/updates")]')


# --- sending an update -----------------------------------------------------------------------------------
def test_update_form_creates_an_update_broadcast_and_an_audit_event(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    client = client_for("operator")
    token = csrf_token(client, "/")
    response = client.post(
        f"/actions/{world.active_id}/updates",
        data={"message": "  Gezien bij het station.  ", "csrf_token": token},
        headers=ENGLISH,
        follow_redirects=True,
    )
    assert response.status_code == 200
    [_, (update_id, kind, status, message)] = _broadcasts(bn_context, world.active_id)
    assert (kind, status, message) == ("update", "pending", "Gezien bij het station.")
    page = response.get_data(as_text=True)
    assert f"Update {update_id} queued" in page
    assert "Update #" in _article(page, update_id).xpath(".//h3")[0].text_content()
    with session_scope(bn_context.sessions) as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.verb == "broadcast-update")).one()
        assert (event.actor, event.entity, event.entity_id, event.source) == (
            "operator",
            "action",
            str(world.active_id),
            "web 127.0.0.1",
        )
        assert json.loads(event.detail or "{}") == {"broadcast": update_id}


def test_closed_action_update_is_refused_clearly_and_creates_nothing(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    bn_context.actions.close(
        world.active_id, outcome="gevonden", result_message="Dank", actor="t", source="t"
    )
    before = _broadcasts(bn_context, world.active_id)
    client = client_for("centralist")
    token = csrf_token(client, "/")
    audits = audit_count(bn_context)  # after the login, which is audited too
    for action_id in (world.active_id, world.draft_id):
        response = client.post(
            f"/actions/{action_id}/updates",
            data={"message": "Nog een bericht", "csrf_token": token},
            headers=ENGLISH,
        )
        assert response.status_code == 409
        [error] = html.fromstring(response.get_data(as_text=True)).xpath(
            '//*[contains(@class, "flash error")]'
        )
        state = "closed" if action_id == world.active_id else "draft"
        assert error.text_content() == f"Only an active action can send updates; this action is {state}."
    assert _broadcasts(bn_context, world.active_id) == before
    assert _broadcasts(bn_context, world.draft_id) == []
    assert audit_count(bn_context) == audits
    assert audit_count(bn_context, verb="broadcast-update") == 0


@pytest.mark.parametrize(
    ("message", "error"),
    [("", "Write the update first."), ("   ", "Write the update first."), ("x" * 2001, "longer than 2000")],
)
def test_empty_or_long_update_is_refused_and_keeps_the_text(
    message: str,
    error: str,
    world: World,
    bn_context: Context,
    client_for: Callable[[str | None], FlaskClient],
) -> None:
    client = client_for("admin")
    token = csrf_token(client, "/")
    response = client.post(
        f"/actions/{world.active_id}/updates", data={"message": message, "csrf_token": token}, headers=ENGLISH
    )
    assert response.status_code == 400
    tree = html.fromstring(response.get_data(as_text=True))
    assert error in tree.xpath('//*[contains(@class, "flash error")]')[0].text_content()
    # The text typed is still in the form, so nothing has to be typed again.
    assert tree.xpath('//textarea[@name="message"]')[0].text_content().strip() == message.strip()
    assert len(_broadcasts(bn_context, world.active_id)) == 1
    assert audit_count(bn_context, verb="broadcast-update") == 0


def test_forged_csrf_is_refused(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    client = client_for("admin")
    path = f"/actions/{world.active_id}/updates"
    for data in ({"message": "vals"}, {"message": "vals", "csrf_token": "forged"}):
        assert client.post(path, data=data).status_code == 400
    # A token from another session is no good either.
    other = client_for("operator")
    assert (
        client.post(path, data={"message": "vals", "csrf_token": csrf_token(other, "/")}).status_code == 400
    )
    assert len(_broadcasts(bn_context, world.active_id)) == 1
    assert audit_count(bn_context, verb="broadcast-update") == 0


# --- the dashboard ----------------------------------------------------------------------------------------
def test_dashboard_lists_broadcasts_under_way_of_active_actions(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    alert_id = _alert_id(bn_context, world)
    _fan_out_by_hand(bn_context, alert_id)
    client = client_for("viewer")
    [listed] = client.get("/dashboard/broadcasts.json").get_json()["broadcasts"]
    assert (listed["broadcast_id"], listed["action_id"], listed["action_title"]) == (
        alert_id,
        world.active_id,
        "Vermist meisje",
    )
    assert (listed["status"], listed["total"], listed["handled"]) == ("running", TOTAL, HANDLED)
    page = html.fromstring(client.get("/", headers=ENGLISH).get_data(as_text=True))
    [holder] = page.xpath('//*[@id="broadcasts"]')
    assert holder.get("data-source") == "/dashboard/broadcasts.json"
    labels = json.loads(holder.get("data-labels"))
    assert labels["progress"] == "{handled} of {total} handled ({percent} %)" and labels["alert"] == "alert"
    # Closing the action cancels the alert: it is no longer under way.
    bn_context.actions.close(world.active_id, outcome="gevonden", result_message="", actor="t", source="t")
    assert client.get("/dashboard/broadcasts.json").get_json() == {"broadcasts": []}


def test_broadcast_events_reach_the_live_feed(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    response = client_for("viewer").get("/live/events", buffered=False)
    chunks = response.iter_encoded()
    assert b"subscribed" in next(chunks)
    event = {"type": "broadcast", "broadcast_id": 7, "action_id": world.active_id, "total": 10, "handled": 5}
    bn_context.live.publish(event)
    for chunk in chunks:
        text = chunk.decode() if isinstance(chunk, bytes) else chunk
        if text.startswith("event:"):
            break
    response.close()
    assert text.startswith("event: broadcast\n")
    assert json.loads(text.split("data: ", 1)[1]) == event


# --- the API ------------------------------------------------------------------------------------------------
def test_api_broadcast_shapes(world: World, bn_context: Context, app: Flask) -> None:
    client = app.test_client()
    alert_id = _alert_id(bn_context, world)
    _fan_out_by_hand(bn_context, alert_id)
    body = client.get(f"/api/v1/broadcasts/{alert_id}", headers=_auth(world, "viewer")).get_json()
    assert {k: body[k] for k in ("broadcast_id", "action_id", "kind", "status", "total", "handled")} == {
        "broadcast_id": alert_id,
        "action_id": world.active_id,
        "kind": "alert",
        "status": "running",
        "total": TOTAL,
        "handled": HANDLED,
    }
    assert body["by_channel"]["voice"] == {"answered": 2, "no_answer": 1, "queued": 1}
    assert body["by_status"]["sent"] == 2 and set(body["seconds_to"]) == {"50%"}
    listed = client.get(f"/api/v1/actions/{world.active_id}/broadcasts", headers=_auth(world, "viewer"))
    assert listed.get_json() == {"action_id": world.active_id, "broadcasts": [body]}
    assert client.get(
        f"/api/v1/actions/{world.draft_id}/broadcasts", headers=_auth(world, "viewer")
    ).get_json() == {
        "action_id": world.draft_id,
        "broadcasts": [],
    }
    missing = client.get("/api/v1/broadcasts/999999", headers=_auth(world, "viewer"))
    assert "no broadcast 999999" in _is_error(missing, 404, "broadcast.not_found")["message"]
    _is_error(
        client.get("/api/v1/actions/999999/broadcasts", headers=_auth(world, "viewer")),
        404,
        "action.not_found",
    )


def test_api_update_created_refused_and_invalid(world: World, bn_context: Context, app: Flask) -> None:
    client = app.test_client()
    auth = _auth(world, "centralist")
    path = f"/api/v1/actions/{world.active_id}/updates"
    created = client.post(path, headers=auth, json={"message": "Het meisje is in Zeist gezien."})
    assert created.status_code == 201
    body = created.get_json()
    assert (body["kind"], body["status"], body["action_id"]) == ("update", "pending", world.active_id)
    assert created.headers["Location"] == f"/api/v1/broadcasts/{body['broadcast_id']}"
    assert (
        client.get(created.headers["Location"], headers=auth).get_json()["broadcast_id"]
        == body["broadcast_id"]
    )
    assert audit_count(bn_context, verb="broadcast-update", actor="centralist") == 1
    count = _broadcast_total(bn_context)
    for bad in ({}, {"message": ""}, {"message": "  "}, {"message": 42}, {"message": "x" * 2001}):
        _is_error(client.post(path, headers=auth, json=bad), 400, "request.invalid")
    _is_error(client.post(path, headers=auth, data="not json"), 400, "request.invalid")
    _is_error(
        client.post("/api/v1/actions/999999/updates", headers=auth, json={"message": "x"}),
        404,
        "action.not_found",
    )
    draft = _is_error(
        client.post(f"/api/v1/actions/{world.draft_id}/updates", headers=auth, json={"message": "x"}),
        409,
        "action.invalid_state",
    )
    assert "draft" in draft["message"]
    bn_context.actions.close(world.active_id, outcome="gevonden", result_message="", actor="t", source="t")
    count = _broadcast_total(bn_context)  # closing queued the result message
    closed = _is_error(
        client.post(path, headers=auth, json={"message": "Nog iets"}), 409, "action.invalid_state"
    )
    assert "closed" in closed["message"]
    assert _broadcast_total(bn_context) == count
    assert audit_count(bn_context, verb="broadcast-update") == 1


def test_openapi_documents_the_broadcast_routes(app: Flask) -> None:
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    paths = document["paths"]
    assert set(paths["/actions/{action_id}/broadcasts"]) == {"get"}
    assert set(paths["/broadcasts/{broadcast_id}"]) == {"get"}
    update = paths["/actions/{action_id}/updates"]["post"]
    assert {"201", "400", "401", "403", "404", "409"} <= set(update["responses"])
    assert update["requestBody"]["content"]["application/json"]["schema"]["required"] == ["message"]

    # Every $ref points at a schema the document defines.
    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [node["$ref"]] if "$ref" in node else [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for value in node for r in refs(value)]
        return []

    schemas = document["components"]["schemas"]
    for ref in refs(document):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
    assert set(schemas["Broadcast"]["properties"]) >= {"broadcast_id", "by_channel", "seconds_to", "handled"}
