"""Which reply parser each process's Redis client uses, on real connections to a redis-server.

hiredis is installed for the broadcast worker (see burgernet/redis_clients.py). redis-py
would then use it for *every* client; the FastAGI process, the panel and the CLI stay on the
pure-Python parser, and only the worker's client, which asks for the fast parser, gets hiredis.
"""

from __future__ import annotations

from redis._parsers import (
    _AsyncHiredisParser,
    _AsyncRESP2Parser,
    _AsyncRESP3Parser,
    _HiredisParser,
    _RESP2Parser,
    _RESP3Parser,
)
from redis.utils import HIREDIS_AVAILABLE

from burgernet.live import AsyncLiveState, LiveState
from burgernet.redis_clients import async_redis_client, redis_client
from burgernet.settings import load_settings
from composition.redis_server import ManagedRedis


def test_hiredis_is_installed_for_the_worker() -> None:
    assert HIREDIS_AVAILABLE


async def test_asyncio_clients_parse_in_python_unless_they_ask_for_the_fast_parser(
    redis_server: ManagedRedis,
) -> None:
    settings = load_settings(redis={"url": redis_server.url})
    default = async_redis_client(settings.redis)
    fast = async_redis_client(settings.redis, parser="fast")
    live = AsyncLiveState.from_url(redis_server.url)
    try:
        for client in (default, fast, live.client):
            assert await client.set("bn-parser-test", "ja") is True
            assert await client.get("bn-parser-test") == b"ja"
        parsers = {}
        for name, client in (("default", default), ("fast", fast), ("live", live.client)):
            connection = await client.connection_pool.get_connection()
            parsers[name] = type(connection._parser)
            await client.connection_pool.release(connection)
        assert parsers["fast"] is _AsyncHiredisParser
        assert parsers["default"] in (_AsyncRESP2Parser, _AsyncRESP3Parser)
        assert parsers["live"] in (_AsyncRESP2Parser, _AsyncRESP3Parser)
    finally:
        for client in (default, fast, live.client):
            await client.aclose()


def test_synchronous_clients_parse_in_python_by_default(redis_server: ManagedRedis) -> None:
    settings = load_settings(redis={"url": redis_server.url})
    default = redis_client(settings.redis)
    fast = redis_client(settings.redis, parser="fast")
    live = LiveState.from_url(redis_server.url)
    try:
        parsers = {}
        for name, client in (("default", default), ("fast", fast), ("live", live.client)):
            assert client.set("bn-parser-test", name) is True
            assert client.get("bn-parser-test") == name.encode()
            connection = client.connection_pool.get_connection()
            parsers[name] = type(connection._parser)
            client.connection_pool.release(connection)
        assert parsers["fast"] is _HiredisParser
        assert parsers["default"] in (_RESP2Parser, _RESP3Parser)
        assert parsers["live"] in (_RESP2Parser, _RESP3Parser)
    finally:
        for client in (default, fast, live.client):
            client.close()
