"""An inquiry's e-mails through the worker on PostgreSQL: the migrated schema (a broadcast of an
inquiry, the longer kinds), the inquiry audience read with COPY, links and the follow-up."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from burgernet.db import session_scope
from burgernet.inquiries import FOLLOW_UP, hash_token
from burgernet.models import InquiryLink, InquiryUpdate
from composition.context import Context
from composition.redis_server import ManagedRedis
from testbed.postgres import ManagedPostgres
from testbed.smtp import SmtpServer
from tests.broadcasting.conftest import Crowd, WorkerThread
from tests.broadcasting.test_inquiry_mail import (
    broadcasts_of,
    email_senders,
    inquiries,
    neighbours,
    new_inquiry,
    tokens,
)
from tests.conftest import postgres_context

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(
    postgres_server: ManagedPostgres, redis_server: ManagedRedis, tmp_path: Path, smtp_server: SmtpServer
) -> Iterator[Context]:
    migrated = postgres_context(postgres_server, redis_server, tmp_path)
    migrated.close()
    settings = migrated.settings
    context = Context(
        settings.model_copy(
            update={
                "smtp": smtp_server.settings(settings.smtp),
                "web": settings.web.model_copy(update={"public_base_url": "http://panel.test"}),
                "broadcast": settings.broadcast.model_copy(update={"email_per_second": 200.0}),
            }
        )
    )
    yield context
    context.close()


def test_inquiry_mail_on_postgres(
    pg: Context, smtp_server: SmtpServer, start_worker: Callable[..., WorkerThread]
) -> None:
    people = neighbours(pg, 4)
    inquiry_id = new_inquiry(pg)
    service = inquiries(pg)
    assert service.count_recipients_of(inquiry_id) == 4
    broadcast_id = service.send_links(inquiry_id, actor="operator", source="test")
    start_worker(email_senders(pg.settings), context=pg)
    crowd = Crowd(pg)
    assert crowd.wait_done(broadcast_id) == {"sent": 4}
    sent = tokens(smtp_server.wait_for(4))
    assert sorted(sent) == sorted(people)
    with session_scope(pg.sessions) as session:
        stored = {
            pid: (delivery, token_hash)
            for pid, delivery, token_hash in session.execute(
                select(InquiryLink.participant_id, InquiryLink.delivery, InquiryLink.token_hash)
            )
        }
    assert stored == {people[address]: ("sent", hash_token(token)) for address, token in sent.items()}

    update_id = service.send_follow_up(inquiry_id, "Bedankt voor uw hulp.", actor="operator", source="test")
    (follow_up_id,) = broadcasts_of(pg, inquiry_id, FOLLOW_UP)
    assert crowd.wait_done(follow_up_id) == {"sent": 4}
    with session_scope(pg.sessions) as session:
        update = session.get(InquiryUpdate, update_id)
        assert update is not None and (update.recipients, update.failed) == (4, 0)
