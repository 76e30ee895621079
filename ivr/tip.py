"""FastAGI ``tip``: a spoken tip was recorded; file it against its action as a call-back request.

Called from ``[burgernet-tip]`` (``dialplans/tip.conf``) after ``Record(${BN_TIP_FILE}.wav)``.
If this script fails or FastAGI is down, the recording is still on disk where the dialplan
wrote it (BN_TIP_FILE / BN_TIP_DIR); nothing the caller said is lost.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from burgernet import channel_vars as cv
from burgernet.phone import caller_id_to_e164
from ivr.agi import AgiSession
from ivr.services import IvrServices

log = logging.getLogger(__name__)


async def handle(session: AgiSession, services: IvrServices) -> None:
    unique_id = session.env.unique_id
    tip_base = await session.get_variable(cv.VAR_TIP_FILE)
    action_text = await session.get_variable(cv.VAR_ACTION_ID)
    action_id = int(action_text) if action_text and action_text.isdigit() else None
    recording = Path(f"{tip_base}.wav") if tip_base else None
    if recording is None or not recording.is_file() or recording.stat().st_size <= 44:  # 44 = empty WAV
        log.info("call %s: no tip recorded (%s)", unique_id, recording)
        return
    number = caller_id_to_e164(session.env.caller_id)
    tip_id = await asyncio.get_running_loop().run_in_executor(
        services.call_log_writer,
        lambda: services.calls.register_tip(
            unique_id, action_id=action_id, recording_path=str(recording), callback_number=number
        ),
    )
    await session.set_variable(cv.VAR_OUTCOME, cv.OUTCOME_TIP_LEFT)
    await services.live.publish({"type": "tip", "tip_id": tip_id, "action_id": action_id, "call": unique_id})
    log.info("call %s: tip %s filed for action %s", unique_id, tip_id, action_id)
