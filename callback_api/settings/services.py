"""What the settings sub-features share: asking the running Asterisk to load a change.

A centralist is a SIP account, and the fallback pool is chosen by region code: after such a
change the telephony service renders the Asterisk configuration again and reloads it
(:func:`asterisk_conf.reload.request_reload`). The request goes over Redis; when no telephony
service is listening the page says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from asterisk_conf.reload import request_reload
from burgernet.services import Services


@dataclass(frozen=True)
class ReloadOutcome:
    """How many telephony services heard the reload request (0: run `burgernet asterisk reload`)."""

    listeners: int


def reload_asterisk(services: Services, *, reason: str, actor: str) -> ReloadOutcome:
    return ReloadOutcome(request_reload(services.live, reason=reason, actor=actor))
