"""Settings pages: regions, centralists (and the Asterisk reload they trigger), users, templates.

Every route for every role (anonymous included); bad input is refused with a clear message and
changes nothing; every change leaves an audit row with the actor and the web source.
"""

from __future__ import annotations

import asyncio
import html as html_module
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from sqlalchemy import func, select

from asterisk_conf.plan import plan_from_database
from asterisk_conf.reload import EVENT_CONFIG_CHANGED, EVENT_RELOADED, ConfigReloader, reload_channel
from asterisk_conf.render import RenderPaths, render
from asterisk_conf.sandbox import InstanceLayout
from burgernet.actions import ActionError, AreaSpec
from burgernet.centralists import sip_digest
from burgernet.db import session_scope
from burgernet.domain import AreaKind
from burgernet.models import AuditEvent, Centralist, MessageTemplate, Region, User
from composition.context import Context
from tests.panel.conftest import PASSWORD, World, audit_count, csrf_token, login

ROLES = (None, "admin", "operator", "centralist", "viewer")
SQUARE = {
    "type": "Polygon",
    "coordinates": [[[5.0, 52.0], [5.2, 52.0], [5.2, 52.2], [5.0, 52.2], [5.0, 52.0]]],
}
PATHS = RenderPaths(
    InstanceLayout(Path("/burgernet-instances/unit")),
    Path("/usr/lib/x86_64-linux-gnu/asterisk/modules"),
    Path("/srv/burgernet/sounds"),
    Path("/srv/burgernet/recordings/tips"),
)


def _ids(context: Context) -> tuple[int, int, int]:
    with session_scope(context.sessions) as session:
        region_id = session.scalar(select(Region.id).where(Region.code == "MN"))
        centralist_id = session.scalar(select(Centralist.id).where(Centralist.sip_endpoint == "c-mn-3"))
        viewer_id = session.scalar(select(User.id).where(User.username == "viewer"))
    assert region_id and centralist_id and viewer_id
    return region_id, centralist_id, viewer_id


def _audits(context: Context) -> int:
    """Audit rows of changes (logins, audited themselves, do not count here)."""
    with session_scope(context.sessions) as session:
        query = (
            select(func.count()).select_from(AuditEvent).where(AuditEvent.verb.not_in(["login", "logout"]))
        )
        return int(session.scalar(query) or 0)


def _post(client: FlaskClient, path: str, data: dict[str, str] | None = None) -> Any:
    token = csrf_token(client, "/settings/regions")
    return client.post(path, data={"csrf_token": token, **(data or {})})


def _errors(response: Any) -> str:
    html = response.get_data(as_text=True)
    match = re.search(r'<div class="errors" role="alert">(.*?)</div>', html, re.S)
    return html_module.unescape(match.group(1)) if match else ""


# --- who may do what ----------------------------------------------------------------------------------
READ_ALL = {"admin": 200, "operator": 200, "centralist": 200, "viewer": 200}
ADMIN = {"admin": 200, "operator": 403, "centralist": 403, "viewer": 403}
COORDINATORS = {"admin": 200, "operator": 200, "centralist": 403, "viewer": 403}


