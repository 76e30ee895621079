"""AMI client: panoramisk's protocol and message parsing, our own connection life cycle.

What is wrapped, and why:

* panoramisk's ``Manager`` reconnects on a fixed 2 s timer, also after ``close()``, and
  reports neither a refused login nor a lost connection to its owner. Here one background
  task owns the connection: exponential back-off with jitter (0.5 s → 30 s), a refused
  login backs off too and is logged as such, ``close()`` really stops.
* panoramisk runs coroutine callbacks with ``ensure_future`` and never looks at the result,
  so an exception in a callback vanishes (at best "Task exception was never retrieved").
  Every callback here is wrapped: the exception is logged with the event, and the task is
  kept until it finishes.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from panoramisk import Manager
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

log = logging.getLogger(__name__)

EventCallback = Callable[[Message], Awaitable[None]]


class AmiError(Exception):
    pass


class AmiNotConnected(AmiError):
    pass


class _Manager(Manager):
    """panoramisk's Manager with reconnection handed to :class:`AmiClient`."""

    def __init__(self, on_lost: Callable[[Exception | None], None], **config: Any) -> None:
        super().__init__(**config)
        self.pinger: asyncio.TimerHandle | None = None
        self._on_lost = on_lost

    def connection_lost(self, exc: Exception | None) -> None:
        self._connected = False
        self.authenticated = False
        if self.pinger:
            self.pinger.cancel()
            self.pinger = None
        self._on_lost(exc)


class AmiClient:
    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        min_backoff: float = 0.5,
        max_backoff: float = 30.0,
        connect_timeout: float = 5.0,
        ping_interval: int = 10,
    ) -> None:
        self.host = host
        self.port = port
        self._username = username
        self._secret = secret
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.connect_timeout = connect_timeout
        self.ping_interval = ping_interval
        self._callbacks: dict[str, list[EventCallback]] = {}
        self._manager: _Manager | None = None
        self._lost = asyncio.Event()
        self._ready = asyncio.Event()
        self._closing = False
        self._runner: asyncio.Task[None] | None = None
        self._callback_tasks: set[asyncio.Task[None]] = set()
        self.connections = 0  # successful logins, for tests and metrics
        self.callback_errors = 0

    # -- public API --------------------------------------------------------------------------------
    def on(self, event: str, callback: EventCallback) -> None:
        """Call ``callback(event)`` for every AMI event named ``event`` (exact name)."""
        self._callbacks.setdefault(event, []).append(callback)

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    async def connect(self, wait: float | None = None) -> None:
        """Start the connection task; with ``wait``, also wait that long for the first login."""
        if self._runner is None:
            self._runner = asyncio.get_running_loop().create_task(self._run(), name="ami-connection")
        if wait is not None:
            await asyncio.wait_for(self._ready.wait(), wait)

    async def send_action(
        self, action: Mapping[str, Any], timeout: float = 10.0, as_list: bool | None = None
    ) -> Any:
        if self._manager is None or not self._ready.is_set():
            raise AmiNotConnected(f"AMI at {self.host}:{self.port} is not connected")
        return await asyncio.wait_for(self._manager.send_action(dict(action), as_list=as_list), timeout)

    async def originate(
        self,
        *,
        channel: str,
        context: str,
        exten: str = "s",
        priority: int = 1,
        caller_id: str,
        timeout_ms: int = 30_000,
        variables: Mapping[str, str] | None = None,
        action_id: str | None = None,
    ) -> Any:
        """Place a call asynchronously; returns once Asterisk queued it.

        The outcome arrives later as an ``OriginateResponse`` event carrying ``action_id``
        (panoramisk would otherwise hold the response open until the call is over).
        """
        action: dict[str, Any] = {
            "Action": "Originate",
            "Channel": channel,
            "Context": context,
            "Exten": exten,
            "Priority": str(priority),
            "CallerID": caller_id,
            "Timeout": str(timeout_ms),
            "Async": "true",
        }
        if variables:
            # One "Variable: NAME=value" per variable: panoramisk sends a list as repeated headers.
            action["Variable"] = [f"{name}={value}" for name, value in variables.items()]
        if action_id:
            action["ActionID"] = action_id
        return await self.send_action(action, as_list=False)

    async def close(self) -> None:
        self._closing = True
        self._lost.set()
        if self._manager is not None:
            self._manager.close()
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        if self._callback_tasks:
            await asyncio.gather(*list(self._callback_tasks), return_exceptions=True)

    # -- connection life cycle -----------------------------------------------------------------------
    async def _run(self) -> None:
        delay = self.min_backoff
        loop = asyncio.get_running_loop()
        while not self._closing:
            started = loop.time()
            try:
                await self._connect_once()
                await self._lost.wait()
                log.warning("AMI connection to %s:%s lost", self.host, self.port)
            except (OSError, TimeoutError) as exc:
                log.warning("AMI %s:%s unreachable: %s", self.host, self.port, exc or type(exc).__name__)
            except AmiError as exc:
                log.error("AMI %s:%s: %s", self.host, self.port, exc)
            finally:
                self._ready.clear()
                if self._manager is not None:
                    self._manager.close()
                    self._manager = None
            if self._closing:
                return
            if loop.time() - started > 30:  # it had been up a while: start the back-off afresh
                delay = self.min_backoff
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(self.max_backoff, delay * 2)

    async def _connect_once(self) -> None:
        loop = asyncio.get_running_loop()
        self._lost.clear()
        manager = _Manager(
            self._connection_lost,
            host=self.host,
            port=self.port,
            username=self._username,
            secret=self._secret,
            loop=loop,
            events="on",
            ping_delay=self.ping_interval,
            ping_interval=self.ping_interval,
        )
        for pattern in self._callbacks:
            manager.register_event(pattern, self._dispatch)
        transport_and_protocol = await asyncio.wait_for(
            loop.create_connection(AMIProtocol, self.host, self.port), self.connect_timeout
        )
        done: asyncio.Future[Any] = loop.create_future()
        done.set_result(transport_and_protocol)
        manager.connection_made(done)  # sets up the protocol and sends Login
        self._manager = manager
        login = manager.authenticated_future
        if login is None:
            raise AmiError("no login was sent")
        response = await asyncio.wait_for(login, self.connect_timeout)
        if not getattr(response, "success", False):
            raise AmiError(f"login refused for user {self._username!r}: {response.get('Message', response)}")
        self.connections += 1
        self._ready.set()
        log.info("AMI logged in to %s:%s", self.host, self.port)

    def _connection_lost(self, _exc: Exception | None) -> None:
        self._lost.set()

    def _dispatch(self, _manager: Manager, event: Message) -> None:
        for callback in self._callbacks.get(event.get("Event", ""), ()):
            task = asyncio.get_running_loop().create_task(self._guarded(callback, event))
            self._callback_tasks.add(task)
            task.add_done_callback(self._callback_tasks.discard)

    async def _guarded(self, callback: EventCallback, event: Message) -> None:
        try:
            await callback(event)
        except Exception:
            self.callback_errors += 1
            log.exception(
                "AMI callback %s failed on %s event (Uniqueid %s)",
                getattr(callback, "__qualname__", callback),
                event.get("Event"),
                event.get("Uniqueid"),
            )
