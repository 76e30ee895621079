"""The asyncio Redis client under many calls at once: it waits for a connection, never fails.

redis-py 8 caps a connection pool at 100 and then raises "Too many connections" at once. A
FastAGI process at 20 calls/s has hundreds of calls in flight, and each failure fell to the
Redis-outage path. This asks 300 slow commands at once of a real redis-server.
"""

from __future__ import annotations

import asyncio

from burgernet.redis_clients import ASYNC_MAX_CONNECTIONS, async_redis_client
from burgernet.settings import load_settings
from composition.redis_server import ManagedRedis


async def test_three_hundred_commands_at_once_all_get_their_answer(redis_server: ManagedRedis) -> None:
    settings = load_settings(redis={"url": redis_server.url})
    client = async_redis_client(settings.redis, timeout=5.0)
    try:
        # BLPOP on a list nobody fills holds its connection for the whole 0.3 s.
        answers = await asyncio.gather(
            *(client.blpop([f"bn-pool-test:{n}"], timeout=0.3) for n in range(300))
        )
        assert answers == [None] * 300
        assert ASYNC_MAX_CONNECTIONS > 300
    finally:
        await client.aclose()


async def test_more_commands_than_connections_wait_their_turn(redis_server: ManagedRedis) -> None:
    settings = load_settings(redis={"url": redis_server.url})
    client = async_redis_client(settings.redis, timeout=5.0)
    try:
        waiting = ASYNC_MAX_CONNECTIONS + 50  # more than the pool holds: the last ones queue
        answers = await asyncio.gather(
            *(client.blpop([f"bn-pool-wait:{n}"], timeout=0.2) for n in range(waiting))
        )
        assert answers == [None] * waiting
    finally:
        await client.aclose()
