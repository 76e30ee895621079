"""Web Push fan-out: pushes per second through the real pipeline, with real encryption.

N push subscriptions (20,000; --quick 4,000) at a local push service, a national AMBER Alert
with the channel ``push``, and ``burgernet worker --channels push`` processes (1, then 2):
fan-out (one delivery row per subscription), Redis Streams, batched claims, RFC 8291
encryption per push (a fresh ECDH key pair each), a VAPID JWT per origin, kept-alive HTTP/1.1
connections, outcomes written per batch. The local push service (its own process, a lean
asyncio HTTP/1.1 server) answers 201, verifies each VAPID JWT once per token (ES256, ``aud``,
``exp``) and decrypts every 50th push with ``http_ece``, an implementation independent of the
sender's, to prove the encryption is real.

Compared in the same run:

* the obvious way — pywebpush's ``webpush()`` per message (requests, a new connection and a
  new VAPID JWT each time, one after the other), on a sample;
* the sending step alone, in this process, as it is and as it was before (aiohttp's client
  and ``http_ece``), on the same push service: CPU per push of each;
* the encryption alone: the Python reference (``encrypt``) and the compiled sealer the workers
  use (``_webpush_seal``, a batch per call outside Python's lock), CPU per message of each.

Reports the sending rate (from the end of the fan-out to the last push), the fan-out time,
the rate per worker, the scaling from 1 to 2 workers, the workers' CPU per push while sending
(so pushes per worker CPU-second: a worker's rate on a core of its own), the push service's
CPU per push, how busy the machine's cores were, and what a national AMBER Alert to 1,300,000
subscriptions would take at the measured rates. Everything (workers, the push service, Redis,
SQLite) shares this machine's cores: where they are all busy, the wall-clock rates are set by
the cores, and the CPU figures say what a worker costs.

Prints one JSON object last.

    python benchmarks/push_fanout.py [--quick] [--subscriptions N] [--receivers N]
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
from testbed.approvals import start_approved
from testbed.ports import port_block

NATIONAL_SUBSCRIPTIONS = 1_300_000
DECRYPT_EVERY = 50


# --- the local push service (its own process: `--serve`) -------------------------------------------
def serve(port: int, key: str, auth: str, stats: Path) -> None:
    """A lean HTTP/1.1 push service: keep-alive, 201 per push, the VAPID JWT checked per token
    (ES256 against ``k``, ``aud`` this origin, ``exp`` within 24 h), every 50th push decrypted
    with :mod:`http_ece` (an implementation independent of the sender's) to prove it is real.

    It shares the cores with the workers, so it is kept lean (asyncio's transports and a small
    request parser, not a web framework): the benchmark measures the sender, not the stand-in.
    """
    import asyncio

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    origin = f"http://127.0.0.1:{port}"
    private = ec.derive_private_key(int(key, 16), ec.SECP256R1())
    secret = bytes.fromhex(auth)
    counts = {"received": 0, "decrypted": 0, "bad": 0, "jwts": 0, "connections": 0}
    verified: set[bytes] = set()

    def check_jwt(header: bytes) -> bool:
        if header in verified:
            return True
        params = dict(p.strip().split("=", 1) for p in header.decode().removeprefix("vapid ").split(","))
        head, body, signature = params["t"].split(".")
        raw = b64url_decode(signature)
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(params["k"]))
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        public.verify(der, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
        claims = json.loads(b64url_decode(body))
        if claims["aud"] != origin or not time.time() < claims["exp"] <= time.time() + 86400:
            return False
        verified.add(header)
        counts["jwts"] += 1
        return True

    def status_for(head: bytes, body: bytes) -> int:
        request_line, *lines = head.split(b"\r\n")
        method, target, _version = request_line.split(b" ", 2)
        headers = {}
        for line in lines:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if method != b"POST" or not target.startswith(b"/push/"):
            return 404
        try:
            if not check_jwt(headers.get(b"authorization", b"")):
                return 403
        except Exception:
            return 403
        if headers.get(b"content-encoding") != b"aes128gcm" or b"ttl" not in headers:
            return 400
        counts["received"] += 1
        if counts["received"] % DECRYPT_EVERY == 0:
            try:
                json.loads(
                    http_ece.decrypt(body, private_key=private, auth_secret=secret, version="aes128gcm")
                )
                counts["decrypted"] += 1
            except Exception:
                return 400
        return 201

    reasons = {201: b"Created", 400: b"Bad Request", 403: b"Forbidden", 404: b"Not Found"}

    class Receiver(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            self.buffer = b""
            counts["connections"] += 1

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
                head = self.buffer[:end]
                at = head.lower().find(b"\r\ncontent-length:")
                length = int(head[at + 17 :].split(b"\r\n", 1)[0]) if at >= 0 else 0
                if len(self.buffer) < end + 4 + length:
                    return
                body = self.buffer[end + 4 : end + 4 + length]
                self.buffer = self.buffer[end + 4 + length :]
                status = status_for(head, body)
                if status != 201:
                    counts["bad"] += 1
                self.transport.write(  # type: ignore[attr-defined]
                    b"HTTP/1.1 %d %s\r\nContent-Length: 0\r\n\r\n" % (status, reasons[status])
                )

    async def write_stats() -> None:
        while True:
            await asyncio.sleep(0.5)
            stats.write_text(json.dumps(counts))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        await loop.create_server(Receiver, "127.0.0.1", port, reuse_port=True, backlog=1024)
        await write_stats()

    asyncio.run(main())


class PushService:
    def __init__(self, workdir: Path, processes: int = 1) -> None:
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
                    raw_key.hex(),  # hex: base64url may start with "-", which argparse takes for an option
                    self.auth.hex(),
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

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(process.pid) for process in self.processes)

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
    # An AMBER Alert starts only through a second person's approval (burgernet.approvals).
    start_approved(context, view.id, requester="bench", source="bench")
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


def machine_busy() -> tuple[float, float]:
    """All cores' busy and total jiffies so far (/proc/stat): how loaded the machine was."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


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

    def worker_cpu() -> float:
        return sum(cpu_seconds(p.pid) for p in processes)

    try:
        time.sleep(3)  # every worker up before the clock starts
        before = service.counts().get("received", 0)
        cpu_start = worker_cpu()
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
                cpu_sending_start, service_cpu_start = worker_cpu(), service.cpu_seconds()
                busy_start = machine_busy()
            if state == "done":
                break
            time.sleep(0.05)
        finished = time.perf_counter()
        cpu_end, service_cpu_end, busy_end = worker_cpu(), service.cpu_seconds(), machine_busy()
        time.sleep(0.6)  # the push service writes its counts every 0.5 s
        status = context.broadcasts.status(broadcast_id)
        assert status is not None and fanned_out is not None
        data = status.as_dict()
        sending = finished - fanned_out
        sending_cpu = cpu_end - cpu_sending_start
        received = service.counts().get("received", 0) - before
        cores = os.cpu_count() or 1
        return {
            "workers": workers,
            "subscriptions": count,
            "by_status": data["by_status"],
            "received_by_push_service": received,
            "fan_out_seconds": round(fanned_out - started, 2),
            "sending_seconds": round(sending, 2),
            "pushes_per_second": round(count / sending),
            "per_worker_per_second": round(count / sending / workers),
            # The workers' own CPU while sending (fan-out excluded): what a worker costs per push,
            # whatever else the shared cores were doing. 1 / that is its rate on a core of its own.
            "worker_cpu_seconds_sending": round(sending_cpu, 2),
            "worker_cpu_us_per_push": round(sending_cpu / count * 1e6) if sending_cpu else None,
            "pushes_per_worker_cpu_second": round(count / sending_cpu) if sending_cpu else None,
            "worker_cpu_seconds_with_fan_out": round(cpu_end - cpu_start, 2),
            "push_service_cpu_us_per_push": round((service_cpu_end - service_cpu_start) / count * 1e6),
            # How busy all the machine's cores were while sending (1.0 = every core saturated).
            "machine_busy_while_sending": round(
                (busy_end[0] - busy_start[0]) / max(1, busy_end[1] - busy_start[1]), 2
            ),
            "cores": cores,
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
    cpu = time.process_time()
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
    cpu = time.process_time() - cpu
    return {
        "sample": sample,
        "seconds": round(seconds, 2),
        "pushes_per_second": round(sample / seconds),
        "cpu_us_per_push": round(cpu / sample * 1e6),
    }


# The payload of the in-process measurements (the sending step, the encryption): about the
# size of a real alert's.
SENDER_PAYLOAD = json.dumps({"v": 1, "kind": "alert", "message": "Benchmark " + "x" * 900}).encode()


def encryption_alone(service: PushService, sample: int) -> dict[str, Any]:
    """CPU per message of RFC 8291 alone: the Python reference (``encrypt``, on ``cryptography``)
    and the compiled sealer the worker uses (``encrypt_all``: one call per batch of 250, in
    OpenSSL, outside Python's lock), on the same messages."""
    from broadcasting.channels import push_webpush

    payload = SENDER_PAYLOAD
    items = [(payload, service.p256dh, b64url_encode(service.auth))] * 250
    batches = max(1, sample // 250)
    cpu = time.process_time()
    for _ in range(batches):
        for item in items:
            push_webpush.encrypt(*item)
    python = time.process_time() - cpu
    cpu = time.process_time()
    for _ in range(batches):
        push_webpush.encrypt_all(items)
    sealer = time.process_time() - cpu
    return {
        "messages": batches * 250,
        "sealer_built": push_webpush.seal_many is not None,
        "python_cpu_us_per_message": round(python / (batches * 250) * 1e6, 1),
        "sealer_cpu_us_per_message": round(sealer / (batches * 250) * 1e6, 1),
    }


def sender_alone(service: PushService, settings: Settings, sample: int) -> dict[str, Any]:
    """The sending step without the pipeline (no database, Redis or journal), in this process:
    the sender as it is, and as it was before (aiohttp's client and ``http_ece``), on the same
    push service. CPU per push of each; the pipeline's own share is the workers' figure minus it."""
    import asyncio

    import aiohttp

    from broadcasting.channels.push_webpush import VapidSigner, WebPushSender
    from broadcasting.store import PushTarget

    payload = SENDER_PAYLOAD
    auth = b64url_encode(service.auth)

    def targets(first: int) -> list[PushTarget]:
        return [
            PushTarget(
                n,
                1,
                1,
                "alert",
                1,
                n,
                service.endpoint(20_000_000 + n),
                service.p256dh,
                auth,
                "nl",
                None,
                False,
            )
            for n in range(first, first + 250)
        ]

    async def current() -> int:
        sender = WebPushSender(settings.push, rate=None)  # type: ignore[arg-type]
        payloads = dict.fromkeys(range(sample + 250), payload)
        await sender.send_batch(targets(sample), payloads, {})  # connections open, JWT signed
        sent = 0
        for first in range(0, sample, 250):
            sent += sum(r.status == "sent" for r in await sender.send_batch(targets(first), payloads, {}))
        await sender.close()
        return sent

    async def before() -> int:
        vapid = VapidSigner(settings.push)
        limit = asyncio.Semaphore(settings.push.concurrency)
        connector = aiohttp.TCPConnector(
            limit=settings.push.concurrency, limit_per_host=0, keepalive_timeout=60
        )
        async with aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",)) as http:

            async def push(endpoint: str) -> int:
                body = http_ece.encrypt(
                    payload,
                    private_key=ec.generate_private_key(ec.SECP256R1()),
                    dh=b64url_decode(service.p256dh),
                    auth_secret=service.auth,
                    rs=4096,
                    version="aes128gcm",
                )
                headers = {
                    "Authorization": vapid.authorization(endpoint),
                    "Content-Encoding": "aes128gcm",
                    "Content-Type": "application/octet-stream",
                    "TTL": "21600",
                    "Urgency": "high",
                    "Topic": "bn-b1",
                }
                async with limit, http.post(endpoint, data=body, headers=headers) as response:
                    await response.read()
                    return response.status

            sent = 0
            for first in range(0, sample, 250):
                answers = await asyncio.gather(
                    *(push(service.endpoint(30_000_000 + n)) for n in range(first, first + 250))
                )
                sent += answers.count(201)
            return sent

    result: dict[str, Any] = {"sample": sample}
    for name, work in (("aiohttp_http_ece_before", before), ("this_sender", current)):
        service_cpu, cpu, started = service.cpu_seconds(), time.process_time(), time.perf_counter()
        sent = asyncio.run(work())
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        result[name] = {
            "sent": sent,
            "pushes_per_second": round(sample / seconds),
            "cpu_us_per_push": round(cpu / sample * 1e6),
            "push_service_cpu_us_per_push": round((service.cpu_seconds() - service_cpu) / sample * 1e6),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--subscriptions", type=int)
    parser.add_argument("--receivers", type=int, default=1, help="push service processes (one port)")
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
    service = PushService(workdir, args.receivers)
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
        result["sender_alone"] = alone = sender_alone(service, settings, 1_000 if args.quick else 5_000)
        result["encryption_alone"] = encryption_alone(service, 1_000 if args.quick else 5_000)
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
        national["fan_out_seconds"] = round(NATIONAL_SUBSCRIPTIONS / fan_out_per_second, 0)
        national["baseline_seconds"] = round(NATIONAL_SUBSCRIPTIONS / float(base["pushes_per_second"]), 0)
        per_cpu = [run["pushes_per_worker_cpu_second"] or 0 for run in runs]
        result.update(
            {
                "subscriptions": count,
                "per_worker_per_second": round(one),
                "two_workers_per_worker_per_second": round(two / 2),
                "two_workers_per_second": round(two),
                "scaling_1_to_2": round(two / one, 2),
                # Per worker CPU-second while sending: the rate of a worker with a core to itself.
                "pushes_per_worker_cpu_second": per_cpu,
                "worker_cpu_us_per_push": [run["worker_cpu_us_per_push"] for run in runs],
                "sender_cpu_us_per_push_before_after": [
                    alone["aiohttp_http_ece_before"]["cpu_us_per_push"],
                    alone["this_sender"]["cpu_us_per_push"],
                ],
                "speedup_over_baseline": round(one / float(base["pushes_per_second"]), 1),
                "national_amber_1_3M": national,
                "push_service": service.counts(),
                "target_per_worker": 5_000,
                "target_met": one >= 5_000,
                "target_met_per_worker_cpu_second": min(per_cpu) >= 5_000,
                "cores": os.cpu_count(),
                "load_average_1m": round(os.getloadavg()[0], 2),
            }
        )
        print(json.dumps(result))
    finally:
        service.stop()
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