def test_every_page_for_every_role(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    region_id, centralist_id, viewer_id = _ids(bn_context)
    pages = {
        "/settings/regions": READ_ALL,
        "/settings/regions/new": ADMIN,
        f"/settings/regions/{region_id}": READ_ALL,
        "/settings/centralists": READ_ALL,
        "/settings/centralists?region=MN": READ_ALL,
        "/settings/centralists/new": ADMIN,
        f"/settings/centralists/{centralist_id}": READ_ALL,
        "/settings/users": ADMIN,
        f"/settings/users/{viewer_id}": ADMIN,
        "/settings/templates": COORDINATORS,
        "/settings/templates/missing_child/alert/sms/nl": COORDINATORS,
    }
    for role in ROLES:
        client = client_for(role)
        assert client.get("/settings").status_code == 302
        for path, expected in pages.items():
            response = client.get(path)
            if role is None:
                assert response.status_code == 302 and "/login" in response.headers["Location"], path
            else:
                assert response.status_code == expected[role], (role, path)
    admin = client_for("admin")
    assert admin.get("/settings/regions/99999").status_code == 404
    assert admin.get("/settings/centralists/99999").status_code == 404
    assert admin.get("/settings/users/99999").status_code == 404
    assert admin.get("/settings/templates/missing_child/alert/fax/nl").status_code == 404
    nav = admin.get("/").get_data(as_text=True)
    assert "/settings" in nav


def test_changes_refused_for_other_roles_change_nothing(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    region_id, centralist_id, viewer_id = _ids(bn_context)
    posts: dict[str, tuple[dict[str, str], frozenset[str]]] = {
        "/settings/regions/new": ({"code": "ZZ", "name": "Zuidzee"}, frozenset({"admin"})),
        f"/settings/regions/{region_id}": ({"code": "MN", "name": "Anders"}, frozenset({"admin"})),
        "/settings/centralists/new": (
            {"name": "X", "endpoint": "c-x-1", "region": "MN"},
            frozenset({"admin"}),
        ),
        f"/settings/centralists/{centralist_id}": (
            {"name": "X", "endpoint": "c-mn-3", "region": "MN"},
            frozenset({"admin"}),
        ),
        f"/settings/centralists/{centralist_id}/duty": ({"on_duty": "0"}, frozenset({"admin", "operator"})),
        f"/settings/centralists/{centralist_id}/active": ({"active": "0"}, frozenset({"admin"})),
        "/settings/users": ({"username": "x", "role": "viewer", "password": PASSWORD}, frozenset({"admin"})),
        f"/settings/users/{viewer_id}": ({"role": "operator"}, frozenset({"admin"})),
        f"/settings/users/{viewer_id}/active": ({"active": "0"}, frozenset({"admin"})),
        f"/settings/users/{viewer_id}/password": ({}, frozenset({"admin"})),
        f"/settings/users/{viewer_id}/token": ({}, frozenset({"admin"})),
        f"/settings/users/{viewer_id}/token/revoke": ({}, frozenset({"admin"})),
        "/settings/templates/vehicle/alert/sms/nl": (
            {"body": "Auto {description}", "do": "save"},
            frozenset({"admin", "operator"}),
        ),
    }
    clients = {role: client_for(role) for role in ("operator", "centralist", "viewer", None)}
    admin = client_for("admin")
    before = _audits(bn_context)
    for role, client in clients.items():
        token = csrf_token(client, "/login")
        for path, (data, allowed) in posts.items():
            if role in allowed:
                continue
            response = client.post(path, data={"csrf_token": token, **data})
            expected = 302 if role is None else 403
            assert response.status_code == expected, (role, path)
    assert _audits(bn_context) == before
    # Without a CSRF token even an admin changes nothing.
    assert admin.post(f"/settings/users/{viewer_id}/active", data={"active": "0"}).status_code == 400
    assert admin.post("/settings/regions/new", data={"code": "ZZ", "name": "Zuidzee"}).status_code == 400
    assert _audits(bn_context) == before


# --- regions ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"code": "z z", "name": "Zuidzee"}, "code: 1 to 8 capital letters or digits"),
        ({"code": "ZZ", "name": ""}, "name: 1 to 80 characters"),
        ({"code": "MN", "name": "Nog een"}, "code: another region already has 'MN'"),
        ({"code": "ZZ", "name": "Midden-Nederland"}, "name: another region already has"),
        ({"code": "ZZ", "name": "Zuidzee", "boundary": "{not json"}, "boundary GeoJSON: not JSON"),
        (
            {
                "code": "ZZ",
                "name": "Zuidzee",
                "boundary": json.dumps({"type": "Point", "coordinates": [5, 52]}),
            },
            "must be Polygon or MultiPolygon",
        ),
        (
            {
                "code": "ZZ",
                "name": "Zuidzee",
                "boundary": json.dumps(
                    {"type": "Polygon", "coordinates": [[[52.0, 5.0], [52.2, 5.0], [52.2, 5.2], [52.0, 5.0]]]}
                ),
            },
            "outside the Netherlands",
        ),
    ],
)
def test_bad_regions_are_refused_clearly(
    world: World,
    bn_context: Context,
    client_for: Callable[[str | None], FlaskClient],
    data: dict[str, str],
    message: str,
) -> None:
    admin = client_for("admin")
    before = (_audits(bn_context), len(admin.get("/settings/regions").get_data(as_text=True)))
    response = _post(admin, "/settings/regions/new", data)
    assert response.status_code == 400
    assert message in _errors(response)
    assert (_audits(bn_context), len(admin.get("/settings/regions").get_data(as_text=True))) == before


