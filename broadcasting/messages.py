"""The words of one delivery: the message template for the action type, kind, channel and the
participant's language, filled with the action's details (``burgernet.message_templates``)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from broadcasting.senders import Message
from broadcasting.store import DeliveryJob
from burgernet.message_templates import render_message
from burgernet.phone import free_number_display
from burgernet.settings import Settings


def compose(session: Session, job: DeliveryJob, settings: Settings) -> Message:
    rendered = render_message(
        session,
        action_type=job.action_type,
        kind=job.kind,
        channel=job.channel.value,
        language=job.language,
        fields={
            "title": job.action_title,
            # An update carries its own text; the alert describes the action.
            "description": job.message or job.action_description,
            "area": job.region_name,
            "region": job.region_name,
            "outcome": job.action_outcome,
            "result_message": job.action_result_message if job.kind == "result" else "",
            "free_number": free_number_display(settings.asterisk.free_number),
        },
    )
    return Message(subject=rendered.subject or "", body=rendered.body)
