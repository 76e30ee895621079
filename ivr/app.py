"""``burgernet serve``: FastAGI and AMI in one asyncio process.

One event loop holds every live call: the FastAGI server (the call flows in ``ivr/``), the
AMI client that follows calls and centralist phones (:mod:`ivr.call_tracker`), and the
asynchronous Redis client both use. The database is reached through worker threads.

The same loop beats (:mod:`burgernet.health`, component ``serve``) every
``BEAT_INTERVAL_SECONDS``: a loop that hangs stops beating, and the supervisor sees it. Each
beat also checks that Redis still holds its state: after a Redis restart the core's part is
rebuilt from the database and presence is read again from Asterisk. After every AMI
(re)connection presence and the calls are read again from Asterisk.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time

from redis.exceptions import RedisError

from asterisk_conf.reload import ConfigReloader, render_and_reload
from burgernet import channel_vars as cv
from burgernet import health
from burgernet.calls import CallLog
from burgernet.desk import AsyncDeskFeed
from burgernet.live import AsyncLiveState, LiveKeys, StateRebuild
from burgernet.participants import set_opted_out
from burgernet.routing_service import RoutingService
from burgernet.services import Services
from burgernet.settings import Settings
from burgernet.tip_inbox import PeriodicTipSweep, TipInbox
from ivr.ami import AmiClient
from ivr.call_tracker import CallTracker
from ivr.desk_signals import DeskSignals
from ivr.routes import build_routes
from ivr.server import FastAgiServer
from ivr.services import IvrServices, Prompts
from recordings.catalogue import menu_item_prompt
from recordings.paths import tips_dir
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
    live = AsyncLiveState.from_settings(settings.redis)
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
    """The FastAGI server and the AMI call tracker, started and stopped together (or apart).

    A *standby* service (``burgernet serve --standby``) is the second FastAGI server the dialplan
    falls back on (asterisk.agi_backup): it answers the same AGI scripts on ``port`` and does
    nothing else. The AMI tracking, the tip sweep, the heartbeat and the configuration reloads
    stay with the node's own serve, so that no AMI event is handled twice.
    """

    def __init__(
        self,
        context: Services,
        prompts: Prompts | None = None,
        *,
        standby: bool = False,
        port: int | None = None,
    ) -> None:
        # Takes ownership of ``context``: :meth:`stop` closes it.
        settings = context.settings
        self.settings = settings
        self.context = context
        self.standby = standby
        self.services = build_services(self.context, prompts or CataloguePrompts(settings))
        a = settings.asterisk
        self.agi_port = a.agi_port if port is None else port
        self.agi = FastAgiServer(
            build_routes(self.services), host=a.agi_host, port=self.agi_port, failure_context=cv.CTX_FAILURE
        )
        self.tracker = CallTracker(self.services.calls, self.services.live, self.services.call_log_writer)
        self.ami = AmiClient(host=a.ami_host, port=a.ami_port, username=a.ami_username, secret=a.ami_secret)
        for event in CallTracker.EVENTS:
            self.ami.on(event, self.tracker.on_event)
        # The centralist's call card: which phone rings, answered, ended (burgernet/desk.py).
        self.desk = DeskSignals(AsyncDeskFeed(self.services.live))
        for event in DeskSignals.EVENTS:
            self.ami.on(event, self.desk.on_event)
        # Events sent while the connection was down are lost: read the state afresh.
        self.ami.on_connect(self.resync)
        keys = LiveKeys(settings.redis.key_prefix)
        self.rebuild = StateRebuild(
            self.context.live.client,
            keys,
            self.context.sessions,
            settings.routing.alerted_window_seconds,
            settings.redis.alerted_caller_ttl_seconds,
        )
        # Tips recorded while FastAGI was down (the failure path) get their rows here. The sweep
        # shares the call-log writer thread: on SQLite, sweeps and call-log writes take turns.
        self.tip_sweep = PeriodicTipSweep(
            TipInbox(context.sessions, tips_dir(settings), settings.routing.alerted_window_seconds),
            settings.audio.tip_sweep_seconds,
            executor=self.services.call_log_writer,
        )
        self._pulse: asyncio.Task[None] | None = None
        self._redis_down = False  # the beat failed: logged once per outage
        self.beats = 0
        self._resync_not_before = 0.0
        self._resyncing = asyncio.Lock()  # one resync at a time (a login and a beat may both ask)
        # Centralists changed in the panel: render the configuration again and reload Asterisk.
        self.config_reloader = ConfigReloader(
            settings.redis, settings.redis.key_prefix, lambda: render_and_reload(self.context)
        )

    async def start(self) -> None:
        await self.agi.start()
        if self.standby:
            host = self.settings.asterisk.agi_host
            log.info("standby FastAGI server on %s:%s (no AMI)", host, self.agi_port)
            return
        await self.tip_sweep.start()  # sweeps at once, then every audio.tip_sweep_seconds
        await self.ami.connect()
        await self.config_reloader.start()
        self._pulse = asyncio.get_running_loop().create_task(self._pulse_loop(), name="serve-pulse")
        a = self.settings.asterisk
        log.info("serving FastAGI on %s:%s, AMI to %s:%s", a.agi_host, a.agi_port, a.ami_host, a.ami_port)

    async def resync(self) -> None:
        """Presence and calls from what Asterisk reports now (after each AMI login)."""
        async with self._resyncing:
            await self.tracker.resync(self.ami)
            live = self.services.live
            await live.client.set(live.keys.presence_synced, f"{time.time():.3f}")

    def beat_details(self) -> dict[str, str]:
        return {
            "ami": "connected" if self.ami.connected else "disconnected",
            "agi_active": str(self.agi.active),
        }

    async def _pulse_loop(self) -> None:
        while True:
            try:
                await self.pulse()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("serve pulse failed; next beat in %s s", health.BEAT_INTERVAL_SECONDS)
            await asyncio.sleep(health.BEAT_INTERVAL_SECONDS)

    async def pulse(self) -> None:
        """One beat, then the Redis state check. Redis down costs a log line, never the process."""
        live = self.services.live
        try:
            await asyncio.wait_for(
                health.beat_async(
                    live.client, self.settings.redis.key_prefix, health.SERVE, self.beat_details()
                ),
                health.BEAT_INTERVAL_SECONDS,
            )
            self.beats += 1
            if self._redis_down:
                log.info("heartbeat: Redis is back")
                self._redis_down = False
            if not await asyncio.to_thread(self.rebuild.built):
                await asyncio.to_thread(self.rebuild.ensure, "serve")
            if (
                self.ami.connected
                and not self._resyncing.locked()
                and time.monotonic() >= self._resync_not_before
                and not await live.client.exists(live.keys.presence_synced)
            ):
                log.warning("Redis holds no presence from Asterisk (restarted empty?): reading it again")
                self._resync_not_before = time.monotonic() + 60  # a failing resync: once a minute
                await self.resync()
                self._resync_not_before = 0.0
        except (OSError, TimeoutError, RedisError) as exc:
            if not self._redis_down:
                log.warning("Redis unreachable (%s): serving on; beating again when it is back", exc)
            self._redis_down = True

    async def stop(self) -> None:
        if not self.standby:
            await self.tip_sweep.stop()  # before drain() shuts the call-log writer it uses
        if self._pulse is not None:
            self._pulse.cancel()
            await asyncio.gather(self._pulse, return_exceptions=True)
        if not self.standby:
            await self.config_reloader.stop()
        await self.agi.close()
        if not self.standby:
            await self.ami.close()
        await self.services.drain()
        await self.services.live.close()
        self.context.close()


async def serve(
    context: Services, stop: asyncio.Event | None = None, *, standby: bool = False, port: int | None = None
) -> None:
    """Run until SIGINT/SIGTERM (``burgernet serve``; ``--standby``: the backup FastAGI server)."""
    service = TelephonyService(context, standby=standby, port=port)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await service.start()
    try:
        await stop.wait()
    finally:
        await service.stop()