def test_create_and_edit_a_region(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    admin = client_for("admin")
    version = bn_context.live.client.get(bn_context.live.keys.actions_version)
    response = _post(
        admin, "/settings/regions/new", {"code": "zz", "name": " Zuid  zee ", "boundary": json.dumps(SQUARE)}
    )
    assert response.status_code == 302
    with session_scope(bn_context.sessions) as session:
        region = session.scalar(select(Region).where(Region.code == "ZZ"))
        assert region is not None and region.name == "Zuid zee" and region.boundary_geojson
        region_id = region.id
    assert audit_count(bn_context, entity="region", verb="create", actor="admin") == 1
    assert bn_context.live.client.get(bn_context.live.keys.actions_version) != version
    # A viewer reads it, without a form.
    viewer_page = client_for("viewer").get(f"/settings/regions/{region_id}").get_data(as_text=True)
    assert "Zuid zee" in viewer_page and "<textarea" not in viewer_page
    response = _post(
        admin, f"/settings/regions/{region_id}", {"code": "ZY", "name": "Zuidzee", "boundary": ""}
    )
    assert response.status_code == 302
    with session_scope(bn_context.sessions) as session:
        region = session.get(Region, region_id)
        assert region is not None and (region.code, region.name, region.boundary_geojson) == (
            "ZY",
            "Zuidzee",
            None,
        )
        detail = session.scalar(
            select(AuditEvent.detail).where(AuditEvent.verb == "edit", AuditEvent.entity == "region")
        )
        source = session.scalar(select(AuditEvent.source).where(AuditEvent.entity == "region").limit(1))
    assert detail is not None and '"ZZ", "ZY"' in detail and "removed" in detail
    assert source is not None and source.startswith("web ")


def test_the_default_region_keeps_its_code(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    region_id, _, _ = _ids(bn_context)
    before = _audits(bn_context)
    response = _post(
        client_for("admin"), f"/settings/regions/{region_id}", {"code": "MX", "name": "Midden-Nederland"}
    )
    assert response.status_code == 400 and "default or fallback region" in _errors(response)
    assert _audits(bn_context) == before


# --- centralists and the Asterisk configuration -----------------------------------------------------------
def _rendered_pjsip(context: Context, tmp_path: Path) -> str:
    with session_scope(context.sessions) as session:
        plan = plan_from_database(session, context.settings)
    render(tmp_path / "etc", context.settings, plan, PATHS)
    return (tmp_path / "etc" / "pjsip.conf").read_text()


def _listen(context: Context) -> Any:
    pubsub = context.live.client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(reload_channel(context.live.keys.prefix))
    return pubsub


def _requests(pubsub: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.2)
        if message is None and found:
            break
        if message is not None:
            found.append(json.loads(message["data"]))
    return found


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "Piet", "endpoint": "Piet Pieters", "region": "MN"}, "use 2-40 of a-z, 0-9 and '-'"),
        ({"name": "Piet", "endpoint": "c-mn-1", "region": "MN"}, "endpoint 'c-mn-1' already exists"),
        ({"name": "Piet", "endpoint": "c-mn-9", "region": "QQ"}, "Not a valid choice"),
        ({"name": "", "endpoint": "c-mn-9", "region": "MN"}, "a name of 1 to 120 characters is required"),
        (
            {"name": 'Piet" <x>\n[evil]', "endpoint": "c-mn-9", "region": "MN"},
            "no quotes, ';' or line breaks",
        ),
        ({"name": "Piet", "endpoint": "transport-udp", "region": "MN"}, "a name Burgernet uses itself"),
        (
            {"name": "Piet", "endpoint": "c-mn-9", "region": "MN", "contact": "10.0.0.1"},
            "a contact is a SIP URI",
        ),
    ],
)
def test_bad_centralists_are_refused_clearly(
    world: World,
    bn_context: Context,
    client_for: Callable[[str | None], FlaskClient],
    data: dict[str, str],
    message: str,
) -> None:
    before = _audits(bn_context)
    response = _post(client_for("admin"), "/settings/centralists/new", data)
    assert response.status_code == 400
    assert message in _errors(response)
    assert _audits(bn_context) == before
    with session_scope(bn_context.sessions) as session:
        assert session.scalar(select(Centralist.id).where(Centralist.sip_endpoint == "c-mn-9")) is None


