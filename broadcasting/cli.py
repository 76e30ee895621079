"""``burgernet worker`` and ``burgernet broadcast …``: run workers, follow and ask for broadcasts."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import signal
import time

import click
import uvloop

from broadcasting.channels.registry import build_senders
from broadcasting.service import BroadcastService, BroadcastStatus
from broadcasting.worker import BroadcastWorker
from burgernet.actions import ActionError
from burgernet.domain import Channel
from burgernet.housekeeping import Housekeeping
from burgernet.redis_clients import async_redis_client
from burgernet.services import Services

log = logging.getLogger(__name__)


def parse_channels(value: str) -> set[Channel]:
    try:
        return {Channel(part.strip()) for part in value.split(",") if part.strip()}
    except ValueError:
        raise click.BadParameter(f"channels are {', '.join(c.value for c in Channel)}") from None


async def run_worker(context: Services, channels: set[Channel], fan_out: bool) -> None:
    settings = context.settings
    client = async_redis_client(settings.redis, timeout=10, parser="fast")
    senders = await build_senders(settings, channels, client)
    worker = BroadcastWorker(context, senders, fan_out=fan_out)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await worker.start()
    # Retention and the facts refresh ride along with every worker (one at a time: Redis locks).
    housekeeping = Housekeeping(context, name=worker.name)
    housekeeping.start()
    # Everything made so far (modules, settings, the wiring) lives as long as the process: the
    # cyclic collector need not look at it again. Without this each full collection walked the
    # whole heap, some 120 ms during which the event loop stood still, twice in a 20,000-push
    # broadcast; after it, about 8 ms.
    gc.freeze()
    await stop.wait()
    log.info("worker %s stopping: finishing deliveries in progress", worker.name)
    housekeeping.stop()
    await worker.stop()
    await client.aclose()


@click.command("worker")
@click.option(
    "--channels",
    default="voice,sms,email,push",
    show_default=True,
    help="Channels this worker sends (voice needs AMI access to this machine's Asterisk; push "
    "needs push.vapid_private_key, made by `burgernet secrets init`).",
)
@click.option("--no-fan-out", is_flag=True, help="Leave recipient selection to other workers.")
@click.pass_obj
def worker_cmd(context: Services, channels: str, no_fan_out: bool) -> None:
    """Work the broadcast queue until stopped (SIGTERM/Ctrl-C finish what is in progress)."""
    # uvloop's event loop: a push worker does thousands of connection reads and writes a
    # second, and uvloop does each for less CPU than asyncio's own loop.
    uvloop.run(run_worker(context, parse_channels(channels), not no_fan_out))


@click.group("broadcast")
def broadcast_group() -> None:
    """Alerts, updates and result messages: progress and status."""


def _subject(data: dict[str, object]) -> str:
    """What a broadcast is about: an action's alert, update or result, or an inquiry's mail."""
    if data.get("inquiry_id") is not None:
        return f"inquiry {data['inquiry_id']}"
    return f"action {data['action_id']}"


def _print_status(status: BroadcastStatus, as_json: bool) -> None:
    data = status.as_dict()
    if as_json:
        click.echo(json.dumps(data))
        return
    click.echo(
        f"broadcast {data['broadcast_id']} ({data['kind']}, {_subject(data)}, "
        f"priority {data['priority']}): {data['status']}, {data['handled']}/{data['total']} handled"
    )
    for status_name, number in data["by_status"].items():  # type: ignore[attr-defined]
        click.echo(f"  {status_name:<12} {number}")
    for pct, seconds in data["seconds_to"].items():  # type: ignore[attr-defined]
        click.echo(f"  {pct:>4} reached after {seconds:.1f} s")


@broadcast_group.command("status")
@click.argument("broadcast_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.option("--watch", is_flag=True, help="Print again every 2 s until the broadcast is over.")
@click.pass_obj
def status_cmd(context: Services, broadcast_id: int, as_json: bool, watch: bool) -> None:
    """Counts by status and the time to reach 50 %, 90 % and 100 % of the recipients."""
    while True:
        status = BroadcastService.for_services(context).status(broadcast_id)
        if status is None:
            raise click.ClickException(f"no broadcast {broadcast_id}")
        _print_status(status, as_json)
        if not watch or status.counts.status in ("done", "cancelled"):
            return
        time.sleep(2)


@broadcast_group.command("list")
@click.argument("action_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def list_cmd(context: Services, action_id: int, as_json: bool) -> None:
    """Every broadcast of an action: the alert, updates, the result message."""
    statuses = BroadcastService.for_services(context).of_action(action_id)
    if not statuses:
        click.echo("no broadcasts")
    for status in statuses:
        _print_status(status, as_json)


@broadcast_group.command("update")
@click.argument("action_id", type=int)
@click.argument("message")
@click.option("--actor", default="cli", show_default=True)
@click.pass_obj
def update_cmd(context: Services, action_id: int, message: str, actor: str) -> None:
    """Send an update about an active action to everyone its alert reached."""
    try:
        broadcast_id = context.actions.send_update(action_id, message, actor=actor)
    except ActionError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"broadcast {broadcast_id} queued")
