"""Every Redis client of every process comes from here: straight to ``redis.url``, or through
Redis Sentinel when ``redis.sentinels`` is set.

With Sentinel, a client asks the sentinels for the current primary of ``redis.sentinel_service``
and connects there. After a failover its connections to the old primary fail (refused, or
"READONLY" once the old primary comes back as a replica); redis-py's Sentinel pool then asks the
sentinels again, and the retry policy below repeats the command on the new primary. A command in
flight during the promotion itself (a few seconds) still fails after the retries: every caller
already treats Redis as optional for a moment (presence unknown, the cached snapshot, a
heartbeat missed), so this adds no new failure mode, only a short one.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry
from redis.sentinel import Sentinel

from burgernet.settings import RedisSettings, redis_url_password

# Enough to ride out a promotion's "connection refused" without holding a caller for long:
# 3 tries, backing off 0.1 s, 0.2 s, 0.4 s (callers bound their own waits on top).
_RETRIES = 3
_RETRY_ON = (RedisConnectionError, RedisTimeoutError, ReadOnlyError)


def _database(url: str) -> int:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return int(parse_qs(parts.query).get("db", ["0"])[0] or 0)
    path = parts.path.strip("/")
    return int(path) if path.isdigit() else 0


def _username(url: str) -> str | None:
    username = urlsplit(url).username
    return unquote(username) if username else None


def _sentinel_options(settings: RedisSettings, timeout: float, connect_timeout: float) -> dict[str, Any]:
    """The keyword arguments of ``Sentinel(...)``, the same for the synchronous and asyncio clients."""
    password = redis_url_password(settings.url) or None
    return {
        # The sentinels themselves require the same password (``burgernet cluster up`` sets it).
        "sentinel_kwargs": {
            "password": password,
            "socket_timeout": connect_timeout,
            "socket_connect_timeout": connect_timeout,
        },
        "password": password,
        "username": _username(settings.url),
        "db": _database(settings.url),
        "socket_timeout": timeout,
        "socket_connect_timeout": connect_timeout,
    }


# Connections one asyncio process may hold. redis-py 8 caps a pool at 100 by default and then
# *fails* a command ("Too many connections") instead of waiting: under 20 calls/s a FastAGI
# process has hundreds of calls in flight, each with its Redis reads and the AMI events' writes,
# and every failure fell to the slow Redis-outage path (and a logged traceback). The pool below
# waits for a free connection instead, up to the command's own timeout, with room for bursts.
ASYNC_MAX_CONNECTIONS = 512


def _backoff() -> ExponentialBackoff:
    return ExponentialBackoff(cap=0.4, base=0.1)


def redis_client(
    settings: RedisSettings, *, timeout: float = 5.0, connect_timeout: float | None = None
) -> redis.Redis:
    """A synchronous client (CLI, panel, worker's queue, supervisor)."""
    connect = connect_timeout if connect_timeout is not None else timeout
    if not settings.sentinels:
        return redis.Redis.from_url(settings.url, socket_timeout=timeout, socket_connect_timeout=connect)
    sentinel = Sentinel(settings.sentinel_addresses, **_sentinel_options(settings, timeout, connect))
    retry = Retry(_backoff(), _RETRIES, supported_errors=_RETRY_ON)
    return sentinel.master_for(settings.sentinel_service, retry=retry)


def async_redis_client(
    settings: RedisSettings, *, timeout: float = 2.0, connect_timeout: float | None = None
) -> aioredis.Redis:
    """An asyncio client (FastAGI/AMI process, broadcast worker)."""
    connect = connect_timeout if connect_timeout is not None else timeout
    if not settings.sentinels:
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.url,
            max_connections=ASYNC_MAX_CONNECTIONS,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=connect,
        )
        return aioredis.Redis.from_pool(pool)
    sentinel = AsyncSentinel(settings.sentinel_addresses, **_sentinel_options(settings, timeout, connect))
    retry = AsyncRetry(_backoff(), _RETRIES, supported_errors=_RETRY_ON)
    # Sentinel's pool does not block: it gets the same generous ceiling instead.
    return sentinel.master_for(settings.sentinel_service, retry=retry, max_connections=ASYNC_MAX_CONNECTIONS)


__all__ = ["async_redis_client", "redis_client"]
