"""RFC 8291 encryption of a batch of Web Push messages in OpenSSL (``_webpush_seal.c``)."""

from collections.abc import Sequence

def seal_many(messages: Sequence[tuple[bytes, bytes, bytes]], /) -> list[bytes | str]:
    """Each (payload, receiver's 65-byte public key, 16-byte auth secret) as an aes128gcm body,
    or why it could not be encrypted."""
