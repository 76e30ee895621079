"""The words of one delivery: the message template for the action type, kind, channel and the
participant's language, filled with the action's details (``burgernet.message_templates``).

A neighbourhood inquiry's e-mails use the inquiry's templates. Its invitation is personal: it
carries the resident's own link, whose token is issued when the delivery is claimed.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from broadcasting.channels.base import Message
from broadcasting.store import DeliveryJob, PushTarget
from burgernet.action_codes import message_code
from burgernet.app_alerts import action_payload
from burgernet.domain import Channel, outcome_words
from burgernet.inquiries import INVITATION, issue_link, link_url, local_time
from burgernet.message_templates import INQUIRY, render_message
from burgernet.models import Action, Broadcast, Inquiry
from burgernet.phone import free_number_display
from burgernet.settings import Settings


def compose(session: Session, job: DeliveryJob, settings: Settings) -> Message:
    """An action's message: the same for everyone with one channel and language."""
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
            # Keyed on the free number to reach this action's team (burgernet.action_codes).
            "action_code": message_code(session, job.for_action) or "",
        },
    )
    return Message(subject=rendered.subject or "", body=rendered.body)


def compose_inquiry_mail(session: Session, job: DeliveryJob, settings: Settings) -> Message | None:
    """An inquiry's e-mail; None when there is nothing to send any more.

    For an invitation this issues the link's token for this delivery and stores its hash, in
    the caller's transaction (the worker's claim): the URL goes into this one message only.
    """
    assert job.for_inquiry is not None
    if job.kind == INVITATION:
        issued = issue_link(
            session,
            inquiry_id=job.for_inquiry,
            participant_id=job.participant,
            delivery_id=job.delivery_id,
            secret_key=settings.web.secret_key,
        )
        if issued is None:
            return None
        kind = "invitation"
        fields = {
            "title": issued.title,
            "question": issued.question,
            "closes": local_time(issued.closes_at),
            "url": link_url(settings.web.public_base_url, issued.token),
        }
    else:
        inquiry = session.get(Inquiry, job.for_inquiry)
        if inquiry is None:
            return None
        kind = "follow_up"
        fields = {"title": inquiry.title, "message": job.message}
    rendered = render_message(
        session,
        action_type=INQUIRY,
        kind=kind,
        channel=job.channel.value,
        language=job.language,
        fields=fields,
    )
    return Message(subject=rendered.subject or "", body=rendered.body)


def compose_push(session: Session, target: PushTarget, settings: Settings) -> bytes:
    """A push's payload (:mod:`burgernet.app_alerts`): the same for every device with one
    language, but for a reply, which is one device's question."""
    action = session.get(Action, target.action_id)
    if action is None:
        raise LookupError(f"push delivery {target.delivery_id}: action {target.action_id} is gone")
    broadcast = session.get(Broadcast, target.broadcast_id)
    message = broadcast.message if broadcast is not None else ""
    if target.kind != "reply":
        region = action.region.name if action.region is not None else ""
        rendered = render_message(
            session,
            action_type=action.action_type,
            kind=target.kind,
            channel=Channel.PUSH.value,
            language=target.lang,
            fields={
                "title": action.title,
                "description": message or action.description,
                "area": region,
                "region": region,
                "outcome": outcome_words(action.outcome_kind, target.lang),
                "result_message": (action.result_message or "") if target.kind == "result" else "",
                "free_number": free_number_display(settings.asterisk.free_number),
                "action_code": action.action_code or "",
            },
        )
        message = rendered.body
    return action_payload(
        action,
        kind=target.kind,
        message=message,
        free_number=settings.asterisk.free_number,
        sighting_id=target.sighting_id if target.kind == "reply" else None,
        session=session,
    )
