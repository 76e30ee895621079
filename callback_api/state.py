"""What the app holds for its requests: settings, core services, broadcast progress, login throttle."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from broadcasting.service import BroadcastService
from burgernet.services import Services
from burgernet.settings import Settings
from callback_api.security import LoginThrottle


@dataclass
class PanelState:
    settings: Settings
    context: Services
    broadcasts: BroadcastService  # progress of alerts, updates and results
    throttle: LoginThrottle


def panel() -> PanelState:
    state: PanelState = current_app.extensions["burgernet"]
    return state
