"""A centralist's recording of an action's alert message, stored and audited."""

from __future__ import annotations

from burgernet.db import session_scope
from burgernet.repositories import record_audit
from callback_api.state import panel
from recordings.convert import read_wav_format
from recordings.messages import store_action_recording


def store_alert_recording(
    action_id: int, data: bytes, filename: str, lang: str | None, *, actor: str, source: str
) -> float:
    """Convert and store the upload (a bad file raises AudioError and changes nothing), audited.

    Returns the stored recording's length in seconds.
    """
    settings = panel().settings
    path = store_action_recording(action_id, data, filename, lang=lang, settings=settings)
    seconds = read_wav_format(path)[3]
    with session_scope(panel().context.sessions) as session:
        record_audit(
            session,
            actor=actor,
            verb="upload-recording",
            entity="action",
            entity_id=action_id,
            detail={"lang": lang, "seconds": round(seconds, 1), "file": filename},
            source=source,
        )
    return seconds
