"""Web Push fan-out: pushes per second through the real pipeline, with real encryption.

N push subscriptions (20,000; --quick 4,000) at a local push service, a national AMBER Alert
with the channel ``push``, and ``burgernet worker --channels push`` processes (1, then 2):
fan-out (one delivery row per subscription), Redis Streams, batched claims, RFC 8291
encryption per push, a VAPID JWT per origin, aiohttp with kept-alive connections, outcomes
written per batch. The local push service (two processes on one port, ``SO_REUSEPORT``)
answers 201, verifies each VAPID JWT once (ES256) and decrypts every 50th push to prove the
encryption is real.

Baseline, in the same run: the obvious way — pywebpush's ``webpush()`` per message (requests,
a new connection and a new VAPID JWT each time, one after the other), on a sample.

Reports the sending rate (from the end of the fan-out to the last push), the fan-out time,
the rate per worker, the scaling from 1 to 2 workers, and what a national AMBER Alert to
1,300,000 subscriptions would take at the measured rates. Everything (workers, the push
service, Redis, SQLite) shares this machine's cores: on 2 cores the push service takes about
as much CPU as the workers, so the figures are a floor for a worker with a core of its own.

Prints one JSON object last.

    python benchmarks/push_fanout.py [--quick] [--subscriptions N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import http_ece
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import insert, select

from burgernet import db
from burgernet.actions import AreaSpec
from burgernet.db import session_scope
from burgernet.domain import AreaKind
from burgernet.models import Broadcast, PushSubscription, Region
from burgernet.push_subscriptions import b64url_decode, b64url_encode
from burgernet.secrets import create_missing_secrets
from burgernet.settings import Settings, as_environment, load_settings
from composition import demo
from composition.context import Context
from composition.redis_server import ManagedRedis
from testbed.ports import port_block

NATIONAL_SUBSCRIPTIONS = 1_300_000
DECRYPT_EVERY = 50


# --- the local push service (its own processes: `--serve`) ------------------------------------------
def serve(port: int, key: str, auth: str, stats: Path) -> None:
    """Answer pushes with 201 after checking the VAPID JWT once per token, decrypting a sample."""
    import asyncio

    from aiohttp import web
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    private = ec.derive_private_key(int.from_bytes(b64url_decode(key), "big"), ec.SECP256R1())
    secret = b64url_decode(auth)
    counts = {"received": 0, "decrypted": 0, "bad": 0, "jwts": 0}
    verified: set[str] = set()

    def check_jwt(header: str) -> bool:
        params = dict(p.strip().split("=", 1) for p in header.removeprefix("vapid ").split(","))
        token = params.get("t", "")
        if token in verified:
            return True
        head, body, signature = token.split(".")
        raw = b64url_decode(signature)
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(params["k"]))
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        public.verify(der, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
        claims = json.loads(b64url_decode(body))
        if not time.time() < claims["exp"] <= time.time() + 86400:
            return False
        verified.add(token)
        counts["jwts"] += 1
        return True

    async def push(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            if not check_jwt(request.headers.get("Authorization", "")):
                counts["bad"] += 1
                return web.Response(status=403)
        except Exception:
            counts["bad"] += 1
            return web.Response(status=403)
        counts["received"] += 1
        if counts["received"] % DECRYPT_EVERY == 0:
            try:
                json.loads(
                    http_ece.decrypt(body, private_key=private, auth_secret=secret, version="aes128gcm")
                )
                counts["decrypted"] += 1
            except Exception:
                counts["bad"] += 1
        return web.Response(status=201)

    async def write_stats() -> None:
        while True:
            await asyncio.sleep(0.5)
            stats.write_text(json.dumps(counts))

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/push/{token}", push)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, reuse_port=True, backlog=1024).start()
        await write_stats()

    asyncio.run(main())


class PushService:
    def __init__(self, workdir: Path, processes: int = 2) -> None:
        self.port = port_block()
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)
        raw_key = self.key.private_numbers().private_value.to_bytes(32, "big")
        self.stats = [workdir / f"push-service-{n}.json" for n in range(processes)]
        self.processes = [
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--serve",
                    str(self.port),
                    b64url_encode(raw_key),
                    b64url_encode(self.auth),
                    str(path),
                ],
                stdout=subprocess.DEVNULL,
            )
            for path in self.stats
        ]
        time.sleep(1.5)

    @property
    def p256dh(self) -> str:
        return b64url_encode(
            self.key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        )

    def endpoint(self, n: int) -> str:
        return f"http://127.0.0.1:{self.port}/push/{n:08d}"

    def counts(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for path in self.stats:
            try:
                for name, value in json.loads(path.read_text()).items():
                    total[name] = total.get(name, 0) + value
            except (OSError, ValueError):
                pass
        return total

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(10)


# --- the pipeline ----------------------------------------------------------------------------------
def seed(settings: Settings, service: PushService, count: int, start: int = 0) -> None:
    now = datetime.now(UTC)
    context = Context(settings)
    with session_scope(context.sessions) as session:
        for first in range(start, start + count, 20_000):
            session.execute(
                insert(PushSubscription),
                [
                    {
                        "endpoint": service.endpoint(n),
                        "p256dh": service.p256dh,
                        "auth": b64url_encode(service.auth),
                        "cell": None,
                        "lang": "nl",
                        "created_at": now,
                        "updated_at": now,
                        "failures": 0,
                    }
                    for n in range(first, min(start + count, first + 20_000))
                ],
            )
    context.close()


def national_alert(context: Context) -> int:
    view = context.actions.create(
        action_type="amber_alert",
        title="Benchmark AMBER Alert",
        description="Benchmark",
        region_code="MN",
        area=AreaSpec(AreaKind.NATIONAL),
        channels=["push"],
        actor="bench",
    )
    context.actions.start(view.id, actor="bench")
    with session_scope(context.sessions) as session:
        return int(
            session.scalar(
                select(Broadcast.id).where(Broadcast.action_id == view.id, Broadcast.kind == "alert")
            )
            or 0
        )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_workers(settings: Settings, service: PushService, workers: int, count: int) -> dict[str, Any]:
    env = {**os.environ, **as_environment(settings)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "composition.cli", "worker", "--channels", "push"],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        for _ in range(workers)
    ]
    context = Context(settings)
    try:
        time.sleep(3)  # every worker up before the clock starts
        before = service.counts().get("received", 0)
        cpu_before = sum(cpu_seconds(p.pid) for p in processes)
        started = time.perf_counter()
        broadcast_id = national_alert(context)
        fanned_out = None
        deadline = time.monotonic() + count / 100 + 120
        while time.monotonic() < deadline:
            with session_scope(context.sessions) as session:
                broadcast = session.get(Broadcast, broadcast_id)
                assert broadcast is not None
                state, total = broadcast.status, broadcast.total
            if fanned_out is None and total > 0:
                fanned_out = time.perf_counter()
            if state == "done":
                break
            time.sleep(0.05)
        finished = time.perf_counter()
        cpu = sum(cpu_seconds(p.pid) for p in processes) - cpu_before
        status = context.broadcasts.status(broadcast_id)
        assert status is not None and fanned_out is not None
        data = status.as_dict()
        sending = finished - fanned_out
        received = service.counts().get("received", 0) - before
        return {
            "workers": workers,
            "subscriptions": count,
            "by_status": data["by_status"],
            "received_by_push_service": received,
            "fan_out_seconds": round(fanned_out - started, 2),
            "sending_seconds": round(sending, 2),
            "pushes_per_second": round(count / sending),
            "per_worker_per_second": round(count / sending / workers),
            # What a worker reaches with a core of its own (the machine is shared: the push
            # service, Redis and other work take the rest), fan-out included.
            "worker_cpu_seconds": round(cpu, 2),
            "pushes_per_worker_cpu_second": round(count / cpu) if cpu else None,
        }
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(20)
        context.close()


def baseline(service: PushService, settings: Settings, sample: int) -> dict[str, Any]:
    """pywebpush.webpush() per message: requests, no connection reuse, a JWT per push."""
    from pywebpush import webpush

    payload = json.dumps({"v": 1, "kind": "alert", "message": "Benchmark"})
    started = time.perf_counter()
    for n in range(sample):
        webpush(
            {
                "endpoint": service.endpoint(10_000_000 + n),
                "keys": {"p256dh": service.p256dh, "auth": b64url_encode(service.auth)},
            },
            payload,
            vapid_private_key=settings.push.vapid_private_key,  # raw 32 bytes, base64url: py_vapid reads it
            vapid_claims={"sub": settings.push.vapid_subject},
            ttl=3600,
        )
    seconds = time.perf_counter() - started
    return {"sample": sample, "seconds": round(seconds, 2), "pushes_per_second": round(sample / seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--subscriptions", type=int)
    parser.add_argument("--serve", nargs=4, metavar=("PORT", "KEY", "AUTH", "STATS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        port, key, auth, stats = args.serve
        serve(int(port), key, auth, Path(stats))
        return
    count = args.subscriptions or (4_000 if args.quick else 20_000)
    workdir = Path(tempfile.mkdtemp(prefix="bn-bench-push-"))
    redis_server = ManagedRedis(port_block(), workdir / "redis")
    redis_server.start()
    service = PushService(workdir)
    result: dict[str, object] = {"benchmark": "push_fanout"}
    try:
        create_missing_secrets(workdir)  # makes push.vapid_private_key as `burgernet run` would
        settings = load_settings(
            data_dir=workdir,
            log_level="WARNING",
            database={"url": f"sqlite:///{workdir / 'bench.db'}"},
            redis={"url": redis_server.url, "key_prefix": "bench-push:"},
            # The shared limit out of the way: this measures what the workers can do.
            push={"pushes_per_second": 1_000_000, "allow_insecure_endpoints": True},
        )
        db.upgrade(settings.database_url)
        context = Context(settings)
        with session_scope(context.sessions) as session:
            if session.scalar(select(Region.id).limit(1)) is None:
                import numpy as np

                demo.seed_regions(session, np.random.default_rng(5))
        context.close()
        seed(settings, service, count)
        runs = [run_workers(settings, service, workers, count) for workers in (1, 2)]
        result["runs"] = runs
        one, two = (float(run["pushes_per_second"]) for run in runs)
        result["baseline_naive_webpush"] = base = baseline(service, settings, 100 if args.quick else 300)
        fan_out_per_second = count / max(0.001, float(runs[0]["fan_out_seconds"]))
        national = {
            f"{run['workers']}_workers_seconds": round(
                NATIONAL_SUBSCRIPTIONS / fan_out_per_second
                + NATIONAL_SUBSCRIPTIONS / float(run["pushes_per_second"]),
                0,
            )
            for run in runs
        }
        national["baseline_seconds"] = round(NATIONAL_SUBSCRIPTIONS / float(base["pushes_per_second"]), 0)
        counts = service.counts()
        result.update(
            {
                "subscriptions": count,
                "per_worker_per_second": round(one),
                "two_workers_per_second": round(two),
                "scaling_1_to_2": round(two / one, 2),
                "speedup_over_baseline": round(one / float(base["pushes_per_second"]), 1),
                "national_amber_1_3M": national,
                "push_service": counts,
                "per_worker_cpu_second": runs[0]["pushes_per_worker_cpu_second"],
                "target_per_worker": 5_000,
                "target_met": one >= 5_000,
                "cores": os.cpu_count(),
            }
        )
        print(json.dumps(result))
    finally:
        service.stop()
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
