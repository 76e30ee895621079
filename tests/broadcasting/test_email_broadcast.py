"""E-mail broadcasts end to end: action start → fan-out → worker → a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis
from click.testing import CliRunner
from sqlalchemy import select

from broadcasting.channels.email_smtp import SmtpEmailSender
from broadcasting.ratelimit import SharedRate
from burgernet.actions import AreaSpec
from burgernet.db import session_scope
from burgernet.domain import AreaKind, Channel
from burgernet.mailer import Mailer
from burgernet.models import AuditEvent, Delivery
from burgernet.settings import Settings
from composition.cli import main
from composition.context import Context
from testbed.approvals import start_approved
from testbed.smtp import SmtpServer
from tests.broadcasting.conftest import CENTRE, Crowd, WorkerThread


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


def email_senders(
    settings: Settings, per_second: float | None = None
) -> Callable[[], dict[Channel, SmtpEmailSender]]:
    def build() -> dict[Channel, SmtpEmailSender]:
        client = aioredis.Redis.from_url(settings.redis.url)
        rate = SharedRate(
            client,
            f"{settings.redis.key_prefix}rate:email",
            per_second or settings.broadcast.email_per_second,
        )
        mailer = Mailer(settings.smtp)
        return {Channel.EMAIL: SmtpEmailSender(mailer, rate, domain=mailer.domain)}

    return build


def test_starting_an_action_emails_everyone_inside_once_and_closing_sends_the_result(
    crowd: Crowd, bn_context: Context, smtp_server: SmtpServer, start_worker: Callable[..., WorkerThread]
) -> None:
    crowd.add(12, email=True)
    crowd.add(3, email=True, start=100, opted_out=True)  # opted out: never mailed
    crowd.add(2, email=True, start=200, lat=53.2)  # far outside the circle
    crowd.add(2, sms=True, start=300, lat=53.2)  # SMS only, outside: no worker here sends SMS
    start_worker(email_senders(bn_context.settings))

    action_id = crowd.action()
    (alert_id,) = crowd.broadcasts(action_id, "alert")
    assert crowd.wait_done(alert_id) == {"sent": 12}

    mails = smtp_server.wait_for(12)
    assert sorted(m.rcpt_tos[0] for m in mails) == sorted(f"p{n}@example.nl" for n in range(12))
    assert all("Jongen, 8 jaar, rode jas" in m.body() for m in mails)
    assert all("0800-0011" in m.body() for m in mails)
    # The Message-ID is the delivery's: a re-send after a worker died carries the same one.
    assert len({m.message_id for m in mails}) == 12
    # Machine-made (RFC 3834): no auto-reply comes back to the sender.
    assert {m.message["Auto-Submitted"] for m in mails} == {"auto-generated"}

    status = bn_context.broadcasts.status(alert_id)
    assert status is not None
    data = status.as_dict()
    assert (data["total"], data["handled"], data["status"]) == (12, 12, "done")
    assert data["seconds_to"].keys() == {"50%", "90%", "100%"}  # type: ignore[attr-defined]

    bn_context.actions.close(
        action_id, outcome="Gevonden", result_message="Het kind is gevonden.", actor="test"
    )
    (result_id,) = crowd.broadcasts(action_id, "result")
    assert crowd.wait_done(result_id) == {"sent": 12}
    results = [m for m in smtp_server.wait_for(24) if "Het kind is gevonden." in m.body()]
    assert len(results) == 12
    with session_scope(bn_context.sessions) as session:
        verbs = set(session.scalars(select(AuditEvent.verb).where(AuditEvent.entity_id == str(action_id))))
    assert {"broadcast-alert", "broadcast-result"} <= verbs


def test_a_temporary_refusal_is_retried_and_a_permanent_one_is_not(
    crowd: Crowd, bn_context: Context, smtp_server: SmtpServer, start_worker: Callable[..., WorkerThread]
) -> None:
    crowd.add(3, email=True)
    smtp_server.refuse("p1@example.nl", "451 4.7.1 Try again later")
    smtp_server.refuse("p2@example.nl", "550 5.1.1 No such mailbox")
    start_worker(email_senders(bn_context.settings))

    action_id = crowd.action()
    (alert_id,) = crowd.broadcasts(action_id, "alert")
    crowd.wait_until(lambda: smtp_server.rcpt_attempts.count("p1@example.nl") >= 2, what="a second attempt")
    smtp_server.accept("p1@example.nl")
    statuses = crowd.wait_done(alert_id)
    assert statuses == {"sent": 2, "failed": 1}
    with session_scope(bn_context.sessions) as session:
        rows = {
            d.participant_id: (d.status, d.attempts, d.last_error)
            for d in session.scalars(select(Delivery).where(Delivery.broadcast_id == alert_id))
        }
    by_attempts = sorted((status, attempts) for status, attempts, _ in rows.values())
    # p0 at once; p2 refused for good after one attempt; p1 after its retries (max 3).
    assert ("failed", 1) in by_attempts
    assert ("sent", 1) in by_attempts
    assert any(status == "sent" and attempts >= 2 for status, attempts in by_attempts)
    assert any(error and "550" in error for _, _, error in rows.values())


def test_the_email_rate_is_shared_by_all_workers(
    crowd: Crowd, bn_context: Context, smtp_server: SmtpServer, start_worker: Callable[..., WorkerThread]
) -> None:
    crowd.add(16, email=True)
    senders = email_senders(bn_context.settings, per_second=8.0)
    start_worker(senders)
    start_worker(senders)  # two workers, one shared limit of 8 per second

    began = time.monotonic()
    action_id = crowd.action()
    (alert_id,) = crowd.broadcasts(action_id, "alert")
    crowd.wait_done(alert_id)
    elapsed = time.monotonic() - began
    mails = smtp_server.wait_for(16)
    # 16 messages at 8/s: the first goes at once, the 16th 15 intervals later (≥ 1.875 s).
    assert elapsed >= 15 / 8 - 0.05, elapsed
    assert len(mails) == 16


def test_closing_the_action_cancels_what_is_still_queued(
    crowd: Crowd, bn_context: Context, smtp_server: SmtpServer, start_worker: Callable[..., WorkerThread]
) -> None:
    crowd.add(40, email=True)
    start_worker(email_senders(bn_context.settings, per_second=10.0))
    action_id = crowd.action()
    (alert_id,) = crowd.broadcasts(action_id, "alert")
    crowd.wait_until(lambda: crowd.statuses(alert_id).get("sent", 0) >= 3, what="the first e-mails")

    bn_context.actions.close(action_id, outcome="Gevonden", result_message="Dank!", actor="test")
    statuses = crowd.wait_done(alert_id)
    assert statuses.get("cancelled", 0) >= 20
    assert statuses.get("queued", 0) == 0
    sent_alerts = statuses.get("sent", 0)
    time.sleep(0.5)  # nothing cancelled goes out afterwards
    alert_mails = [m for m in smtp_server.messages if "Dank!" not in m.body()]
    assert len(alert_mails) == sent_alerts
    # The result goes only to those the alert reached.
    (result_id,) = crowd.broadcasts(action_id, "result")
    assert crowd.wait_done(result_id, timeout=30) == {"sent": sent_alerts}


def test_broadcast_status_on_the_command_line(
    crowd: Crowd,
    bn_context: Context,
    smtp_server: SmtpServer,
    start_worker: Callable[..., WorkerThread],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    crowd.add(4, email=True)
    start_worker(email_senders(bn_context.settings))
    action_id = crowd.action()
    (alert_id,) = crowd.broadcasts(action_id, "alert")
    crowd.wait_done(alert_id)

    s = bn_context.settings
    monkeypatch.setenv("BURGERNET_DATABASE__URL", s.database_url)
    monkeypatch.setenv("BURGERNET_REDIS__URL", s.redis.url)
    monkeypatch.setenv("BURGERNET_REDIS__KEY_PREFIX", s.redis.key_prefix)
    runner = CliRunner()
    result = runner.invoke(main, ["broadcast", "status", str(alert_id), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["total"], data["by_status"], data["status"]) == (4, {"sent": 4}, "done")
    text = runner.invoke(main, ["broadcast", "status", str(alert_id)])
    assert "4/4 handled" in text.output and "100% reached after" in text.output
    missing = runner.invoke(main, ["broadcast", "status", "999999"])
    assert missing.exit_code != 0 and "no broadcast 999999" in missing.output


def test_an_amber_alert_overtakes_an_information_broadcast_in_the_queue(
    crowd: Crowd, bn_context: Context, smtp_server: SmtpServer, start_worker: Callable[..., WorkerThread]
) -> None:
    crowd.add(30, email=True)  # around CENTRE: the information action's area
    far = (CENTRE[0] + 0.5, CENTRE[1])
    crowd.add(5, email=True, start=500, lon=far[0])  # the AMBER Alert's area
    settings = bn_context.settings
    slow = settings.model_copy(
        update={"broadcast": settings.broadcast.model_copy(update={"worker_concurrency": 1})}
    )
    context = Context(slow)
    start_worker(email_senders(slow, per_second=15.0), context=context)

    info_id = crowd.action("information")
    crowd.wait_until(lambda: len(smtp_server.messages) >= 3, what="the information broadcast to begin")
    amber = bn_context.actions.create(
        action_type="amber_alert",
        title="AMBER Alert",
        description="Meisje, 4 jaar",
        region_code="AM",
        area=AreaSpec(AreaKind.CIRCLE, centre=far, radius_m=2000),
        actor="test",
    )
    start_approved(bn_context, amber.id, requester="test")
    (info_broadcast,) = crowd.broadcasts(info_id, "alert")
    (amber_broadcast,) = crowd.broadcasts(amber.id, "alert")
    crowd.wait_done(amber_broadcast)
    assert crowd.statuses(info_broadcast).get("queued", 0) > 10  # the information alert waited

    amber_addresses = {f"p{n}@example.nl" for n in range(500, 505)}
    order = [
        "amber" if m.rcpt_tos[0] in amber_addresses else "info" for m in smtp_server.wait_for(35, timeout=10)
    ]
    first_amber = order.index("amber")
    # Once the AMBER fan-out was there, its five went next (one information mail may have
    # been in flight already), and the information broadcast finished afterwards.
    assert order[first_amber : first_amber + 6].count("amber") == 5
    assert crowd.wait_done(info_broadcast) == {"sent": 30}
    context.close()


def test_a_mail_the_server_accepted_is_not_sent_again_when_recording_it_failed(
    crowd: Crowd,
    bn_context: Context,
    smtp_server: SmtpServer,
    start_worker: Callable[..., WorkerThread],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The database write after the SMTP server's 250 fails (a database restart; a kill -9 in
    that instant is the same): the delivery is left "sending" and taken over in doubt. SMTP
    cannot be asked what it got, so the sent journal is what keeps it from going out twice."""
    from sqlalchemy.exc import OperationalError

    from broadcasting.channels.base import Outcome
    from broadcasting.store import DeliveryJob
    from broadcasting.worker import BroadcastWorker

    crowd.add(5, email=True)
    real_finish = BroadcastWorker._finish
    failures: list[int] = []

    def finish_fails_three_times(self: BroadcastWorker, job: DeliveryJob, outcome: Outcome) -> bool:
        if len(failures) < 3:
            failures.append(job.delivery_id)
            raise OperationalError("UPDATE deliveries", {}, Exception("the database is restarting"))
        return real_finish(self, job, outcome)

    monkeypatch.setattr(BroadcastWorker, "_finish", finish_fails_three_times)
    start_worker(email_senders(bn_context.settings))
    action_id = crowd.action()
    (alert_id,) = crowd.broadcasts(action_id, "alert")
    # Taken over after claim_idle_seconds (2 s), found in the journal, recorded as sent.
    assert crowd.wait_done(alert_id, timeout=30) == {"sent": 5}
    assert len(failures) == 3
    time.sleep(0.5)  # nothing trickles in afterwards
    recipients = [m.rcpt_tos[0] for m in smtp_server.messages]
    assert sorted(recipients) == sorted(f"p{n}@example.nl" for n in range(5))  # each exactly once
    journals = list((bn_context.settings.data_dir / "broadcast").glob("sent-*.jsonl"))
    noted = [json.loads(line)["d"] for path in journals for line in path.read_text().splitlines()]
    assert set(failures) <= set(noted)
