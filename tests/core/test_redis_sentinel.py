"""Redis through Sentinel: a primary, a replica and three real sentinels (``redis-server --sentinel``).

Every process gets its Redis clients from :mod:`burgernet.redis_clients`; with ``redis.sentinels``
set they find the primary through the sentinels and follow it when the primary dies and a replica
is promoted, without being restarted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from burgernet.live import AsyncLiveState, LiveState
from burgernet.redis_clients import redis_client
from burgernet.settings import RedisSettings, SettingsError, load_settings
from composition.redis_server import ManagedRedis, ManagedSentinel
from routing import model as rm
from testbed.ports import free_port

SERVICE = "bn-test"


class SentinelSet:
    def __init__(self, base: Path) -> None:
        self.primary = ManagedRedis(free_port(), base / "primary")
        self.password = self.primary.password
        self.replica = ManagedRedis(
            free_port(), base / "replica", password=self.password, replica_of=("127.0.0.1", self.primary.port)
        )
        self.sentinels = [
            ManagedSentinel(
                free_port(), base / f"sentinel-{n}", ("127.0.0.1", self.primary.port), SERVICE, self.password
            )
            for n in range(3)
        ]

    def start(self) -> None:
        self.primary.start()
        self.replica.start()
        for sentinel in self.sentinels:
            sentinel.start()
        # A failover needs the sentinels to know the replica and each other (they find out
        # through the primary's hello channel, every 2 s or so).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all(self._knows_everyone(sentinel) for sentinel in self.sentinels):
                return
            time.sleep(0.3)
        raise AssertionError("the sentinels never learnt of the replica and each other")

    def _knows_everyone(self, sentinel: ManagedSentinel) -> bool:
        client = redis.Redis(host="127.0.0.1", port=sentinel.port, password=self.password, socket_timeout=1)
        master = client.sentinel_master(SERVICE)
        assert isinstance(master, dict)
        return int(master["num-slaves"]) >= 1 and int(master["num-other-sentinels"]) >= 2

    def settings(self, prefix: str) -> RedisSettings:
        return RedisSettings(
            url=f"redis://:{self.password}@127.0.0.1:{self.primary.port}/0",
            sentinels=[f"127.0.0.1:{s.port}" for s in self.sentinels],
            sentinel_service=SERVICE,
            key_prefix=prefix,
        )

    def stop(self) -> None:
        for server in (*self.sentinels, self.replica, self.primary):
            server.stop()


@pytest.fixture(scope="module")
def sentinel_set(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSet]:
    servers = SentinelSet(tmp_path_factory.mktemp("sentinel"))
    try:
        servers.start()
        yield servers
    finally:
        servers.stop()


def _port_of(client: redis.Redis) -> int:
    return int(client.connection_pool.get_master_address()[1])  # type: ignore[attr-defined]


def test_clients_find_the_primary_through_the_sentinels(sentinel_set: SentinelSet) -> None:
    settings = sentinel_set.settings("find:")
    live = LiveState.from_settings(settings)
    live.set_presence("c-mn-1", rm.Presence.AVAILABLE)
    # It went to the primary, and the replica has it too (what a failover keeps).
    primary = redis.Redis.from_url(sentinel_set.primary.url)
    assert primary.hget("find:presence", "c-mn-1") == b"available"
    assert _port_of(live.client) == sentinel_set.primary.port

    async def read_async() -> dict[str, rm.Presence]:
        state = AsyncLiveState.from_settings(settings)
        try:
            context = await state.call_context(None, 0)
            return context.presence
        finally:
            await state.client.aclose()

    assert asyncio.run(read_async()) == {"c-mn-1": rm.Presence.AVAILABLE}


def test_a_wrong_password_or_service_is_an_error_not_a_hang(sentinel_set: SentinelSet) -> None:
    settings = sentinel_set.settings("wrong:")
    unknown = settings.model_copy(update={"sentinel_service": "no-such-service"})
    with pytest.raises(redis.sentinel.MasterNotFoundError):
        redis_client(unknown, timeout=1).ping()


def test_sentinel_settings_are_checked() -> None:
    assert RedisSettings(sentinels="10.0.0.1:26379, [::1]:26380").sentinel_addresses == [  # type: ignore[arg-type]
        ("10.0.0.1", 26379),
        ("::1", 26380),
    ]
    for bad in (["10.0.0.1"], ["host:99999"], ["a b:26379"]):
        with pytest.raises(ValueError, match="host"):
            RedisSettings(sentinels=bad)
    with pytest.raises(ValueError, match="plain name"):
        RedisSettings(sentinel_service="bn\nsentinel monitor x")


def test_a_bad_sentinel_in_the_environment_is_a_readable_start_up_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BURGERNET_REDIS__SENTINELS", "redis-a:26379,redis-b")
    with pytest.raises(SettingsError, match=r"redis\.sentinels"):
        load_settings()


def test_the_same_clients_follow_a_failover_when_the_primary_dies(sentinel_set: SentinelSet) -> None:
    """The primary is killed; the sentinels promote the replica; the clients made before the
    failover write to the new primary without being rebuilt. (Last in this module: it moves the
    primary.)"""
    settings = sentinel_set.settings("failover:")
    live = LiveState.from_settings(settings)
    live.set_presence("c-mn-1", rm.Presence.BUSY)
    old_port, new_port = sentinel_set.primary.port, sentinel_set.replica.port
    assert _port_of(live.client) == old_port
    # The replica has it before the primary goes (a lost write is not what this test is about).
    replica = redis.Redis.from_url(sentinel_set.replica.url)
    deadline = time.monotonic() + 10
    while replica.hget("failover:presence", "c-mn-1") != b"busy" and time.monotonic() < deadline:
        time.sleep(0.05)

    async def async_writer() -> AsyncLiveState:
        return AsyncLiveState.from_settings(settings)

    loop = asyncio.new_event_loop()
    try:
        async_live = loop.run_until_complete(async_writer())
        loop.run_until_complete(async_live.client.ping())

        assert sentinel_set.primary.process is not None
        sentinel_set.primary.process.kill()  # SIGKILL: no goodbye to anyone
        sentinel_set.primary.process.wait()
        killed_at = time.monotonic()

        written_at: float | None = None
        failures = 0
        while time.monotonic() - killed_at < 30:
            try:
                live.set_presence("c-mn-2", rm.Presence.AVAILABLE)
                loop.run_until_complete(async_live.client.hset("failover:presence", "c-mn-3", "busy"))
                written_at = time.monotonic()
                break
            except redis.RedisError:
                failures += 1
                time.sleep(0.2)
        assert written_at is not None, "no write succeeded within 30 s of the primary's death"
        assert failures >= 1  # it really was down for a moment: the writes went through the failover
        assert _port_of(live.client) == new_port
        assert live.presence() == {
            "c-mn-1": rm.Presence.BUSY,  # written before the failover, kept by the replica
            "c-mn-2": rm.Presence.AVAILABLE,
            "c-mn-3": rm.Presence.BUSY,
        }
        # The other sentinels hear of the promotion a moment later (hello messages).
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            seen = {sentinel.primary_address() for sentinel in sentinel_set.sentinels}
            if seen == {("127.0.0.1", new_port)}:
                break
            time.sleep(0.2)
        assert seen == {("127.0.0.1", new_port)}
        loop.run_until_complete(async_live.client.aclose())
    finally:
        loop.close()
