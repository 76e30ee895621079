"""Wiring: build the adapters (engine, sessions, live state, services) from settings, once."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from broadcasting.service import BroadcastService
from burgernet.actions import ActionService
from burgernet.centralists import CentralistService
from burgernet.db import make_engine, make_session_factory
from burgernet.domain import ActionStatus
from burgernet.live import LiveState
from burgernet.settings import Settings


@dataclass
class Context:
    settings: Settings

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
    def actions(self) -> ActionService:
        # Every action change invalidates the routing snapshot the free number reads; starting
        # one sends the alert, closing one cancels what is queued and sends the result.
        return ActionService(
            self.sessions, on_change=self.live.invalidate_actions, after_move=self._broadcast
        )

    @cached_property
    def broadcasts(self) -> BroadcastService:
        return BroadcastService(self.sessions, self.live.client, self.settings.redis.key_prefix)

    def _broadcast(self, action_id: int, status: ActionStatus, actor: str, source: str) -> None:
        if status is ActionStatus.ACTIVE:
            self.broadcasts.alert(action_id, actor=actor, source=source)
        elif status is ActionStatus.CLOSED:
            self.broadcasts.close(action_id, actor=actor, source=source)

    @cached_property
    def centralists(self) -> CentralistService:
        # Centralists are part of the routing snapshot too.
        return CentralistService(self.sessions, on_change=self.live.invalidate_actions)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
        if "live" in self.__dict__:
            self.live.client.close()
