"""The core services of one process, built once from settings.

Adapters (the panel, the FastAGI server, the workers, the Asterisk renderer) receive a
:class:`Services` and use what they need. Ports are plugged in by whoever builds it, the
composition root in production: the core never chooses an adapter itself.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from burgernet.actions import ActionService
from burgernet.callbacks import CallbackService, DialNotConfigured
from burgernet.centralists import CentralistService
from burgernet.db import make_engine, make_session_factory
from burgernet.facts import ActionFacts
from burgernet.live import LiveState
from burgernet.ports import BroadcastPort, CallbackDialPort
from burgernet.settings import Settings
from burgernet.sightings import SightingService


class Services:
    def __init__(self, settings: Settings, *, broadcasting: Callable[[Services], BroadcastPort]) -> None:
        self.settings = settings
        self._broadcasting = broadcasting

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.database_url, echo=self.settings.database.echo)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return make_session_factory(self.engine)

    @cached_property
    def live(self) -> LiveState:
        return LiveState.from_settings(self.settings.redis)

    @cached_property
    def broadcasts(self) -> BroadcastPort:
        return self._broadcasting(self)

    @cached_property
    def actions(self) -> ActionService:
        # Every action change invalidates the routing snapshot the free number reads; starting
        # and closing one also brings its lasting figures up to date.
        return ActionService(
            self.sessions,
            self.broadcasts,
            on_change=self.live.invalidate_actions,
            on_moved=self.facts.refresh,
        )

    @cached_property
    def facts(self) -> ActionFacts:
        return ActionFacts(self.sessions, closed_days=self.settings.retention.facts_closed_days)

    @cached_property
    def centralists(self) -> CentralistService:
        # Centralists are part of the routing snapshot too.
        return CentralistService(
            self.sessions, on_change=self.live.invalidate_actions, realm=self.settings.asterisk.sip_realm
        )

    @cached_property
    def sightings(self) -> SightingService:
        return SightingService(self.sessions, self.live)

    @cached_property
    def callback_dialer(self) -> CallbackDialPort:
        # The composition root plugs in the AMI dialer (composition/context.py).
        return DialNotConfigured()

    @cached_property
    def callbacks(self) -> CallbackService:
        web = self.settings.web
        return CallbackService(
            self.sessions,
            self.live,
            self.callback_dialer,
            claim_minutes=web.callback_claim_minutes,
            call_horizon_hours=web.callback_call_horizon_hours,
        )

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
        if "live" in self.__dict__:
            self.live.client.close()
