"""An action's channels and urgency drive its broadcasts: only the chosen channels are sent (and
counted), and the urgency, not the action type, sets the place in the queue."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from broadcasting.store import PRIORITY_AMBER, PRIORITY_INFORMATION, PRIORITY_URGENT
from burgernet.action_types import ActionTypeTemplates, TypeTemplate
from burgernet.actions import ActionError, AreaSpec
from burgernet.db import session_scope
from burgernet.domain import AreaKind
from burgernet.models import Broadcast, Delivery
from burgernet.settings import Settings
from composition.cli import main
from composition.context import Context
from testbed.smtp import SmtpServer
from tests.broadcasting.conftest import CENTRE, Crowd, WorkerThread
from tests.broadcasting.test_email_broadcast import email_senders


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


def _create(
    context: Context, action_type: str, centre: tuple[float, float] = CENTRE, **chosen: object
) -> int:
    view = context.actions.create(
        action_type=action_type,
        title=f"Test {action_type}",
        description="Jongen, 8 jaar, rode jas",
        region_code="AM",
        area=AreaSpec(AreaKind.CIRCLE, centre=centre, radius_m=2000),
        actor="test",
        **chosen,  # type: ignore[arg-type]
    )
    return view.id


def _priority(context: Context, broadcast_id: int) -> int:
    with session_scope(context.sessions) as session:
        broadcast = session.get(Broadcast, broadcast_id)
        assert broadcast is not None
        return broadcast.priority


def test_an_email_only_action_mails_email_participants_and_sends_sms_only_ones_nothing(
    crowd: Crowd, bn_context: Context, smtp_server: SmtpServer, start_worker: Callable[..., WorkerThread]
) -> None:
    crowd.add(6, email=True)
    sms_only = crowd.add(4, sms=True, start=100)
    crowd.add(3, sms=True, email=True, start=200)  # both: only the e-mail
    # Only an e-mail sender runs: an SMS delivery queued by mistake would keep the broadcast open.
    start_worker(email_senders(bn_context.settings))

    action_id = _create(bn_context, "missing_child", channels=["email"])
    assert bn_context.actions.get(action_id).channels == ("email",)
    bn_context.actions.start(action_id, actor="test")
    (alert,) = crowd.broadcasts(action_id, "alert")

    assert crowd.wait_done(alert) == {"sent": 9}
    mailed = {m.rcpt_tos[0] for m in smtp_server.wait_for(9, timeout=10)}
    assert mailed == {f"p{n}@example.nl" for n in [*range(6), *range(200, 203)]}
    with session_scope(bn_context.sessions) as session:
        broadcast = session.get(Broadcast, alert)
        assert broadcast is not None and (broadcast.status, broadcast.total) == ("done", 9)
        channels = set(session.scalars(select(Delivery.channel).where(Delivery.broadcast_id == alert)))
        assert channels == {"email"}
        reached = set(session.scalars(select(Delivery.participant_id).where(Delivery.broadcast_id == alert)))
        assert reached.isdisjoint(sms_only)


def test_the_urgency_not_the_type_sets_the_priority_and_a_result_waits_one_level_lower(
    bn_context: Context,
) -> None:
    # Without a choice: the type's template (missing child urgent, vehicle information).
    child = _create(bn_context, "missing_child")
    vehicle = _create(bn_context, "vehicle")
    assert bn_context.actions.get(child).urgency == "urgent"
    assert bn_context.actions.get(vehicle).channels == ("voice", "sms", "email", "push")
    # An information-type action raised to amber, and a missing child lowered to information.
    raised = _create(bn_context, "information", urgency="amber")
    lowered = _create(bn_context, "missing_child", urgency="information")
    for action_id in (child, vehicle, raised, lowered):
        bn_context.actions.start(action_id, actor="test")
    named = {"child": child, "vehicle": vehicle, "raised": raised, "lowered": lowered}
    alerts = {
        name: _priority(bn_context, broadcast_id)
        for name, action_id in named.items()
        for broadcast_id in Crowd(bn_context).broadcasts(action_id, "alert")
    }
    assert alerts == {
        "child": PRIORITY_URGENT,
        "vehicle": PRIORITY_INFORMATION,
        "raised": PRIORITY_AMBER,
        "lowered": PRIORITY_INFORMATION,
    }


def test_a_new_action_takes_the_channels_and_urgency_of_its_saved_template(bn_context: Context) -> None:
    templates = ActionTypeTemplates(bn_context.sessions)
    vehicle = templates.get("vehicle")
    templates.save(
        TypeTemplate(
            "vehicle",
            vehicle.radius_m,
            ("sms", "email"),
            "urgent",
            vehicle.title_block,
            vehicle.description_block,
        ),
        actor="test",
        source="test",
    )
    view = bn_context.actions.get(_create(bn_context, "vehicle"))
    assert (view.channels, view.urgency) == (("sms", "email"), "urgent")
    # The operator's choice wins over the template; nonsense is refused with a clear message.
    chosen = bn_context.actions.get(_create(bn_context, "vehicle", channels=["voice"], urgency="amber"))
    assert (chosen.channels, chosen.urgency) == (("voice",), "amber")
    with pytest.raises(ActionError, match="at least one channel"):
        _create(bn_context, "vehicle", channels=[])
    with pytest.raises(ActionError, match="unknown channel"):
        _create(bn_context, "vehicle", channels=["fax"])
    with pytest.raises(ActionError, match="unknown urgency"):
        _create(bn_context, "vehicle", urgency="now")


def test_an_information_action_at_amber_urgency_overtakes_an_information_broadcast(
    crowd: Crowd, bn_context: Context, smtp_server: SmtpServer, start_worker: Callable[..., WorkerThread]
) -> None:
    crowd.add(30, email=True)  # around CENTRE: the first information action's area
    far = (CENTRE[0] + 0.5, CENTRE[1])
    crowd.add(5, email=True, start=500, lon=far[0])  # the urgent witness call's area
    settings = bn_context.settings
    slow = settings.model_copy(
        update={"broadcast": settings.broadcast.model_copy(update={"worker_concurrency": 1})}
    )
    context = Context(slow)
    start_worker(email_senders(slow, per_second=15.0), context=context)

    info_id = crowd.action("information")
    crowd.wait_until(lambda: len(smtp_server.messages) >= 3, what="the information broadcast to begin")
    raised = _create(bn_context, "information", far, urgency="amber")
    bn_context.actions.start(raised, actor="test")
    (info_broadcast,) = crowd.broadcasts(info_id, "alert")
    (raised_broadcast,) = crowd.broadcasts(raised, "alert")
    crowd.wait_done(raised_broadcast)
    assert crowd.statuses(info_broadcast).get("queued", 0) > 10  # the first information alert waited

    raised_addresses = {f"p{n}@example.nl" for n in range(500, 505)}
    order = [
        "raised" if m.rcpt_tos[0] in raised_addresses else "info"
        for m in smtp_server.wait_for(35, timeout=10)
    ]
    first = order.index("raised")
    assert order[first : first + 6].count("raised") == 5
    assert crowd.wait_done(info_broadcast) == {"sent": 30}
    context.close()


def test_the_cli_creates_an_action_with_the_channels_and_urgency_asked_for(
    bn_context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = bn_context.settings
    monkeypatch.setenv("BURGERNET_DATABASE__URL", s.database_url)
    monkeypatch.setenv("BURGERNET_REDIS__URL", s.redis.url)
    monkeypatch.setenv("BURGERNET_REDIS__KEY_PREFIX", s.redis.key_prefix)
    runner = CliRunner()
    args = ["action", "create", "--type", "vehicle", "--title", "Blauwe bestelbus", "--region", "AM"]
    created = runner.invoke(
        main, [*args, "--circle", f"{CENTRE[0]},{CENTRE[1]},2000", "--channel", "sms", "--urgency", "urgent"]
    )
    assert created.exit_code == 0, created.output
    action_id = int(created.output.split()[1])
    view = bn_context.actions.get(action_id)
    assert (view.channels, view.urgency) == (("sms",), "urgent")
    wrong = runner.invoke(main, [*args, "--circle", f"{CENTRE[0]},{CENTRE[1]},2000", "--urgency", "now"])
    assert wrong.exit_code != 0 and "'now' is not one of 'amber', 'urgent', 'information'" in wrong.output
