"""Broadcast fixtures: participants in a known area, actions, and workers on their own loop."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from werkzeug.serving import BaseWSGIServer, make_server

from broadcasting.worker import BroadcastWorker
from burgernet.actions import AreaSpec
from burgernet.db import session_scope
from burgernet.domain import AreaKind
from burgernet.models import Broadcast, Delivery, Participant
from callback_api.app import create_app
from composition.context import Context
from testbed.ports import port_block
from testbed.waiting import wait_for

# A spot far from every demo postcode (the seeded regions hold no participants anyway).
CENTRE = (4.90, 52.37)


@dataclass
class Crowd:
    """Participants standing around CENTRE, and actions covering them."""

    context: Context

    def add(
        self,
        count: int,
        *,
        voice: bool = False,
        sms: bool = False,
        email: bool = False,
        start: int = 0,
        opted_out: bool = False,
        lon: float = CENTRE[0],
        lat: float = CENTRE[1],
    ) -> list[int]:
        now = datetime.now(UTC)
        ids = []
        with session_scope(self.context.sessions) as session:
            for n in range(start, start + count):
                participant = Participant(
                    phone_e164=f"+3161{n:07d}",
                    email=f"p{n}@example.nl" if email else None,
                    postcode="1012AB",
                    lat=lat + (n % 10) * 0.0001,
                    lon=lon + (n // 10 % 10) * 0.0001,
                    channel_voice=voice,
                    channel_sms=sms,
                    channel_email=email,
                    opted_out=opted_out,
                    opted_out_at=now if opted_out else None,
                    created_at=now,
                )
                session.add(participant)
                session.flush()
                ids.append(participant.id)
        return ids

    def action(
        self, action_type: str = "missing_person", *, start: bool = True, radius_m: float = 2000
    ) -> int:
        view = self.context.actions.create(
            action_type=action_type,
            title=f"Test {action_type}",
            description="Jongen, 8 jaar, rode jas",
            region_code="AM",
            area=AreaSpec(AreaKind.CIRCLE, centre=CENTRE, radius_m=radius_m),
            actor="test",
        )
        if start:
            self.context.actions.start(view.id, actor="test")
        return view.id

    def broadcasts(self, action_id: int, kind: str | None = None) -> list[int]:
        with session_scope(self.context.sessions) as session:
            query = select(Broadcast.id).where(Broadcast.action_id == action_id).order_by(Broadcast.id)
            if kind:
                query = query.where(Broadcast.kind == kind)
            return list(session.scalars(query))

    def statuses(self, broadcast_id: int) -> dict[str, int]:
        with session_scope(self.context.sessions) as session:
            rows = session.execute(
                select(Delivery.status, func.count())
                .where(Delivery.broadcast_id == broadcast_id)
                .group_by(Delivery.status)
            )
            return {status: number for status, number in rows}

    def wait_until(self, check: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
        wait_for(check, timeout, what, every=0.05)

    def wait_done(self, broadcast_id: int, timeout: float = 20.0) -> dict[str, int]:
        def done() -> bool:
            with session_scope(self.context.sessions) as session:
                return session.scalar(select(Broadcast.status).where(Broadcast.id == broadcast_id)) in (
                    "done",
                    "cancelled",
                )

        self.wait_until(done, timeout, f"broadcast {broadcast_id} to finish")
        return self.statuses(broadcast_id)


@pytest.fixture
def crowd(bn_context: Context) -> Crowd:
    return Crowd(bn_context)


class WorkerThread:
    """A BroadcastWorker on its own event loop in a thread, as `burgernet worker` runs it."""

    def __init__(self, context: Context, senders: Callable[[], Any], **options: object) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

        async def build() -> BroadcastWorker:
            made = senders()
            if inspect.isawaitable(made):  # senders that must connect first (AMI)
                made = await made
            worker = BroadcastWorker(context, made, **options)  # type: ignore[arg-type]
            await worker.start()
            return worker

        self.worker: BroadcastWorker = asyncio.run_coroutine_threadsafe(build(), self.loop).result(20)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.worker.stop(grace_seconds=5), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def start_worker(bn_context: Context) -> Iterator[Callable[..., WorkerThread]]:
    workers: list[WorkerThread] = []

    def start(senders: Callable[[], Any], context: Context | None = None, **options: object) -> WorkerThread:
        worker = WorkerThread(context or bn_context, senders, **options)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def panel_port() -> int:
    """Where :func:`served_panel` listens: the callback base URL of a fake provider's webhooks."""
    return port_block()


@pytest.fixture
def served_panel(bn_context: Context, panel_port: int) -> Iterator[BaseWSGIServer]:
    """The real panel over HTTP: Twilio's status callbacks and a voice call's TwiML come from it."""
    app = create_app(bn_context.settings, context=bn_context, config={"TESTING": True})
    server = make_server("127.0.0.1", panel_port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    thread.join(5)
