"""Push through the real pipeline: action start → fan-out → Redis Streams → worker → the sender
→ a local Web Push service that checks the VAPID JWT and decrypts every push."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import func, select

from broadcasting.service import NoReplyChannel
from burgernet.actions import AreaSpec
from burgernet.db import session_scope
from burgernet.domain import AreaKind
from burgernet.models import AuditEvent, Delivery, PushSubscription, Sighting
from burgernet.push_subscriptions import application_server_key, find_by_endpoint
from composition.context import Context
from testbed.approvals import start_approved
from tests.broadcasting.conftest import CENTRE, Crowd, WorkerThread
from tests.push.conftest import Devices, push_senders
from tests.support.webpush_service import WebPushService

# Geohash cells: "u173" holds CENTRE (Amsterdam, 4.90 E 52.37 N); "u1hk" is Venlo, far away.
HOME_CELL = "u173"
FAR_CELL = "u1hk"


def push_action(
    context: Context, action_type: str = "missing_child", *, national: bool = False, radius_m: float = 2000
) -> int:
    area = (
        AreaSpec(AreaKind.NATIONAL)
        if national
        else AreaSpec(AreaKind.CIRCLE, centre=CENTRE, radius_m=radius_m)
    )
    view = context.actions.create(
        action_type=action_type,
        title=f"Test {action_type}",
        description="Jongen, 8 jaar, rode jas",
        region_code="AM",
        area=area,
        channels=["push"],
        actor="test",
    )
    start_approved(context, view.id, requester="test")
    return view.id


def delivery_statuses(context: Context, broadcast_id: int) -> dict[str, int]:
    with session_scope(context.sessions) as session:
        rows = session.execute(
            select(Delivery.status, func.count())
            .where(Delivery.broadcast_id == broadcast_id, Delivery.channel == "push")
            .group_by(Delivery.status)
        )
        return {status: number for status, number in rows}


def test_a_local_alert_is_pushed_encrypted_and_signed_to_matching_cells_only(
    bn_context: Context,
    crowd: Crowd,
    devices: Devices,
    push_service: WebPushService,
    start_worker: Callable[..., WorkerThread],
) -> None:
    near = devices.add(3, cell=HOME_CELL)
    anywhere = devices.add(2, cell=None, lang="en")
    far = devices.add(2, cell=FAR_CELL)
    worker = start_worker(push_senders(bn_context.settings))

    action_id = push_action(bn_context)
    (alert_id,) = crowd.broadcasts(action_id, "alert")
    assert crowd.wait_done(alert_id) == {"sent": 5}

    pushes = push_service.wait_for(5)
    assert {p.endpoint for p in pushes} == {d.endpoint for d in near + anywhere}
    assert not any(p.endpoint in {d.endpoint for d in far} for p in push_service.received)
    payload = pushes[0].payload
    assert payload["v"] == 1 and payload["kind"] == "alert"
    assert payload["action"]["id"] == action_id
    assert payload["action"]["area"] == {
        "kind": "circle",
        "lat": CENTRE[1],
        "lon": CENTRE[0],
        "radius_m": 2000,
    }
    assert payload["free_number"] == "08000011"
    assert "rode jas" in payload["message"]
    english = [p for p in pushes if p.endpoint in {d.endpoint for d in anywhere}]
    assert all("Call free" in p.payload["message"] for p in english)
    # Signed with the server's VAPID key, once for this origin; a missing child is urgent.
    assert {p.public_key for p in pushes} == {application_server_key(bn_context.settings.push)}
    assert {p.urgency for p in pushes} == {"high"}
    assert {p.ttl for p in pushes} == {str(bn_context.settings.push.ttl_seconds)}
    assert {p.topic for p in pushes} == {f"bn-b{alert_id}"}
    sender = worker.worker.senders[next(iter(worker.worker.senders))]
    assert sender.vapid.signed == 1  # type: ignore[attr-defined]

    # The panel's progress counts push like any channel.
    status = bn_context.broadcasts.status(alert_id)
    assert status is not None
    assert status.as_dict()["by_channel"] == {"push": {"sent": 5}}
    with session_scope(bn_context.sessions) as session:
        row = find_by_endpoint(session, near[0].endpoint)
        assert row is not None and row.last_success_at is not None

    # An update goes to the same subscriptions as the alert.
    bn_context.actions.send_update(action_id, "Gevonden jas bij het station", actor="test")
    (update_id,) = crowd.broadcasts(action_id, "update")
    assert crowd.wait_done(update_id) == {"sent": 5}
    updates = push_service.wait_for(5, where=lambda p: p.payload["kind"] == "update")
    assert {p.endpoint for p in updates} == {d.endpoint for d in near + anywhere}


def test_a_national_amber_alert_goes_to_every_subscription(
    bn_context: Context,
    crowd: Crowd,
    devices: Devices,
    push_service: WebPushService,
    start_worker: Callable[..., WorkerThread],
) -> None:
    everyone = devices.add(3, cell=HOME_CELL) + devices.add(3, cell=FAR_CELL) + devices.add(2)
    start_worker(push_senders(bn_context.settings))
    action_id = push_action(bn_context, "amber_alert", national=True)
    (alert_id,) = crowd.broadcasts(action_id, "alert")
    assert crowd.wait_done(alert_id) == {"sent": 8}
    pushes = push_service.wait_for(8)
    assert {p.endpoint for p in pushes} == {d.endpoint for d in everyone}
    assert {p.payload["action"]["area"]["kind"] for p in pushes} == {"national"}
    assert {p.urgency for p in pushes} == {"high"}


def test_gone_subscriptions_are_deleted_and_busy_ones_retried(
    bn_context: Context,
    crowd: Crowd,
    devices: Devices,
    push_service: WebPushService,
    start_worker: Callable[..., WorkerThread],
) -> None:
    gone, missing, busy, broken, fine = devices.add(5, cell=HOME_CELL)
    push_service.answer(gone.endpoint, 410)
    push_service.answer(missing.endpoint, 404)
    push_service.answer(busy.endpoint, 429, 503, retry_after="0")
    push_service.answer(broken.endpoint, 400)
    start_worker(push_senders(bn_context.settings))

    action_id = push_action(bn_context, "vehicle")
    (alert_id,) = crowd.broadcasts(action_id, "alert")
    assert crowd.wait_done(alert_id) == {"sent": 2, "failed": 3}

    # 429 then 503: tried again (three attempts), then delivered; 410/404: deleted at once.
    assert [status for endpoint, status in push_service.answered if endpoint == busy.endpoint] == [
        429,
        503,
        201,
    ]
    assert len(push_service.pushes_to(busy.endpoint)) == 1
    assert len(push_service.pushes_to(fine.endpoint)) == 1
    assert {p.urgency for p in push_service.received} == {"normal"}
    with session_scope(bn_context.sessions) as session:
        assert find_by_endpoint(session, gone.endpoint) is None
        assert find_by_endpoint(session, missing.endpoint) is None
        kept = find_by_endpoint(session, broken.endpoint)
        assert kept is not None and kept.failures == 1
        errors = dict(
            session.execute(
                select(Delivery.last_error, func.count())
                .where(Delivery.broadcast_id == alert_id, Delivery.status == "failed")
                .group_by(Delivery.last_error)
            ).all()
        )
    assert errors == {
        "gone (410): subscription deleted": 1,
        "gone (404): subscription deleted": 1,
        "push service refused: 400": 1,
    }

    # The result message goes only to the subscriptions still there that the alert reached.
    bn_context.actions.close(
        action_id, result_message="De bus is gevonden.", outcome_kind="found_otherwise", actor="test"
    )
    (result_id,) = crowd.broadcasts(action_id, "result")
    assert crowd.wait_done(result_id) == {"sent": 2}


def test_asking_back_pushes_one_reply_to_the_sightings_device(
    bn_context: Context,
    crowd: Crowd,
    devices: Devices,
    push_service: WebPushService,
    start_worker: Callable[..., WorkerThread],
) -> None:
    (device,) = devices.add(1, cell=HOME_CELL)
    start_worker(push_senders(bn_context.settings))
    action_id = push_action(bn_context)
    (alert_id,) = crowd.broadcasts(action_id, "alert")
    crowd.wait_done(alert_id)

    now = datetime.now(UTC)
    with session_scope(bn_context.sessions) as session:
        subscription = session.scalars(
            select(PushSubscription).where(PushSubscription.endpoint == device.endpoint)
        ).one()
        from_app = Sighting(
            action_id=action_id,
            seen_at=now,
            lat=CENTRE[1],
            lon=CENTRE[0],
            description="Jongen bij de brug",
            reliability="possible",
            created_by="app",
            created_at=now,
            source="app",
            push_subscription_id=subscription.id,
        )
        from_phone = Sighting(
            action_id=action_id,
            seen_at=now,
            lat=CENTRE[1],
            lon=CENTRE[0],
            description="Telefonisch",
            reliability="possible",
            created_by="test",
            created_at=now,
        )
        session.add_all([from_app, from_phone])
        session.flush()
        app_sighting, phone_sighting = from_app.id, from_phone.id

    reply_id = bn_context.broadcasts.ask_back(
        sighting_id=app_sighting, question="Welke kant liep hij op?", user="centralist1"
    )
    assert crowd.wait_done(reply_id) == {"sent": 1}
    (reply,) = push_service.wait_for(1, where=lambda p: p.payload["kind"] == "reply")
    assert reply.endpoint == device.endpoint
    assert reply.payload["message"] == "Welke kant liep hij op?"
    assert reply.payload["sighting_id"] == app_sighting
    assert reply.payload["action"]["id"] == action_id
    with session_scope(bn_context.sessions) as session:
        audited = session.scalars(
            select(AuditEvent).where(AuditEvent.verb == "ask_back", AuditEvent.entity_id == str(app_sighting))
        ).all()
    assert len(audited) == 1 and audited[0].actor == "centralist1"

    try:
        bn_context.broadcasts.ask_back(sighting_id=phone_sighting, question="En?", user="centralist1")
    except NoReplyChannel as exc:
        assert exc.code == "push.no_reply_channel"
    else:
        raise AssertionError("a sighting without a subscription has no reply channel")
