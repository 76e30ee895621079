"""AMI client: panoramisk's protocol and message parsing, our own connection life cycle.

What is wrapped, and why:

* panoramisk's ``Manager`` reconnects on a fixed 2 s timer, also after ``close()``, and
  reports neither a refused login nor a lost connection to its owner. Here one background
  task owns the connection: exponential back-off with jitter (0.5 s → 30 s), a refused
  login backs off too and is logged as such, ``close()`` really stops.
* panoramisk keeps actions that were in flight when the connection dropped and sends them
  again after the next login. For ``Originate`` that is a second alert call to the same
  person. Here a new ``Manager`` serves each connection, and every action still waiting when
  the connection goes fails with :class:`AmiConnectionLost` (the broadcaster decides).
* panoramisk's pinger sends ``Ping`` and never looks at the answer, so a half-open TCP
  connection looks alive for ever. Here an unanswered ``Ping`` drops the connection.
* panoramisk runs coroutine callbacks with ``ensure_future`` and never looks at the result,
  so an exception in a callback vanishes (at best "Task exception was never retrieved").
  Every callback here is wrapped: the exception is logged with the event, and the task is
  kept until it finishes.
* panoramisk writes header values as they are; a line break in a value would start a new
  header or a new action (header injection). Here such an action is refused.
* After every login, the callbacks given to :meth:`AmiClient.on_connect` run: events sent while
  the connection was down are lost for good, so whoever follows state through events reads
  it afresh from Asterisk there (presence, calls, trunk channels).
* An ``Originate`` to the trunk goes only to a Dutch fixed or mobile number
  (:func:`burgernet.phone.dialable_national`): whatever code asks, never a premium, foreign
  or short number (the dialplan checks call-backs the same way).
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from panoramisk import Manager
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from burgernet.phone import NotDialable, dialable_national

log = logging.getLogger(__name__)

EventCallback = Callable[[Message], Awaitable[None]]
ConnectCallback = Callable[[], Awaitable[None]]

# Connection states, as ``AmiClient.state`` reports them.
STATE_IDLE = "idle"  # connect() not called yet
STATE_CONNECTING = "connecting"
STATE_CONNECTED = "connected"  # logged in
STATE_BACKING_OFF = "backing_off"  # waiting before the next attempt
STATE_CLOSED = "closed"


class AmiError(Exception):
    pass


class AmiNotConnected(AmiError):
    """No logged-in connection right now: the action was not sent."""


class AmiConnectionLost(AmiError):
    """The connection went while the action waited for its answer: it may or may not have run."""


class AmiLoginRefused(AmiError):
    pass


class _Manager(Manager):
    """panoramisk's Manager for one connection: reconnection and pinging belong to AmiClient."""

    def __init__(self, on_lost: Callable[[Exception | None], None], **config: Any) -> None:
        super().__init__(**config)
        self.pinger: asyncio.TimerHandle | None = None
        self._on_lost = on_lost
        self._waiting: set[asyncio.Future[Any]] = set()

    def send_action(self, action: Any, as_list: bool | None = None, **kwargs: Any) -> Any:
        future = super().send_action(action, as_list=as_list, **kwargs)
        self._waiting.add(future)
        future.add_done_callback(self._waiting.discard)
        return future

    def ping(self) -> None:
        """Replaced by AmiClient's liveness check, which also reads the answer."""

    def login(self, future: asyncio.Future[Any]) -> bool:
        # panoramisk calls future.result() here; a login failed by fail_waiting() would raise
        # inside a loop callback and be reported as "Exception in callback".
        self.authenticated_future = None
        if future.cancelled() or future.exception() is not None:
            self.authenticated = False
            return False
        self.authenticated = bool(future.result().success)
        return self.authenticated

    def fail_waiting(self, reason: str) -> None:
        """Every action still waiting fails now, instead of being sent again on a later login."""
        self.awaiting_actions.clear()
        for future in list(self._waiting):
            if not future.done():
                future.set_exception(AmiConnectionLost(reason))
                future.exception()  # nobody may be waiting for it any more: mark it as seen

    def connection_lost(self, exc: Exception | None) -> None:
        self._connected = False
        self.authenticated = False
        self.fail_waiting(f"AMI connection lost: {exc or 'closed by Asterisk'}")
        self._on_lost(exc)


