"""A whole phone system for end-to-end tests: the real Asterisk sandbox, our FastAGI/AMI
service, Redis and SQLite — and SIPp as callers and centralist phones."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, update

from asterisk_conf.instance import ConfiguredAsterisk, prepare
from asterisk_conf.plan import plan_from_database
from asterisk_conf.sandbox import AsteriskInstall
from burgernet.actions import AreaSpec
from burgernet.calls import CallView
from burgernet.db import session_scope
from burgernet.models import Action, Call, Centralist, Participant
from burgernet.settings import Settings, load_settings
from composition.context import Context
from composition.redis_server import ManagedRedis
from ivr.app import TelephonyService
from recordings.catalogue import build_catalogue
from testbed.ports import port_block
from testbed.sipp import Sipp, SippResult

PHONES = ("c-mn-1", "c-mn-2", "c-mn-3", "c-am-1", "c-am-2", "c-am-3")


class ServiceThread:
    """Our asyncio telephony service on its own event loop in a thread, like `burgernet serve`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.service: TelephonyService | None = None
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: object, timeout: float = 30) -> object:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)  # type: ignore[arg-type]

    def start(self) -> None:
        async def start() -> TelephonyService:
            service = TelephonyService(Context(self.settings))
            await service.start()
            await service.ami.connect(wait=15)
            return service

        self.service = self.run(start())  # type: ignore[assignment]

    def stop_fastagi(self) -> None:
        assert self.service is not None
        self.run(self.service.agi.close())

    def restart_fastagi(self) -> None:
        assert self.service is not None
        self.run(self.service.agi.start())

    def stop(self) -> None:
        if self.service is not None:
            self.run(self.service.stop())
            self.service = None
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@dataclass
class PhoneSystem:
    settings: Settings
    context: Context
    asterisk: ConfiguredAsterisk
    service: ServiceThread
    phone_ports: dict[str, int]
    sipp: Sipp
    _phone_numbers: Iterator[int] = field(default_factory=lambda: iter(range(10_000_000, 99_999_999, 7919)))

    def phones(self, behaviours: dict[str, str], ring_ms: int = 300) -> None:
        """Start a SIPp phone for every demo centralist (default: answers)."""
        self.sipp.stop()
        for endpoint, port in self.phone_ports.items():
            self.sipp.phone(endpoint, port, port_block(), behaviours.get(endpoint, "answer"), ring_ms)
        time.sleep(0.3)

    def participant(self, lon: float, lat: float, postcode: str = "3511AB") -> str:
        """A registered participant at (lon, lat); returns their number as a trunk shows it (06...)."""
        number = f"+3161{next(self._phone_numbers) % 10_000_000:07d}"
        with session_scope(self.context.sessions) as session:
            session.add(
                Participant(
                    phone_e164=number, postcode=postcode, lat=lat, lon=lon, created_at=datetime.now(UTC)
                )
            )
        return "0" + number[3:]

    def action(
        self,
        title: str,
        area: AreaSpec,
        team: list[str],
        region: str = "MN",
        action_type: str = "missing_person",
    ) -> int:
        view = self.context.actions.create(
            action_type=action_type, title=title, region_code=region, area=area, team=team, actor="test"
        )
        return self.context.actions.start(view.id, actor="test").id

    def call(
        self,
        caller: str,
        *,
        digits: Sequence[tuple[int, str]] = (),
        hold_ms: int = 4000,
        speak_at_ms: int | None = None,
    ) -> SippResult:
        return self.sipp.call(
            caller,
            self.settings.asterisk.free_number,
            local_port=port_block(),
            media_port=port_block(),
            digits=digits,
            hold_ms=hold_ms,
            speak_at_ms=speak_at_ms,
        )

    def logged_call(self, caller_e164: str | None, timeout: float = 20) -> CallView:
        """The callback-log row of the last call from ``caller_e164``, once it has ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with session_scope(self.context.sessions) as session:
                query = select(Call.unique_id).where(Call.ended_at.is_not(None)).order_by(Call.id.desc())
                if caller_e164 is not None:
                    query = query.where(Call.caller_number == caller_e164)
                unique_id = session.scalars(query).first()
            if unique_id is not None:
                view = self.service.service.services.calls.get(unique_id)  # type: ignore[union-attr]
                if view is not None:
                    return view
            time.sleep(0.2)
        raise AssertionError(f"no ended call from {caller_e164} in the callback log after {timeout} s")

    def reset(self) -> None:
        self.sipp.stop()
        now = datetime.now(UTC)
        with session_scope(self.context.sessions) as session:
            session.execute(
                update(Action)
                .where(Action.status == "active")
                .values(status="closed", closed_at=now, outcome="test done")
            )
        self.context.live.invalidate_actions()
        self.context.live.client.delete(self.context.live.keys.presence)


@pytest.fixture(scope="session")
def phone_system(
    tmp_path_factory: pytest.TempPathFactory,
    redis_server: ManagedRedis,
    seeded_database: Path,
    asterisk_install: AsteriskInstall,
) -> Iterator[PhoneSystem]:
    data_dir = tmp_path_factory.mktemp("phone-system")
    database = data_dir / "burgernet.db"
    shutil.copyfile(seeded_database, database)
    settings = load_settings(
        data_dir=data_dir,
        database={"url": f"sqlite:///{database}"},
        redis={"url": redis_server.url, "key_prefix": "phone-test:"},
        asterisk={
            "sandbox_root": str(asterisk_install.root or "/var/cache/burgernet/asterisk-sid"),
            "instance_name": f"test-{os.getpid()}",
            "sip_port": port_block(),
            "ami_port": port_block(),
            "agi_port": port_block(),
            "trunk_port": port_block(),
            "owner_ring_seconds": 3,
            "pool_ring_seconds": 4,
            "fallback_region": "MN",
        },
        # Answering-machine detection off for the telephony tests written before it: they key
        # "1" 1.5 s into a silent call, which AMD (listening to the first seconds) would not
        # pass on. tests/telephony/test_amd.py turns it on for its own worker (the Originate
        # carries the switch, so the same Asterisk serves both).
        amd={"enabled": False},
    )
    context = Context(settings)
    phone_ports = {endpoint: port_block() for endpoint in PHONES}
    with session_scope(context.sessions) as session:
        for endpoint, port in phone_ports.items():
            session.execute(
                update(Centralist)
                .where(Centralist.sip_endpoint == endpoint)
                .values(sip_contact=f"sip:{endpoint}@127.0.0.1:{port}")
            )
        plan = plan_from_database(session, settings)
    # The prompts the dialplan and the flows play, in Dutch (the callers' language here).
    build_catalogue(settings=settings, langs=["nl"])
    asterisk = prepare(settings, plan)
    asterisk.instance.start()
    service = ServiceThread(settings)
    service.start()
    system = PhoneSystem(settings, context, asterisk, service, phone_ports, Sipp(settings.asterisk.sip_port))
    try:
        yield system
    finally:
        system.sipp.cleanup()
        service.stop()
        asterisk.instance.remove()  # stops it and leaves no instance folder in the sandbox
        context.close()


@pytest.fixture
def phones(phone_system: PhoneSystem) -> Iterator[PhoneSystem]:
    phone_system.reset()
    yield phone_system
    phone_system.reset()
