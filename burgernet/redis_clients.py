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

from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

import redis
import redis.asyncio as aioredis
from redis._parsers import _AsyncHiredisParser, _AsyncRESP3Parser, _HiredisParser, _RESP2Parser
from redis.asyncio.retry import Retry as AsyncRetry
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry
from redis.sentinel import Sentinel
from redis.utils import HIREDIS_AVAILABLE

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


# Which reply parser a client uses. redis-py takes hiredis for *every* client once it is
# installed; here each process says what it wants instead:
# - "fast": hiredis, for the broadcast worker. Its stream reads and journal writes are the push
#   fan-out's Redis cost, and hiredis parses them for less CPU.
# - "pure" (the default): redis-py's own Python parser, for the FastAGI/AMI process, the panel
#   and the CLI. Their Redis traffic is small, and it is the parser every fault test of the free
#   number ran on. (A Redis-stop failure of the fault suite once blamed on hiredis turned out to
#   be the fault rig's: calls cut by the next period's Asterisk kill were counted against the
#   Redis stop, with or without hiredis.)
Parser = Literal["pure", "fast"]


# The pure parsers are redis-py's own defaults without hiredis (the asyncio connection turns
# RESP3 into RESP2 itself when the protocol is 2; the synchronous one does not, hence RESP2).
def _parser_class(parser: Parser) -> type[Any]:
    return _AsyncHiredisParser if parser == "fast" and HIREDIS_AVAILABLE else _AsyncRESP3Parser


def _sync_parser_class(parser: Parser) -> type[Any]:
    return _HiredisParser if parser == "fast" and HIREDIS_AVAILABLE else _RESP2Parser


def _backoff() -> ExponentialBackoff:
    return ExponentialBackoff(cap=0.4, base=0.1)


def redis_client(
    settings: RedisSettings,
    *,
    timeout: float = 5.0,
    connect_timeout: float | None = None,
    parser: Parser = "pure",
) -> redis.Redis:
    """A synchronous client (CLI, panel, worker's queue, supervisor)."""
    connect = connect_timeout if connect_timeout is not None else timeout
    parser_class = _sync_parser_class(parser)
    if not settings.sentinels:
        return redis.Redis.from_url(
            settings.url, socket_timeout=timeout, socket_connect_timeout=connect, parser_class=parser_class
        )
    sentinel = Sentinel(settings.sentinel_addresses, **_sentinel_options(settings, timeout, connect))
    retry = Retry(_backoff(), _RETRIES, supported_errors=_RETRY_ON)
    return sentinel.master_for(settings.sentinel_service, retry=retry, parser_class=parser_class)


def async_redis_client(
    settings: RedisSettings,
    *,
    timeout: float = 2.0,
    connect_timeout: float | None = None,
    parser: Parser = "pure",
) -> aioredis.Redis:
    """An asyncio client (FastAGI/AMI process, broadcast worker)."""
    connect = connect_timeout if connect_timeout is not None else timeout
    parser_class = _parser_class(parser)
    if not settings.sentinels:
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.url,
            max_connections=ASYNC_MAX_CONNECTIONS,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=connect,
            parser_class=parser_class,
        )
        return aioredis.Redis.from_pool(pool)
    sentinel = AsyncSentinel(settings.sentinel_addresses, **_sentinel_options(settings, timeout, connect))
    retry = AsyncRetry(_backoff(), _RETRIES, supported_errors=_RETRY_ON)
    # Sentinel's pool does not block: it gets the same generous ceiling instead.
    return sentinel.master_for(
        settings.sentinel_service,
        retry=retry,
        max_connections=ASYNC_MAX_CONNECTIONS,
        parser_class=parser_class,
    )


__all__ = ["async_redis_client", "redis_client"]