def test_added_centralist_reaches_the_asterisk_configuration(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient], tmp_path: Path
) -> None:
    admin = client_for("admin")
    pubsub = _listen(bn_context)
    response = _post(
        admin,
        "/settings/centralists/new",
        {"name": "Piet Pieters", "endpoint": "c-mn-9", "region": "MN"},
    )
    # The new SIP password is shown once, on this page, never cached and never stored.
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    password = re.search(r'id="sip-password"[^>]*value="([^"]+)"', response.get_data(as_text=True))
    assert password is not None
    requests = _requests(pubsub)
    assert [r["type"] for r in requests] == [EVENT_CONFIG_CHANGED]
    assert requests[0]["reason"] == "centralist c-mn-9 added" and requests[0]["actor"] == "admin"
    # The page says Asterisk loads it (somebody listened: this test).
    assert "Asterisk" in response.get_data(as_text=True)
    pjsip = _rendered_pjsip(bn_context, tmp_path)
    digest = sip_digest("c-mn-9", bn_context.settings.asterisk.sip_realm, html_module.unescape(password[1]))
    assert (
        "[c-mn-9]" in pjsip
        and f"password_digest = md5:{digest}" in pjsip
        and '"Piet Pieters" <c-mn-9>' in pjsip
    )
    assert password[1] not in pjsip
    assert audit_count(bn_context, entity="centralist", verb="create", actor="admin") == 1
    pubsub.close()


def test_a_new_sip_password_is_shown_once_and_replaces_the_old_one(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient], tmp_path: Path
) -> None:
    _, centralist_id, _ = _ids(bn_context)
    path = f"/settings/centralists/{centralist_id}/password"
    assert _post(client_for("operator"), path).status_code == 403  # admins only
    shown = []
    for _ in range(2):
        response = _post(client_for("admin"), path)
        assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
        found = re.search(r'id="sip-password"[^>]*value="([^"]+)"', response.get_data(as_text=True))
        assert found is not None
        shown.append(html_module.unescape(found[1]))
    assert shown[0] != shown[1]
    pjsip = _rendered_pjsip(bn_context, tmp_path)
    realm = bn_context.settings.asterisk.sip_realm
    assert f"md5:{sip_digest('c-mn-3', realm, shown[1])}" in pjsip
    assert f"md5:{sip_digest('c-mn-3', realm, shown[0])}" not in pjsip  # the former one is gone
    # Shown once: the centralist's page does not show it again, and the audit has no secret.
    assert shown[1] not in client_for("admin").get(f"/settings/centralists/{centralist_id}").get_data(
        as_text=True
    )
    with session_scope(bn_context.sessions) as session:
        details = session.scalars(select(AuditEvent.detail).where(AuditEvent.verb == "new-password")).all()
    assert len(details) == 2 and not any(secret in str(details) for secret in shown)


