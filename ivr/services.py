"""What the call flows use, built once per process and handed to every FastAGI route.

The flows see these as plain collaborators; the adapters behind them (SQLAlchemy, Redis,
the prompt generator) are wired here and nowhere else in ``ivr/``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from burgernet.calls import CallLog
from burgernet.live import AsyncLiveState
from burgernet.routing_service import RoutingService
from burgernet.settings import Settings
from recordings.paths import asterisk_sound_name, prompt_path

log = logging.getLogger(__name__)


class Prompts(Protocol):
    """Sound names (relative to Asterisk's sounds dir, no extension) for what the IVR says."""

    def menu_item(self, language: str, digit: str, title: str) -> str: ...


@dataclass
class IvrServices:
    settings: Settings
    routing: RoutingService
    calls: CallLog
    live: AsyncLiveState
    prompts: Prompts
    opt_out: Callable[[int], Awaitable[bool]]  # participant id → found
    # Background writes (call log) that must not hold up the caller; kept so none is lost.
    background: set[asyncio.Task[Any]] = field(default_factory=set)
    # One writer thread for the callback log: FastAGI and AMI write the same rows, and in
    # this order they never race (SQLite would refuse a stale writer; order matters anyway).
    call_log_writer: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="call-log")
    )

    def sound(self, language: str, name: str) -> str:
        """A catalogue prompt as Asterisk plays it: absolute, no extension (BN_SOUNDS in the dialplan)."""
        return asterisk_sound_name(prompt_path(self.settings, language, name).absolute())

    def in_background(self, what: str, unique_id: str, work: Callable[[], Any]) -> None:
        """Run a blocking write off the event loop without making the caller wait for it."""

        async def run() -> None:
            try:
                await asyncio.get_running_loop().run_in_executor(self.call_log_writer, work)
            except Exception:
                log.exception("call %s: %s failed", unique_id, what)

        task = asyncio.get_running_loop().create_task(run(), name=f"{what}:{unique_id}")
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    def spawn(self, what: str, unique_id: str, work: Coroutine[Any, Any, Any]) -> None:
        """Run a coroutine (a Redis publish) after the caller has moved on; errors are logged."""

        async def run() -> None:
            try:
                await work
            except Exception:
                log.exception("call %s: %s failed", unique_id, what)

        task = asyncio.get_running_loop().create_task(run(), name=f"{what}:{unique_id}")
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def drain(self) -> None:
        if self.background:
            await asyncio.gather(*list(self.background), return_exceptions=True)
        self.call_log_writer.shutdown(wait=True)
