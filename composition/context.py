"""Wiring: the core services with the adapters that implement their ports, built once."""

from __future__ import annotations

from functools import cached_property

from broadcasting.service import BroadcastService
from burgernet.ports import CallbackDialPort
from burgernet.services import Services
from burgernet.settings import Settings


class Context(Services):
    """What every command of the composition root works with: core services, adapters plugged in."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, broadcasting=BroadcastService.for_services)

    @cached_property
    def broadcasts(self) -> BroadcastService:
        # The port's implementation, typed with its reading side (progress) for the commands.
        return BroadcastService.for_services(self)

    @cached_property
    def callback_dialer(self) -> CallbackDialPort:
        from ivr.callback_dial import AmiCallbackDialer

        return AmiCallbackDialer(self.settings)
