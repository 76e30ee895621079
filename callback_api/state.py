"""What the app holds for its requests: settings, the core context, the login throttle."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from burgernet.context import Context
from burgernet.settings import Settings
from callback_api.security import LoginThrottle


@dataclass
class PanelState:
    settings: Settings
    context: Context
    throttle: LoginThrottle


def panel() -> PanelState:
    state: PanelState = current_app.extensions["burgernet"]
    return state
