"""The channel registry: every channel has a sender, each factory builds the sender of its own
channel, and a worker gets exactly the channels it was started for, through the provider the
settings choose."""

from __future__ import annotations

import redis.asyncio as aioredis

from broadcasting.channels import registry
from broadcasting.channels.email_smtp import SmtpEmailSender
from broadcasting.channels.sms_twilio import TwilioSmsSender
from broadcasting.channels.voice_asterisk import AsteriskVoiceSender
from broadcasting.channels.voice_twilio import TwilioVoiceSender
from burgernet.domain import Channel
from burgernet.settings import Settings


def with_voice_provider(settings: Settings, provider: str) -> Settings:
    return settings.model_copy(
        update={"broadcast": settings.broadcast.model_copy(update={"voice_provider": provider})}
    )


def test_every_channel_has_a_registered_sender() -> None:
    assert {channel for channel, _ in registry.SENDERS} == set(Channel)


async def test_each_factory_builds_a_sender_for_its_own_channel(bn_settings: Settings) -> None:
    client = aioredis.Redis.from_url(bn_settings.redis.url)
    try:
        for (channel, provider), create in registry.SENDERS.items():
            sender = await create(bn_settings, client)
            try:
                assert sender.channel is channel, (channel, provider)
            finally:
                await sender.close()
    finally:
        await client.aclose()


def test_a_channel_with_one_provider_needs_no_setting(bn_settings: Settings) -> None:
    assert registry.chosen_provider(bn_settings, Channel.SMS) == "twilio"
    assert registry.chosen_provider(bn_settings, Channel.EMAIL) == "smtp"


async def test_a_worker_gets_the_senders_of_its_channels_by_the_chosen_provider(
    bn_settings: Settings,
) -> None:
    client = aioredis.Redis.from_url(bn_settings.redis.url)
    try:
        twilio = with_voice_provider(bn_settings, "twilio")
        made = await registry.build_senders(twilio, {Channel.VOICE, Channel.SMS}, client)
        assert set(made) == {Channel.VOICE, Channel.SMS}
        assert isinstance(made[Channel.VOICE], TwilioVoiceSender)
        assert isinstance(made[Channel.SMS], TwilioSmsSender)

        asterisk = with_voice_provider(bn_settings, "asterisk")
        made = await registry.build_senders(asterisk, {Channel.VOICE, Channel.EMAIL}, client)
        assert set(made) == {Channel.VOICE, Channel.EMAIL}
        assert isinstance(made[Channel.VOICE], AsteriskVoiceSender)
        assert isinstance(made[Channel.EMAIL], SmtpEmailSender)
        for sender in made.values():
            await sender.close()
    finally:
        await client.aclose()
