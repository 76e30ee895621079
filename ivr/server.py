"""The FastAGI server: asyncio streams, bounded header reading, one error path for every flow.

Why not panoramisk's ``fast_agi.Application`` as it is: its ``add_route`` calls
``asyncio.coroutine`` (gone in Python 3.11) for plain functions, its header loop
``while b'\\n\\n' not in buffer`` spins forever on an early EOF and has no size limit, and
its handler swallows every exception without telling Asterisk anything. This server keeps
its model (a table of script name → coroutine) and fixes those:

* headers are read line by line with a size cap, a line cap and a deadline;
* a flow that raises, times out or names an unknown script sends the channel to the
  failure context (``SET CONTEXT/EXTENSION/PRIORITY`` + ``BN_ROUTE=failure``), logged with
  the call's unique id — the dialplan then rings the fallback pool: no dead end;
* beyond ``max_sessions`` concurrent calls, a new call is sent to the failure context at
  once rather than queued, so a flood never leaves callers in silence;
* every connection task is kept in a set until it finishes; ``close()`` lets in-flight
  calls finish for a grace period, then sends the ones still running to the failure context
  too (a restart of this service never leaves a caller in silence).

A hang-up is not an error: it ends the session quietly (counted, logged at INFO).

Time bounds, from the caller's side in: the dialplan's AGI deadline (``agi_deadline``, see
:mod:`burgernet.channel_vars`) is what keeps a caller out of silence when this process freezes;
every session moves it forward before each prompt. ``flow_timeout`` and ``command_timeout``
are this side's own bounds, for an Asterisk that stops answering: they are longer than any
prompt, so the dialplan's deadline always acts first for the caller.

The health probe (``agi_network_script: healthz``, :data:`~burgernet.channel_vars.AGI_HEALTH`)
is answered with ``NOOP burgernet-healthy`` from the event loop itself, so a frozen loop fails
it; it is no call (not counted, not logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from burgernet import channel_vars as cv
from ivr.agi import AgiEnvironment, AgiError, AgiSession, ChannelHungUp

log = logging.getLogger(__name__)

Handler = Callable[[AgiSession], Awaitable[None]]

# What the health probe (cv.AGI_HEALTH) gets back: a harmless AGI command naming us.
PROBE_ANSWER = b"NOOP burgernet-healthy\n"


class HeaderError(Exception):
    pass


@dataclass
class ServerCounters:
    sessions: int = 0
    completed: int = 0
    hung_up: int = 0
    failed: int = 0  # flows that raised or timed out: sent to the failure context
    rejected: int = 0  # over capacity or unknown script: sent to the failure context
    malformed: int = 0  # connections that never sent a usable AGI header


class FastAgiServer:
    def __init__(
        self,
        routes: Mapping[str, Handler],
        host: str = "127.0.0.1",
        port: int = 4573,
        failure_context: str = cv.CTX_FAILURE,
        *,
        max_sessions: int = 500,
        header_timeout: float = 5.0,
        max_header_bytes: int = 16 * 1024,
        max_header_lines: int = 200,
        flow_timeout: float = 120.0,
        command_timeout: float = 30.0,
        agi_deadline: float | None = cv.AGI_DEADLINE_SECONDS,
    ) -> None:
        self.routes = dict(routes)
        self.host = host
        self.port = port
        self.failure_context = failure_context
        self.max_sessions = max_sessions
        self.header_timeout = header_timeout
        self.max_header_bytes = max_header_bytes
        self.max_header_lines = max_header_lines
        self.flow_timeout = flow_timeout
        self.command_timeout = command_timeout
        # The margin the dialplan's AGI deadline keeps after each prompt (None: do not touch it,
        # for a dialplan that sets none).
        self.agi_deadline = agi_deadline
        self.counters = ServerCounters()
        # How long each completed flow took (seconds), newest last: for metrics and benchmarks.
        self.flow_durations: deque[float] = deque(maxlen=100_000)
        self._active = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._shutting_down = False
        self._bound_port: int | None = None

    @property
    def active(self) -> int:
        """Calls whose flow is running now."""
        return self._active

    @property
    def bound_port(self) -> int:
        """The port actually listened on (``port=0`` picks a free one); kept after close()."""
        if self._bound_port is None:
            raise RuntimeError("the FastAGI server was not started")
        return self._bound_port

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self.host, self.port, limit=self.max_header_bytes
        )
        self._bound_port = int(self._server.sockets[0].getsockname()[1])

    async def close(self, grace: float = 10.0) -> None:
        """Stop accepting calls; give running flows ``grace`` seconds, then fail them over."""
        if self._server is not None:
            self._server.close()
        if self._tasks:
            _done, pending = await asyncio.wait(list(self._tasks), timeout=grace)
            self._shutting_down = True
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._server is not None:
            # After the sessions: since 3.12 wait_closed() also waits for every connection.
            await self._server.wait_closed()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read_headers(self, reader: asyncio.StreamReader) -> dict[str, str]:
        headers: dict[str, str] = {}
        total = 0
        for _ in range(self.max_header_lines):
            try:
                raw = await reader.readline()
            except (asyncio.LimitOverrunError, ValueError):
                raise HeaderError("header line too long") from None
            if not raw:
                raise HeaderError("connection closed before the end of the AGI header")
            total += len(raw)
            if total > self.max_header_bytes:
                raise HeaderError("AGI header too large")
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if not line:
                if not headers:
                    raise HeaderError("empty AGI header")
                return headers
            name, separator, value = line.partition(":")
            if not separator or not name.startswith("agi_"):
                raise HeaderError(f"not an AGI header line: {line[:60]!r}")
            headers[name.strip()] = value.strip()
        raise HeaderError("too many AGI header lines")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                headers = await asyncio.wait_for(self._read_headers(reader), self.header_timeout)
            except (HeaderError, TimeoutError, ConnectionError) as exc:
                self.counters.sessions += 1
                self.counters.malformed += 1
                log.warning(
                    "FastAGI connection from %s dropped: %s",
                    writer.get_extra_info("peername"),
                    exc or "no complete AGI header in time",
                )
                return
            env = AgiEnvironment.from_headers(headers)
            if env.script == cv.AGI_HEALTH:
                await self._answer_probe(reader, writer)
                return
            self.counters.sessions += 1
            session = AgiSession(
                env,
                reader,
                writer,
                command_timeout=self.command_timeout,
                deadline_margin=self.agi_deadline,
            )
            handler = self.routes.get(env.script)
            if handler is None:
                self.counters.rejected += 1
                log.error("call %s: unknown AGI script %r", env.unique_id, env.script)
                await self._send_to_failure(session, "unknown script")
                return
            if self._active >= self.max_sessions:
                # Refused at once, not queued: the failure context rings a person right away.
                self.counters.rejected += 1
                log.error("call %s: %s calls in progress, over capacity", env.unique_id, self._active)
                await self._send_to_failure(session, "over capacity")
                return
            await self._run_flow(handler, session)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _answer_probe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """The supervisor's health probe: one NOOP, its one answer line, done. Not a call."""
        with contextlib.suppress(ConnectionError, TimeoutError, ValueError, asyncio.LimitOverrunError):
            writer.write(PROBE_ANSWER)
            await writer.drain()
            await asyncio.wait_for(reader.readline(), self.header_timeout)
        log.debug("FastAGI health probe answered")

    async def _run_flow(self, handler: Handler, session: AgiSession) -> None:
        """The one error path: whatever goes wrong, the call ends up in the failure context."""
        env = session.env
        self._active += 1
        started = time.perf_counter()
        try:
            await asyncio.wait_for(handler(session), self.flow_timeout)
            self.counters.completed += 1
            self.flow_durations.append(time.perf_counter() - started)
        except asyncio.CancelledError:
            if self._shutting_down:
                self.counters.failed += 1
                log.error("call %s: %s still running at shutdown", env.unique_id, env.script)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._send_to_failure(session, "shutting down"), 2.0)
            raise
        except Exception as exc:
            if _only_hang_ups(exc):
                self.counters.hung_up += 1
                log.info("call %s: caller hung up during %s", env.unique_id, env.script)
                return
            self.counters.failed += 1
            why = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
            log.exception("call %s: %s failed (%s): %s", env.unique_id, env.script, why, exc)
            await self._send_to_failure(session, why)
        finally:
            self._active -= 1

    async def _send_to_failure(self, session: AgiSession, why: str) -> None:
        """Leave the channel in the failure context; the dialplan takes it from there."""
        if session.hung_up:
            return  # nobody left to route; the dialplan runs its h extension
        try:
            # The dialplan's AGI deadline: the failure context has no T extension, so it must
            # not fire once the jump is set. First a fresh margin for these few commands (the
            # flow may have spent nearly all of it), then, with the jump set, disarmed: the
            # dialplan's own reset right after AGI() is skipped by the jump.
            await session.extend_deadline()
            await session.set_variable(cv.VAR_REASON, f"fastagi: {why}")
            await session.set_variable(cv.VAR_ROUTE, cv.ROUTE_FAILURE)
            await session.goto(self.failure_context, "s", 1)
            await session.clear_deadline()
        except (AgiError, ConnectionError, TimeoutError) as exc:
            # Could not even say so; the dialplan treats an empty or failed AGI the same way.
            log.warning("call %s: could not send to %s: %s", session.env.unique_id, self.failure_context, exc)


def _only_hang_ups(exc: BaseException) -> bool:
    """A hang-up, also when it comes out of a TaskGroup wrapped in an ExceptionGroup."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_only_hang_ups(inner) for inner in exc.exceptions)
    return isinstance(exc, ChannelHungUp)
