"""The panel's one live channel: Redis pub/sub → server-sent events (``GET /live/events``).

The core publishes domain events through :class:`burgernet.ports.LiveEventPort` (kinds in
:class:`burgernet.ports.LiveEventKind`); every page that follows something live (the action
page, the worklist, the call card) reads this one stream through ``static/live_events.js``,
which opens a single ``EventSource`` per page whatever number of scripts listen.

What a reader gets (need-to-know, :mod:`callback_api.access`):

- an event with ``for_endpoint`` goes only to the user linked to that centralist's SIP
  endpoint (the call card: "this call rings your phone");
- numbers in an event (``PERSONAL_FIELDS``) are masked unless the reader may read the personal
  data of the event's action;
- ``?action=<id>`` narrows the stream to that action's events (plus the reader's own
  ``for_endpoint`` events).

Threads: the panel runs under waitress, a *threaded* WSGI server (``burgernet web serve
--threads``, 32 by default): every open stream holds one worker thread while it waits on Redis.
So that streams can never take every thread (and leave the pages themselves queued), at most
``LIVE_STREAM_SLOTS`` streams run at once per process (``web serve`` sets it to three quarters of
its threads); a stream asked for beyond that gets only ``retry:`` and ends, and the browser comes
back a little later. Every stream also ends by itself after about ``LIFETIME_SECONDS`` (with
jitter, so a room of browsers does not reconnect in step): a browser reconnects after ``retry:``
milliseconds, a closed tab's thread is freed at the next heartbeat at the latest. Events published
while a browser is reconnecting are not replayed: pages re-read their data on every ``open``.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from flask import Blueprint, Response, current_app, request, stream_with_context
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from burgernet.db import session_scope
from burgernet.live import LiveState
from burgernet.models import Centralist
from callback_api.access import NeedToKnowService, Reader
from callback_api.security import ALL_ROLES, reader, roles_required
from callback_api.state import panel

bp = Blueprint("live", __name__)

# Read when a stream starts (tests and the screenshot script shorten them).
HEARTBEAT_SECONDS = 15.0
LIFETIME_SECONDS = 300.0
RETRY_MILLISECONDS = 3000
# When no ``LIVE_STREAM_SLOTS`` is configured (the panel served by something else than web serve).
DEFAULT_STREAM_SLOTS = 24
# Fields of live events that carry a caller's number: masked without need-to-know.
PERSONAL_FIELDS = frozenset({"caller", "caller_number", "number", "phone", "callback_number"})


def sse_message(event: dict[str, Any]) -> str:
    """One event in the text/event-stream format, named by its ``type``."""
    kind = str(event.get("type", "message")).replace("\n", " ").replace("\r", " ")[:40]
    return f"event: {kind}\ndata: {json.dumps(event, default=str)}\n\n"


class StreamSlots:
    """How many streams may hold a worker thread at once in this process."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._semaphore = threading.BoundedSemaphore(capacity)

    def try_take(self) -> bool:
        return self._semaphore.acquire(blocking=False)

    def give_back(self) -> None:
        self._semaphore.release()