def test_edit_rename_and_deactivate_a_centralist(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient], tmp_path: Path
) -> None:
    _, centralist_id, _ = _ids(bn_context)
    admin = client_for("admin")
    pubsub = _listen(bn_context)
    response = _post(
        admin,
        f"/settings/centralists/{centralist_id}",
        {"name": "Nieuwe Naam", "endpoint": "c-ams-3", "region": "AM", "on_duty": "y"},
    )
    # A renamed endpoint is a new SIP account: its new password is shown once.
    assert response.status_code == 200 and 'id="sip-password"' in response.get_data(as_text=True)
    pjsip = _rendered_pjsip(bn_context, tmp_path)
    assert "[c-ams-3]" in pjsip and "[c-mn-3]" not in pjsip
    with session_scope(bn_context.sessions) as session:
        detail = session.scalar(
            select(AuditEvent.detail).where(AuditEvent.entity == "centralist", AuditEvent.verb == "edit")
        )
    assert detail is not None and "c-ams-3" in detail and "AM" in detail
    # A bad rename is refused and changes nothing.
    bad = _post(
        admin, f"/settings/centralists/{centralist_id}", {"name": "X", "endpoint": "c-mn-1", "region": "MN"}
    )
    assert bad.status_code == 400 and "already exists" in _errors(bad)
    # Deactivate: gone from Asterisk, off duty, no way back on duty, no new actions.
    assert _post(admin, f"/settings/centralists/{centralist_id}/active", {"active": "0"}).status_code == 302
    pjsip = _rendered_pjsip(bn_context, tmp_path)
    assert "[c-ams-3]" not in pjsip
    with session_scope(bn_context.sessions) as session:
        row = session.get(Centralist, centralist_id)
        assert row is not None and not row.active and not row.on_duty
    operator = client_for("operator")
    refused = _post(operator, f"/settings/centralists/{centralist_id}/duty", {"on_duty": "1"})
    assert refused.status_code == 302
    assert "deactivated" in operator.get("/settings/centralists").get_data(as_text=True)
    with pytest.raises(ActionError, match="deactivated centralist"):
        bn_context.actions.create(
            action_type="suspect",
            title="t",
            region_code="AM",
            area=AreaSpec(AreaKind.POSTCODES, postcodes=("1012",)),
            team=["c-ams-3"],
            actor="test",
            source="test",
        )
    assert [r["reason"] for r in _requests(pubsub)] == [
        "centralist c-ams-3 changed",
        "centralist c-ams-3 deactivated",
    ]
    assert audit_count(bn_context, entity="centralist", verb="deactivate", actor="admin") == 1
    assert audit_count(bn_context, entity="centralist", verb="on-duty") == 0
    # Reactivated: back in the configuration, still off duty until someone says so.
    assert _post(admin, f"/settings/centralists/{centralist_id}/active", {"active": "1"}).status_code == 302
    assert "[c-ams-3]" in _rendered_pjsip(bn_context, tmp_path)
    assert _post(operator, f"/settings/centralists/{centralist_id}/duty", {"on_duty": "1"}).status_code == 302
    assert audit_count(bn_context, entity="centralist", verb="on-duty", actor="operator") == 1
    pubsub.close()


