"""Click-to-call from the panel's worklist through AMI (implements burgernet.ports.CallbackDialPort).

The panel is a WSGI process without an AMI connection of its own, and a click is rare: each
click opens one short AMI session (``ivr.ami.AmiClient``, with its guards: no line breaks in
headers, only Dutch fixed and mobile numbers over the trunk), sends one asynchronous
``Originate`` and logs off. The Originate rings the centralist's own phone (``PJSIP/<endpoint>``)
showing ``display``; once they answer, ``[burgernet-callback]`` (dialplans/callback.conf) rings
the citizen over the trunk with the alert calls' caller ID.
"""

from __future__ import annotations

import asyncio

from burgernet import channel_vars as cv
from burgernet.callbacks import CallbackDialFailed
from burgernet.ports import CallbackDial
from burgernet.settings import Settings
from ivr.ami import AmiClient

# How long the centralist's own phone rings before the attempt is given up.
CENTRALIST_RING_MS = 30_000


class AmiCallbackDialer:
    def __init__(self, settings: Settings, *, connect_timeout: float = 5.0) -> None:
        self._settings = settings
        self._connect_timeout = connect_timeout

    def dial(self, request: CallbackDial) -> None:
        asyncio.run(self._dial(request))

    async def _dial(self, request: CallbackDial) -> None:
        a = self._settings.asterisk
        ami = AmiClient(a.ami_host, a.ami_port, a.ami_username, a.ami_secret, max_backoff=1.0)
        try:
            try:
                await ami.connect(wait=self._connect_timeout)
            except TimeoutError as exc:
                raise CallbackDialFailed(
                    f"no AMI connection to Asterisk at {a.ami_host}:{a.ami_port}"
                ) from exc
            response = await ami.send_action(
                {
                    "Action": "Originate",
                    "Channel": f"PJSIP/{request.centralist_endpoint}",
                    "Context": cv.CTX_CALLBACK,
                    "Exten": request.number,
                    "Priority": "1",
                    # What the centralist's phone shows while it rings: the item and the number.
                    "CallerID": f'"{request.display}" <{request.number}>',
                    "Timeout": str(CENTRALIST_RING_MS),
                    "Async": "true",
                    "ChannelId": request.unique_id,
                    "ActionID": request.unique_id,
                    "Variable": [
                        f"{cv.VAR_CALL_KIND}={cv.CALL_KIND_CALLBACK}",
                        f"{cv.VAR_CALLBACK_ITEM}={request.item_id}",
                        f"{cv.VAR_ACTION_ID}={request.action_id or ''}",
                    ],
                },
                timeout=10.0,
                as_list=False,
            )
            if str(response.get("Response", "")).lower() != "success":
                raise CallbackDialFailed(f"Asterisk refused the call: {response.get('Message')}")
        finally:
            await ami.close()
