"""Centralist changes reach the running Asterisk: a request on Redis, a reload next to Asterisk.

The panel runs in its own (unprivileged) process and never touches Asterisk's files. When a
centralist or region changes, it publishes a request on the Redis channel
``<prefix>asterisk:reload`` (:func:`request_reload`). The telephony service (``burgernet
serve``, :class:`ivr.app.TelephonyService`), which runs next to Asterisk, listens with a
:class:`ConfigReloader`: it renders the configuration from the database again and lets Asterisk
reload PJSIP and the dialplan, exactly what ``burgernet asterisk reload`` does by hand. A burst
of requests (ten centralists edited in a minute) gives one reload after a short pause.

Why not over AMI: Asterisk's ``Reload`` and ``Command`` actions need the ``system``/``config``
or ``command`` write permission, and the AMI user is deliberately limited to ``originate``
(those permissions amount to shell access). The reload goes through Asterisk's control socket
instead, like the command line. Loaded calls are not dropped by a PJSIP or dialplan reload.

Pub/sub is fire-and-forget: a request published while no telephony service listens is lost.
:func:`request_reload` returns how many listened, so the panel can say so (and point at
``burgernet asterisk reload``); every service start renders the configuration anyway.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from burgernet.live import LiveKeys, LiveState
from burgernet.redis_clients import async_redis_client
from burgernet.settings import RedisSettings

log = logging.getLogger(__name__)

EVENT_CONFIG_CHANGED = "asterisk_config_changed"
EVENT_RELOADED = "asterisk_reloaded"  # on the live feed, for the panel: ok or the error
# PJSIP for the endpoints, the dialplan for the fallback pool (a global in extensions.conf).
RELOAD_COMMANDS = ("module reload res_pjsip.so", "dialplan reload")


def reload_channel(prefix: str) -> str:
    return f"{prefix}asterisk:reload"


def request_reload(live: LiveState, *, reason: str, actor: str) -> int:
    """Ask the telephony service to render and reload; returns how many services heard it."""
    message = {
        "type": EVENT_CONFIG_CHANGED,
        "reason": reason,
        "actor": actor,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return int(live.client.publish(reload_channel(live.keys.prefix), json.dumps(message)))


def render_and_reload(context: Any) -> str:
    """Render from the database into this instance's folder and reload the running Asterisk.

    ``context`` is a :class:`burgernet.services.Services`. Blocking (files, a subprocess): run it
    in a worker thread. Raises :class:`asterisk_conf.sandbox.SandboxError` when Asterisk is not
    running.
    """
    from asterisk_conf.instance import prepare
    from asterisk_conf.plan import plan_from_database
    from burgernet.db import session_scope

    with session_scope(context.sessions) as session:
        plan = plan_from_database(session, context.settings)
    configured = prepare(context.settings, plan, log=log.info)
    answers = [configured.instance.rx(command).strip() for command in RELOAD_COMMANDS]
    return "; ".join(answer for answer in answers if answer) or "reloaded"


class ConfigReloader:
    """Listens for reload requests and applies them one at a time, bursts coalesced.

    ``apply`` does the work (blocking; it runs in a thread) and returns a short report; an
    exception is logged and published as a failed ``asterisk_reloaded`` event, never raised.
    """

    def __init__(
        self,
        redis_settings: RedisSettings,
        prefix: str,
        apply: Callable[[], str],
        *,
        settle_seconds: float = 0.5,
        retry_seconds: float = 2.0,
    ) -> None:
        self.redis_settings = redis_settings
        self.prefix = prefix
        self.apply = apply
        self.settle_seconds = settle_seconds
        self.retry_seconds = retry_seconds
        self.reloads = 0
        self.failures = 0
        self.last_report: str | None = None
        self._subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._client: aioredis.Redis | None = None

    async def start(self) -> None:
        """Start listening in the background (Redis may come later: it keeps trying)."""
        if self._task is None:
            self._client = async_redis_client(self.redis_settings, timeout=5)
            self._task = asyncio.get_running_loop().create_task(self._run(), name="asterisk-config-reloader")

    async def wait_subscribed(self, timeout: float) -> None:
        await asyncio.wait_for(self._subscribed.wait(), timeout)

    async def stop(self) -> None:
        # The flag as well as the cancellation: a cancellation that lands inside redis-py's
        # read with a timeout can be swallowed there, and the loop would go on listening.
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            done, _ = await asyncio.wait({self._task}, timeout=5)
            if not done:
                log.warning("the reload listener did not stop within 5 s; leaving it behind")
            self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _run(self) -> None:
        assert self._client is not None
        while not self._stopping:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(reload_channel(self.prefix))
                self._subscribed.set()
                while not self._stopping:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    reasons = [_reason(message)]
                    # Let a burst finish: every request that arrives meanwhile shares this reload.
                    await asyncio.sleep(self.settle_seconds)
                    while (more := await pubsub.get_message(timeout=0)) is not None:
                        reasons.append(_reason(more))
                    await self._apply(reasons)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis gone: listen again after a pause
                self._subscribed.clear()
                log.warning("reload requests: Redis unavailable (%s); retrying", exc)
                await asyncio.sleep(self.retry_seconds)
            finally:
                await pubsub.aclose()

    async def _apply(self, reasons: list[str]) -> None:
        try:
            report = await asyncio.to_thread(self.apply)
        except Exception as exc:
            self.failures += 1
            self.last_report = f"failed: {exc}"
            log.error("Asterisk reload for %s failed: %s", ", ".join(reasons), exc)
            await self._publish({"type": EVENT_RELOADED, "ok": False, "error": str(exc)[:300]})
            return
        self.reloads += 1
        self.last_report = report
        log.info("Asterisk reloaded for %s: %s", ", ".join(reasons), report)
        await self._publish({"type": EVENT_RELOADED, "ok": True, "reasons": reasons})

    async def _publish(self, event: dict[str, Any]) -> None:
        assert self._client is not None
        try:
            await self._client.publish(LiveKeys(self.prefix).events, json.dumps(event))
        except Exception as exc:  # the feed is informative; the reload already happened
            log.warning("could not publish %s: %s", event["type"], exc)


def _reason(message: dict[str, Any]) -> str:
    try:
        data = json.loads(message["data"])
        return str(data.get("reason") or EVENT_CONFIG_CHANGED)
    except (ValueError, TypeError, AttributeError):
        return EVENT_CONFIG_CHANGED