def test_without_a_telephony_service_the_page_says_how_to_reload(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    _, centralist_id, _ = _ids(bn_context)
    admin = client_for("admin")
    _post(admin, f"/settings/centralists/{centralist_id}/duty", {"on_duty": "0"})
    assert "burgernet asterisk reload" in admin.get("/settings/centralists").get_data(as_text=True)


def test_reloader_renders_once_per_burst_and_reports(bn_context: Context) -> None:
    """The telephony side: requests on Redis → one apply per burst → an event on the live feed."""
    from asterisk_conf.reload import request_reload

    applied: list[float] = []
    prefix = bn_context.live.keys.prefix

    def apply() -> str:
        applied.append(time.monotonic())
        if len(applied) == 2:
            raise RuntimeError("asterisk -rx failed: Unable to connect to remote asterisk")
        return "reloaded"

    feed = bn_context.live.client.pubsub(ignore_subscribe_messages=True)
    feed.subscribe(bn_context.live.keys.events)

    async def scenario() -> ConfigReloader:
        reloader = ConfigReloader(bn_context.settings.redis, prefix, apply, settle_seconds=0.3)
        await reloader.start()
        await reloader.wait_subscribed(5)
        for n in range(3):
            assert (
                await asyncio.to_thread(request_reload, bn_context.live, reason=f"change {n}", actor="t") == 1
            )
        await _wait(lambda: reloader.reloads == 1)
        await asyncio.to_thread(request_reload, bn_context.live, reason="again", actor="t")
        await _wait(lambda: reloader.failures == 1)
        await reloader.stop()
        return reloader

    reloader = asyncio.run(scenario())
    assert len(applied) == 2 and reloader.last_report and "Unable to connect" in reloader.last_report
    events = _requests(feed)
    reloaded = [e for e in events if e["type"] == EVENT_RELOADED]
    assert reloaded[0] == {
        "type": EVENT_RELOADED,
        "ok": True,
        "reasons": ["change 0", "change 1", "change 2"],
    }
    assert reloaded[1]["ok"] is False and "Unable to connect" in reloaded[1]["error"]
    feed.close()
    # After stop nobody listens any more.
    assert redis.Redis.from_url(bn_context.settings.redis.url).publish(reload_channel(prefix), "{}") == 0


async def _wait(condition: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


# --- users ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"username": "nieuw", "role": "viewer", "password": "kort"}, "at least 12 characters"),
        ({"username": "viewer", "role": "viewer", "password": PASSWORD}, "already exists"),
        ({"username": "", "role": "viewer", "password": PASSWORD}, "a username of 1 to 80 characters"),
        ({"username": "nieuw", "role": "root", "password": PASSWORD}, "Not a valid choice"),
        (
            {"username": "nieuw", "role": "operator", "password": PASSWORD, "centralist": "c-mn-1"},
            "only a user with the role centralist",
        ),
        (
            {"username": "nieuw", "role": "centralist", "password": PASSWORD, "centralist": "c-zz-1"},
            "no centralist with endpoint 'c-zz-1'",
        ),
    ],
)
def test_bad_users_are_refused_clearly(
    world: World,
    bn_context: Context,
    client_for: Callable[[str | None], FlaskClient],
    data: dict[str, str],
    message: str,
) -> None:
    before = _audits(bn_context)
    response = _post(client_for("admin"), "/settings/users", data)
    assert response.status_code == 400 and message in _errors(response)
    assert _audits(bn_context) == before
    with session_scope(bn_context.sessions) as session:
        assert session.scalar(select(func.count()).select_from(User)) == 4


def test_user_life_cycle(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient], app: Any
) -> None:
    admin = client_for("admin")
    response = _post(
        admin,
        "/settings/users",
        {"username": "piet", "role": "centralist", "password": PASSWORD, "centralist": "c-mn-1"},
    )
    assert response.status_code == 302
    with session_scope(bn_context.sessions) as session:
        piet = session.scalar(select(User).where(User.username == "piet"))
        assert piet is not None and piet.role == "centralist" and piet.centralist_id is not None
        piet_id = piet.id
    assert audit_count(bn_context, entity="user", verb="create", actor="admin") == 1
    assert audit_count(bn_context, entity="user", verb="edit", actor="admin") == 1  # the link
    assert "c-mn-1" in admin.get("/settings/users").get_data(as_text=True)

    # Token: shown once, works on the API, revoked.
    page = _post(admin, f"/settings/users/{piet_id}/token").get_data(as_text=True)
    token = re.search(r'<code id="secret">([^<]+)</code>', page)
    assert token
    api = app.test_client()
    headers = {"Authorization": f"Bearer {token.group(1)}"}
    assert api.get("/api/v1/actions", headers=headers).status_code == 200
    assert token.group(1) not in admin.get(f"/settings/users/{piet_id}").get_data(as_text=True)
    assert _post(admin, f"/settings/users/{piet_id}/token/revoke").status_code == 302
    assert api.get("/api/v1/actions", headers=headers).status_code == 401

    # Password reset: the new one works, the old one not.
    page = _post(admin, f"/settings/users/{piet_id}/password").get_data(as_text=True)
    password = re.search(r'<code id="secret">([^<]+)</code>', page)
    assert password
    assert login(app.test_client(), "piet") != 302  # the old password no longer works
    assert login(app.test_client(), "piet", password.group(1)) == 302

    # Role change clears nothing silently: linking needs the centralist role.
    bad = _post(admin, f"/settings/users/{piet_id}", {"role": "viewer", "centralist": "c-mn-1"})
    assert bad.status_code == 400 and "only a user with the role centralist" in _errors(bad)
    assert _post(admin, f"/settings/users/{piet_id}", {"role": "viewer", "centralist": ""}).status_code == 302

    # Deactivate: the session and login stop working.
    piet_client = app.test_client()
    assert login(piet_client, "piet", password.group(1)) == 302
    assert piet_client.get("/settings/regions").status_code == 200
    assert _post(admin, f"/settings/users/{piet_id}/active", {"active": "0"}).status_code == 302
    assert piet_client.get("/settings/regions").status_code == 302
    assert login(app.test_client(), "piet", password.group(1)) != 302
    for verb in ("issue-token", "revoke-token", "reset-password", "deactivate"):
        assert audit_count(bn_context, entity="user", verb=verb, actor="admin") == 1, verb


