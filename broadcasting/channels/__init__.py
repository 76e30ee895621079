"""One sender per channel and provider, and the registry that picks them (:mod:`.registry`).

Deliberately imports nothing: ``broadcasting.messages`` needs :class:`.base.Message` while the
senders' providers (the Twilio package's TwiML) need ``broadcasting.messages``.
"""