class AmiClient:
    """One AMI connection that keeps itself up; events go to async callbacks by name pattern."""

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
        ping_interval: float = 10.0,
        ping_timeout: float = 5.0,
    ) -> None:
        self.host = host
        self.port = port
        self._username = username
        self._secret = secret
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.connect_timeout = connect_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self._callbacks: dict[str, list[EventCallback]] = {}
        self._connect_callbacks: list[ConnectCallback] = []
        self._manager: _Manager | None = None
        self._lost = asyncio.Event()
        self._ready = asyncio.Event()
        self._closing = False
        self._runner: asyncio.Task[None] | None = None
        self._callback_tasks: set[asyncio.Task[None]] = set()
        self.state = STATE_IDLE
        self.connections = 0  # successful logins, for tests and metrics
        self.failed_attempts = 0  # connection attempts that did not end in a login
        self.callback_errors = 0
        # The waits before the latest reconnection attempts (seconds), newest last.
        self.backoff_history: deque[float] = deque(maxlen=100)

    # -- public API --------------------------------------------------------------------------------
    def on(self, pattern: str, callback: EventCallback) -> None:
        """Call ``await callback(event)`` for every AMI event whose name matches ``pattern``.

        ``pattern`` is an event name ("Hangup") or a shell pattern ("Agent*", "*"), case as
        Asterisk spells it. An exception in the callback is logged with the event; it never
        reaches the connection.
        """
        new = pattern not in self._callbacks
        self._callbacks.setdefault(pattern, []).append(callback)
        if new and self._manager is not None:
            self._manager.register_event(pattern, self._dispatcher(pattern))

    def on_connect(self, callback: ConnectCallback) -> None:
        """Call ``await callback()`` after every login, the first and each reconnection.

        Runs as a task of its own (actions may be sent from it); an exception is logged.
        """
        self._connect_callbacks.append(callback)

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    async def list_action(self, action: Mapping[str, Any], timeout: float = 10.0) -> list[Message]:
        """An action answered by a list of events (``Status``, ``DeviceStateList``...): the events.

        The acknowledgement and the closing ``...Complete`` event are left out. A refusal
        (``Response: Error``, e.g. "Permission denied") raises :class:`AmiError`: panoramisk,
        asked for a list, would wait for the list that never comes.
        """
        answer = await self.send_action(action, timeout=timeout, as_list=None)
        if not isinstance(answer, list):
            raise AmiError(f"AMI {action.get('Action')} refused: {answer.get('Message', answer)}")
        return [
            event
            for event in answer[1:]
            if "Event" in event and not str(event.get("Event", "")).endswith("Complete")
        ]

    async def live_channels(self, timeout: float = 10.0) -> set[str]:
        """The unique ids of every channel Asterisk has right now (AMI ``Status``).

        ``Status`` needs the write privilege ``reporting`` (or ``call``/``system``); it reads
        and changes nothing (see manager.conf.j2).
        """
        events = await self.list_action({"Action": "Status"}, timeout=timeout)
        return {str(e.get("Uniqueid")) for e in events if e.get("Uniqueid")}

    async def device_states(self, timeout: float = 10.0) -> dict[str, str]:
        """Device → state (``PJSIP/c-mn-1`` → ``NOT_INUSE``) from Asterisk's device-state cache
        (AMI ``DeviceStateList``, write privilege ``reporting``): the states the
        ``DeviceStateChange`` events reported, including those sent while we were away."""
        events = await self.list_action({"Action": "DeviceStateList"}, timeout=timeout)
        return {str(e.get("Device")): str(e.get("State")) for e in events if e.get("Device")}

    async def connect(self, wait: float | None = None) -> None:
        """Start the connection task; with ``wait``, also wait that long for the first login.

        Without ``wait`` it returns at once and keeps trying in the background, so a service can
        start before Asterisk does.
        """
        if self._closing:
            raise AmiError("this AMI client was closed")
        if self._runner is None:
            self._runner = asyncio.get_running_loop().create_task(self._run(), name="ami-connection")
        if wait is not None:
            await asyncio.wait_for(self._ready.wait(), wait)

    async def wait_connected(self, timeout: float) -> None:
        await asyncio.wait_for(self._ready.wait(), timeout)

    async def send_action(
        self, action: Mapping[str, Any], timeout: float = 10.0, as_list: bool | None = None
    ) -> Any:
        """Send one action and return its answer (a ``Message``, or a list with ``as_list``).

        Raises :class:`AmiNotConnected` (not sent), :class:`AmiConnectionLost` (sent, fate
        unknown), ``TimeoutError``, ``ValueError`` for a line break in a header value,
        :class:`burgernet.phone.NotDialable` for an ``Originate`` to a number we never call.
        """
        _refuse_line_breaks(action)
        _refuse_undialable_trunk_calls(action)
        manager = self._manager
        if manager is None or not self._ready.is_set():
            raise AmiNotConnected(f"AMI at {self.host}:{self.port} is not connected")
        return await asyncio.wait_for(manager.send_action(dict(action), as_list=as_list), timeout)

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
        asynchronous: bool = True,
    ) -> Any:
        """Place a call; returns Asterisk's ``Response`` message.

        With ``asynchronous`` (the default) it returns once Asterisk queued the call; the
        outcome arrives later as an ``OriginateResponse`` event carrying ``action_id``
        (panoramisk would otherwise hold the response open until the call is over). Without
        it, the answer comes when the call was answered or failed (up to ``timeout_ms``).
        """
        action: dict[str, Any] = {
            "Action": "Originate",
            "Channel": channel,
            "Context": context,
            "Exten": exten,
            "Priority": str(priority),
            "CallerID": caller_id,
            "Timeout": str(int(timeout_ms)),
            "Async": "true" if asynchronous else "false",
        }
        if variables:
            # One "Variable: NAME=value" per variable: panoramisk sends a list as repeated headers.
            for name in variables:
                if not _VARIABLE_NAME.match(name):
                    raise ValueError(f"unsafe channel variable name {name!r}")
            action["Variable"] = [f"{name}={value}" for name, value in variables.items()]
        if action_id:
            action["ActionID"] = action_id
        timeout = 10.0 if asynchronous else timeout_ms / 1000 + 10
        return await self.send_action(action, timeout=timeout, as_list=False)

    async def close(self) -> None:
        """Log off for good: no reconnection after this; callbacks still running may finish."""
        self._closing = True
        self.state = STATE_CLOSED
        self._lost.set()
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        self._drop_manager("AMI client closed")
        if self._callback_tasks:
            await asyncio.gather(*list(self._callback_tasks), return_exceptions=True)

    # -- connection life cycle -----------------------------------------------------------------------
    def next_backoff(self, previous: float | None) -> float:
        """The wait before the next attempt: doubling from ``min_backoff`` up to ``max_backoff``."""
        return self.min_backoff if previous is None else min(self.max_backoff, previous * 2)

    async def _run(self) -> None:
        base: float | None = None
        loop = asyncio.get_running_loop()
        while not self._closing:
            started = loop.time()
            self.state = STATE_CONNECTING
            try:
                await self._connect_once()
                await self._stay_connected()
                if not self._closing:
                    log.warning("AMI connection to %s:%s lost", self.host, self.port)
            except (OSError, TimeoutError) as exc:
                self.failed_attempts += 1
                log.warning("AMI %s:%s unreachable: %s", self.host, self.port, exc or type(exc).__name__)
            except AmiError as exc:
                self.failed_attempts += 1
                log.error("AMI %s:%s: %s", self.host, self.port, exc)
            finally:
                self._ready.clear()
                self._drop_manager("AMI connection closed")
            if self._closing:
                return
            if loop.time() - started > 30:  # it had been up a while: start the back-off afresh
                base = None
            base = self.next_backoff(base)
            delay = base * random.uniform(0.8, 1.2)  # jitter: many clients do not retry in step
            self.backoff_history.append(delay)
            self.state = STATE_BACKING_OFF
            await asyncio.sleep(delay)

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
        )
        for pattern in self._callbacks:
            manager.register_event(pattern, self._dispatcher(pattern))
        transport_and_protocol = await asyncio.wait_for(
            loop.create_connection(AMIProtocol, self.host, self.port), self.connect_timeout
        )
        done: asyncio.Future[Any] = loop.create_future()
        done.set_result(transport_and_protocol)
        manager.connection_made(done)  # panoramisk's own setup: protocol wiring, sends Login
        self._manager = manager
        login = manager.authenticated_future
        if login is None:
            raise AmiError("no login was sent")
        response = await asyncio.wait_for(login, self.connect_timeout)
        if not getattr(response, "success", False):
            raise AmiLoginRefused(
                f"login refused for user {self._username!r}: {response.get('Message', response)}"
            )
        self.connections += 1
        self.state = STATE_CONNECTED
        self._ready.set()
        log.info("AMI logged in to %s:%s", self.host, self.port)
        for callback in self._connect_callbacks:
            task = loop.create_task(self._guarded_connect(callback), name="ami-on-connect")
            self._callback_tasks.add(task)
            task.add_done_callback(self._callback_tasks.discard)

    async def _guarded_connect(self, callback: ConnectCallback) -> None:
        try:
            await callback()
        except Exception:
            self.callback_errors += 1
            log.exception("AMI on-connect callback %s failed", getattr(callback, "__qualname__", callback))

    async def _stay_connected(self) -> None:
        """Return when the connection is lost, or when a Ping goes unanswered (half-open TCP)."""
        while True:
            try:
                await asyncio.wait_for(self._lost.wait(), self.ping_interval)
                return
            except TimeoutError:
                pass
            manager = self._manager
            if manager is None:
                return
            try:
                await asyncio.wait_for(manager.send_action({"Action": "Ping"}), self.ping_timeout)
            except (TimeoutError, AmiConnectionLost):
                log.warning("AMI %s:%s did not answer a Ping: reconnecting", self.host, self.port)
                return

    def _drop_manager(self, reason: str) -> None:
        manager, self._manager = self._manager, None
        if manager is not None:
            manager.fail_waiting(reason)
            manager.close()

    def _connection_lost(self, _exc: Exception | None) -> None:
        self._ready.clear()
        self._lost.set()

    def _dispatcher(self, pattern: str) -> Callable[[Manager, Message], None]:
        # panoramisk calls this (synchronously) for every event matching ``pattern``.
        def dispatch(_manager: Manager, event: Message) -> None:
            loop = asyncio.get_running_loop()
            for callback in list(self._callbacks.get(pattern, ())):
                task = loop.create_task(self._guarded(callback, event))
                self._callback_tasks.add(task)
                task.add_done_callback(self._callback_tasks.discard)

        return dispatch

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


_VARIABLE_NAME = re.compile(r"^[A-Za-z0-9_()\-.:]+$")
# PJSIP/<number>@trunk, the form every call over the trunk takes.
_TRUNK_CHANNEL = re.compile(r"^PJSIP/(?P<number>[^@/]*)@trunk$", re.IGNORECASE)


def _refuse_undialable_trunk_calls(action: Mapping[str, Any]) -> None:
    if str(action.get("Action", "")).lower() != "originate":
        return
    channel = str(action.get("Channel", ""))
    if "trunk" not in channel.lower():
        return
    match = _TRUNK_CHANNEL.match(channel)
    if match is None or dialable_national(match["number"]) != match["number"]:
        raise NotDialable(f"AMI Originate to {channel!r}: only PJSIP/<Dutch fixed or mobile number>@trunk")


def _refuse_line_breaks(action: Mapping[str, Any]) -> None:
    for key, value in action.items():
        values: Iterable[Any] = value if isinstance(value, list | tuple) else (value,)
        for text in (key, *values):
            if "\r" in str(text) or "\n" in str(text):
                raise ValueError(f"AMI header {key!r} contains a line break")
