"""``burgernet serve``: FastAGI and AMI in one asyncio process.

One event loop holds every live call: the FastAGI server (the call flows in ``ivr/``), the
AMI client that follows calls and centralist phones (:mod:`ivr.call_tracker`), and the
asynchronous Redis client both use. The database is reached through worker threads.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from burgernet import channel_vars as cv
from burgernet.calls import CallLog
from burgernet.context import Context
from burgernet.live import AsyncLiveState
from burgernet.participants import set_opted_out
from burgernet.routing_service import RoutingService
from burgernet.settings import Settings
from ivr.ami import AmiClient
from ivr.call_tracker import CallTracker
from ivr.routes import build_routes
from ivr.server import FastAgiServer
from ivr.services import IvrServices, Prompts
from recordings.catalogue import menu_item_prompt
from routing import RoutingPolicy

log = logging.getLogger(__name__)


class CataloguePrompts:
    """Prompts from :mod:`recordings.catalogue` (text-to-speech, cached by text and voice)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def menu_item(self, language: str, digit: str, title: str) -> str:
        return menu_item_prompt(language, int(digit), title, settings=self.settings)


def build_services(context: Context, prompts: Prompts) -> IvrServices:
    settings = context.settings
    live = AsyncLiveState.from_url(settings.redis.url, settings.redis.key_prefix,
                                   settings.redis.alerted_caller_ttl_seconds)
    policy = RoutingPolicy(
        owner_ring_seconds=settings.asterisk.owner_ring_seconds,
        pool_ring_seconds=settings.asterisk.pool_ring_seconds,
        max_menu_items=settings.routing.max_menu_items,
    )
    routing = RoutingService(context.sessions, live, policy, settings.default_region,
                             settings.routing.alerted_window_seconds, settings.redis.active_actions_ttl_seconds)

    async def opt_out(participant_id: int) -> bool:
        return await asyncio.to_thread(set_opted_out, context.sessions, participant_id=participant_id,
                                       source="ivr")

    return IvrServices(
        settings=settings,
        routing=routing,
        calls=CallLog(context.sessions),
        live=live,
        prompts=prompts,
        opt_out=opt_out,
        tips_dir=(settings.recordings_dir / "tips").resolve(),
    )


async def serve(settings: Settings, stop: asyncio.Event | None = None, prompts: Prompts | None = None) -> None:
    context = Context(settings)
    services = build_services(context, prompts or CataloguePrompts(settings))
    server = FastAgiServer(build_routes(services), host=settings.asterisk.agi_host, port=settings.asterisk.agi_port,
                           failure_context=cv.CTX_FAILURE)
    tracker = CallTracker(services.calls, services.live)
    ami = AmiClient(host=settings.asterisk.ami_host, port=settings.asterisk.ami_port,
                    username=settings.asterisk.ami_username, secret=settings.asterisk.ami_secret)
    for event in CallTracker.EVENTS:
        ami.on(event, tracker.on_event)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await server.start()
    await ami.connect()
    log.info("serving FastAGI on %s:%s, AMI to %s:%s", settings.asterisk.agi_host, settings.asterisk.agi_port,
             settings.asterisk.ami_host, settings.asterisk.ami_port)
    try:
        await stop.wait()
    finally:
        await server.close()
        await ami.close()
        await services.drain()
        await services.live.close()
        context.close()