def test_admins_cannot_lock_themselves_out(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    admin = client_for("admin")
    with session_scope(bn_context.sessions) as session:
        admin_id = session.scalar(select(User.id).where(User.username == "admin"))
    before = _audits(bn_context)
    response = _post(admin, f"/settings/users/{admin_id}/active", {"active": "0"})
    assert response.status_code == 400 and "you cannot deactivate yourself" in _errors(response)
    response = _post(admin, f"/settings/users/{admin_id}", {"role": "operator", "centralist": ""})
    assert response.status_code == 400 and "admin role from yourself" in _errors(response)
    assert _audits(bn_context) == before


# --- message templates ---------------------------------------------------------------------------
def test_templates_edit_preview_save_and_reset(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    operator = client_for("operator")
    path = "/settings/templates/missing_child/alert/sms/nl"
    page = operator.get(path).get_data(as_text=True)
    assert "Burgernet vermist kind" in page and "0800-0011" in page  # the default, previewed
    # Unknown placeholder: refused, nothing stored, the form keeps the text.
    bad = _post(operator, path, {"body": "Zoek {omschrijving}", "do": "save"})
    assert bad.status_code == 400 and "unknown placeholder {omschrijving}" in _errors(bad)
    assert "Zoek {omschrijving}" in bad.get_data(as_text=True)
    # Preview: rendered, not stored.
    preview = _post(operator, path, {"body": "Kind kwijt: {description} Bel {free_number}", "do": "preview"})
    assert preview.status_code == 200 and "Kind kwijt: Meisje, 8 jaar" in preview.get_data(as_text=True)
    with session_scope(bn_context.sessions) as session:
        assert session.scalar(select(func.count()).select_from(MessageTemplate)) == 0
    assert audit_count(bn_context, entity="message_template") == 0
    # Save: stored and audited, used by render_message, marked in the list.
    saved = _post(operator, path, {"body": "Kind kwijt: {description} Bel {free_number}", "do": "save"})
    assert saved.status_code == 302
    assert audit_count(bn_context, entity="message_template", verb="edit", actor="operator") == 1
    from burgernet.message_templates import render_message

    with session_scope(bn_context.sessions) as session:
        body = render_message(
            session,
            action_type="missing_child",
            kind="alert",
            channel="sms",
            language="nl",
            fields={"description": "X."},
        ).body
    assert body == "Kind kwijt: X. Bel 0800-0011"
    assert "NL*" in operator.get("/settings/templates").get_data(as_text=True)
    # E-mail needs a subject.
    email = _post(
        operator,
        "/settings/templates/missing_child/alert/email/en",
        {"subject": "", "body": "x", "do": "save"},
    )
    assert email.status_code == 400 and "an e-mail needs a subject" in _errors(email)
    # Reset: back to the default.
    assert _post(operator, path, {"body": "", "do": "reset"}).status_code == 302
    with session_scope(bn_context.sessions) as session:
        assert session.scalar(select(func.count()).select_from(MessageTemplate)) == 0
    assert audit_count(bn_context, entity="message_template", verb="reset", actor="operator") == 1
