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
from burgernet.centralists import CentralistService
from burgernet.db import make_engine, make_session_factory
from burgernet.live import LiveState
from burgernet.ports import BroadcastPort
from burgernet.settings import Settings


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
        redis = self.settings.redis
        return LiveState.from_url(redis.url, redis.key_prefix, redis.alerted_caller_ttl_seconds)

    @cached_property
    def broadcasts(self) -> BroadcastPort:
        return self._broadcasting(self)

    @cached_property
    def actions(self) -> ActionService:
        # Every action change invalidates the routing snapshot the free number reads.
        return ActionService(self.sessions, self.broadcasts, on_change=self.live.invalidate_actions)

    @cached_property
    def centralists(self) -> CentralistService:
        # Centralists are part of the routing snapshot too.
        return CentralistService(
            self.sessions, on_change=self.live.invalidate_actions, realm=self.settings.asterisk.sip_realm
        )

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
        if "live" in self.__dict__:
            self.live.client.close()
