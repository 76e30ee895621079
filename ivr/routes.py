"""The one place where FastAGI entry points are registered: script name → call flow.

The script name is the path in the dialplan's ``AGI(agi://host:port/<name>)`` and the file
name in ``ivr/``; the names live in :mod:`burgernet.channel_vars`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from burgernet import channel_vars as cv
from ivr import alert, freephone, tip
from ivr.agi import AgiSession
from ivr.services import IvrServices

Flow = Callable[[AgiSession, IvrServices], Awaitable[None]]
Handler = Callable[[AgiSession], Awaitable[None]]

ENTRY_POINTS: dict[str, Flow] = {
    cv.AGI_FREEPHONE: freephone.handle,
    cv.AGI_ALERT: alert.handle,
    cv.AGI_TIP: tip.handle,
}


def build_routes(services: IvrServices) -> dict[str, Handler]:
    assert set(ENTRY_POINTS) == set(cv.AGI_SCRIPTS), "every AGI script named in channel_vars has a flow"
    return {name: _bind(flow, services) for name, flow in ENTRY_POINTS.items()}


def _bind(flow: Flow, services: IvrServices) -> Handler:
    async def handler(session: AgiSession) -> None:
        await flow(session, services)

    handler.__name__ = getattr(flow, "__module__", "flow")
    return handler
