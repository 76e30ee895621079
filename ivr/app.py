"""``burgernet serve``: FastAGI and AMI in one asyncio process.

One event loop holds every live call: the FastAGI server (the call flows in ``ivr/``), the
AMI client that follows calls and centralist phones (:mod:`ivr.call_tracker`), and the
asynchronous Redis client both use. The database is reached through worker threads.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from asterisk_conf.reload import ConfigReloader, render_and_reload
from burgernet import channel_vars as cv
from burgernet.calls import CallLog
from burgernet.live import AsyncLiveState
from burgernet.participants import set_opted_out
from burgernet.routing_service import RoutingService
from burgernet.services import Services
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


def build_services(context: Services, prompts: Prompts) -> IvrServices:
    settings = context.settings
    live = AsyncLiveState.from_url(
        settings.redis.url, settings.redis.key_prefix, settings.redis.alerted_caller_ttl_seconds
    )
    policy = RoutingPolicy(
        owner_ring_seconds=settings.asterisk.owner_ring_seconds,
        pool_ring_seconds=settings.asterisk.pool_ring_seconds,
        max_menu_items=settings.routing.max_menu_items,
    )
    routing = RoutingService(
        context.sessions,
        live,
        policy,
        settings.default_region,
        settings.routing.alerted_window_seconds,
        settings.redis.active_actions_ttl_seconds,
    )

    async def opt_out(participant_id: int) -> bool:
        return await asyncio.to_thread(
            set_opted_out, context.sessions, participant_id=participant_id, source="ivr"
        )

    return IvrServices(
        settings=settings,
        routing=routing,
        calls=CallLog(context.sessions),
        live=live,
        prompts=prompts,
        opt_out=opt_out,
    )


class TelephonyService:
    """The FastAGI server and the AMI call tracker, started and stopped together (or apart)."""

    def __init__(self, context: Services, prompts: Prompts | None = None) -> None:
        # Takes ownership of ``context``: :meth:`stop` closes it.
        settings = context.settings
        self.settings = settings
        self.context = context
        self.services = build_services(self.context, prompts or CataloguePrompts(settings))
        a = settings.asterisk
        self.agi = FastAgiServer(
            build_routes(self.services), host=a.agi_host, port=a.agi_port, failure_context=cv.CTX_FAILURE
        )
        self.tracker = CallTracker(self.services.calls, self.services.live, self.services.call_log_writer)
        self.ami = AmiClient(host=a.ami_host, port=a.ami_port, username=a.ami_username, secret=a.ami_secret)
        for event in CallTracker.EVENTS:
            self.ami.on(event, self.tracker.on_event)
        # Centralists changed in the panel: render the configuration again and reload Asterisk.
        self.config_reloader = ConfigReloader(
            settings.redis.url, settings.redis.key_prefix, lambda: render_and_reload(self.context)
        )

    async def start(self) -> None:
        await self.agi.start()
        await self.ami.connect()
        await self.config_reloader.start()
        a = self.settings.asterisk
        log.info("serving FastAGI on %s:%s, AMI to %s:%s", a.agi_host, a.agi_port, a.ami_host, a.ami_port)

    async def stop(self) -> None:
        await self.config_reloader.stop()
        await self.agi.close()
        await self.ami.close()
        await self.services.drain()
        await self.services.live.close()
        self.context.close()


async def serve(context: Services, stop: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM (``burgernet serve``)."""
    service = TelephonyService(context)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await service.start()
    try:
        await stop.wait()
    finally:
        await service.stop()