class LiveEventStream:
    """One reader's subscription, as an iterator of SSE text chunks."""

    def __init__(
        self,
        live: LiveState,
        sessions: sessionmaker[Session],
        reader: Reader,
        *,
        action_id: int | None = None,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        lifetime_seconds: float = LIFETIME_SECONDS,
        retry_milliseconds: int = RETRY_MILLISECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._live = live
        self._sessions = sessions
        self._reader = reader
        self._action_id = action_id
        self._heartbeat = heartbeat_seconds
        self._lifetime = lifetime_seconds
        self._retry = retry_milliseconds
        self._clock = clock
        self._need_to_know = NeedToKnowService(sessions)
        self._decided: dict[int | None, bool] = {}
        self._endpoint = self._reader_endpoint()

    def _reader_endpoint(self) -> str | None:
        if self._reader.centralist_id is None:
            return None
        with session_scope(self._sessions) as session:
            return session.scalar(
                select(Centralist.sip_endpoint).where(Centralist.id == self._reader.centralist_id)
            )

    def _may_read(self, action_id: object) -> bool:
        key = action_id if isinstance(action_id, int) else None
        if key not in self._decided:
            self._decided[key] = self._need_to_know.may_read(self._reader, key)
        return self._decided[key]

    def shown(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """The event as this reader gets it, or None when it is not for them."""
        addressed = event.get("for_endpoint")
        if addressed is not None:
            return event if addressed == self._endpoint else None
        if self._action_id is not None and event.get("action_id") != self._action_id:
            return None
        if PERSONAL_FIELDS.intersection(event) and not self._may_read(event.get("action_id")):
            return {key: ("****" if key in PERSONAL_FIELDS else value) for key, value in event.items()}
        return event

    def __iter__(self) -> Iterator[str]:
        pubsub = self._live.client.pubsub()
        pubsub.subscribe(self._live.keys.events)
        # Wait for Redis to confirm the subscription: only then is every later PUBLISH sure to
        # reach this stream (the "subscribed" line below promises the client exactly that).
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            reply = pubsub.get_message(timeout=0.1)
            if reply is not None and reply.get("type") == "subscribe":
                break
        started = last = self._clock()
        # Jitter: browsers that connected together do not all come back together.
        # A pseudo-random jitter is all this needs (nothing secret depends on it).
        ends_at = started + self._lifetime * random.uniform(0.85, 1.0)  # nosec B311
        try:
            # Sent once subscribed: no event published after this line reaches the client is lost.
            yield f"retry: {self._retry}\n: subscribed\n\n"
            while self._clock() < ends_at:
                message = pubsub.get_message(timeout=min(1.0, self._heartbeat))
                if message is not None and message.get("type") != "message":
                    continue
                if message is None:
                    if self._clock() - last >= self._heartbeat:
                        last = self._clock()
                        yield ": keepalive\n\n"
                    continue
                try:
                    event = json.loads(message["data"])
                except (TypeError, ValueError):
                    continue
                if not isinstance(event, dict):
                    continue
                shown = self.shown(event)
                if shown is not None:
                    last = self._clock()
                    yield sse_message(shown)
            yield ": lifetime over, reconnect\n\n"
        finally:
            pubsub.close()


def event_stream_response(chunks: Iterator[str], on_close: Callable[[], None] | None = None) -> Response:
    """A streaming ``text/event-stream`` response that proxies neither buffer nor cache."""

    def guarded() -> Iterator[str]:
        try:
            yield from chunks
        finally:
            if on_close is not None:
                on_close()

    response = Response(stream_with_context(guarded()), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
    return response


_slots_lock = threading.Lock()


def stream_slots() -> StreamSlots:
    """This app's stream slots (made on first use from ``LIVE_STREAM_SLOTS``)."""
    with _slots_lock:
        slots = current_app.extensions.get("burgernet_live_slots")
        if slots is None:
            capacity = int(current_app.config.get("LIVE_STREAM_SLOTS", DEFAULT_STREAM_SLOTS))
            slots = current_app.extensions["burgernet_live_slots"] = StreamSlots(max(1, capacity))
        return slots


def busy_response() -> Response:
    """All stream slots taken: come back later (EventSource reconnects after ``retry``)."""
    wait = RETRY_MILLISECONDS * 5 + random.randint(0, RETRY_MILLISECONDS * 5)  # nosec B311
    return event_stream_response(iter([f"retry: {wait}\n: busy, come back later\n\n"]))


@bp.route("/live/events")
@roles_required(ALL_ROLES)
def events() -> Response:
    action_id = request.args.get("action", type=int)
    slots = stream_slots()
    if not slots.try_take():
        return busy_response()
    try:
        context = panel().context
        stream = LiveEventStream(
            context.live,
            context.sessions,
            reader(),
            action_id=action_id,
            heartbeat_seconds=HEARTBEAT_SECONDS,
            lifetime_seconds=LIFETIME_SECONDS,
            retry_milliseconds=RETRY_MILLISECONDS,
        )
    except BaseException:
        slots.give_back()
        raise
    return event_stream_response(iter(stream), on_close=slots.give_back)
