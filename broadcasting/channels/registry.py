"""The one table of senders: (channel, provider) → the factory that builds its sender.

A worker started for some channels gets its senders only from here (:func:`build_senders`);
the provider of a channel is the one the settings choose, or the only one registered.

Adding a channel (e.g. Web Push) takes:

1. its value in :class:`burgernet.domain.Channel`, and the participant's opt-in column
   (``Participant.channel_<value>``, with an Alembic migration) that recipient selection reads
   — or, when its recipients are not participants (Web Push: subscriptions of the app), their
   own table and selection, as ``push`` does (``burgernet.push_subscriptions``);
2. one module ``broadcasting/channels/<channel>_<provider>.py`` with a sender class that
   implements :class:`broadcasting.channels.base.Sender`, taking its provider through a
   ``Protocol``, and ``async def create(settings, client) -> <the sender>``;
3. one line in :data:`SENDERS`.

A second provider for a channel is one more module and line, plus the setting that chooses
between them (see :func:`chosen_provider`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Final

import redis.asyncio as aioredis

from broadcasting.channels import email_smtp, push_webpush, sms_twilio, voice_asterisk, voice_twilio
from broadcasting.channels.base import Sender
from burgernet.domain import Channel
from burgernet.settings import Settings

SenderFactory = Callable[[Settings, aioredis.Redis], Awaitable[Sender]]

SENDERS: Final[Mapping[tuple[Channel, str], SenderFactory]] = {
    (Channel.VOICE, "asterisk"): voice_asterisk.create,
    (Channel.VOICE, "twilio"): voice_twilio.create,
    (Channel.SMS, "twilio"): sms_twilio.create,
    (Channel.EMAIL, "smtp"): email_smtp.create,
    (Channel.PUSH, "webpush"): push_webpush.create,
}


def providers(channel: Channel) -> list[str]:
    return [provider for (registered, provider) in SENDERS if registered is channel]


def chosen_provider(settings: Settings, channel: Channel) -> str:
    """The provider carrying ``channel``: the settings' choice where there is one to make."""
    chosen = {Channel.VOICE: settings.broadcast.voice_provider}.get(channel)
    if chosen is not None:
        return chosen
    offered = providers(channel)
    if len(offered) != 1:
        raise LookupError(f"{channel.value}: no setting chooses among the registered senders {offered}")
    return offered[0]


async def build_senders(
    settings: Settings, channels: Iterable[Channel], client: aioredis.Redis
) -> dict[Channel, Sender]:
    """The senders for ``channels`` with the shared limits (each closes what it opened)."""
    wanted = set(channels)
    senders: dict[Channel, Sender] = {}
    for channel in Channel:
        if channel in wanted:
            senders[channel] = await SENDERS[channel, chosen_provider(settings, channel)](settings, client)
    return senders
