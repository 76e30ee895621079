"""The approval pages' words in Dutch, added to the panel's dictionary (:mod:`callback_api.i18n`)
when the feature is imported (as :mod:`callback_api.reports.words` does)."""

# ruff: noqa: E501  (a table of sentences: one translation per line reads best)
from __future__ import annotations

from callback_api.i18n import DUTCH

DUTCH.update(
    {
        "Approvals": "Goedkeuringen",
        "Approval": "Goedkeuring",
        "Approvals waiting": "Wachtende goedkeuringen",
        "Request approval": "Goedkeuring vragen",
        "Approve and start": "Goedkeuren en starten",
        "Refuse": "Weigeren",
        "Reason (the requester reads it)": "Reden (de aanvrager leest die)",
        "Requested by": "Gevraagd door",
        "Requested": "Gevraagd",
        "Time left": "Resterende tijd",
        "Estimated time to reach them": "Geschatte tijd om hen te bereiken",
        "not estimated": "niet geschat",
        "min": "min",
        "No requests are waiting.": "Er wachten geen aanvragen.",
        "Your own request: another approver must decide.": "Uw eigen aanvraag: een andere goedkeurder moet beslissen.",
        "Only an approver can decide; an admin sets the approver flag.": "Alleen een goedkeurder kan beslissen; een beheerder zet die markering.",
        "This action needs a second person's approval to start (four eyes).": "Deze actie heeft goedkeuring van een tweede persoon nodig om te starten (vier ogen).",
        "Waiting for approval since %(time)s, asked by %(user)s.": "Wacht op goedkeuring sinds %(time)s, gevraagd door %(user)s.",
        "The last request was %(status)s by %(user)s: %(reason)s": "De laatste aanvraag is %(status)s door %(user)s: %(reason)s",
        "approved": "goedgekeurd",
        "refused": "geweigerd",
        "expired": "verlopen",
        "Approval requested: an approver must approve within %(minutes)s minutes.": "Goedkeuring gevraagd: een goedkeurder moet binnen %(minutes)s minuten goedkeuren.",
        "Not approved: %(why)s": "Niet goedgekeurd: %(why)s",
        "Approved: action %(id)s started.": "Goedgekeurd: actie %(id)s is gestart.",
        "Say why the start is refused.": "Geef aan waarom de start geweigerd wordt.",
        "Not refused: %(why)s": "Niet geweigerd: %(why)s",
        "Refused: action %(id)s stays a draft.": "Geweigerd: actie %(id)s blijft een concept.",
        "Approver": "Goedkeurder",
        "approver": "goedkeurder",
        "Make approver": "Goedkeurder maken",
        "Take the approver flag": "Goedkeurder-markering intrekken",
        "An approver may approve another person's start of an AMBER Alert or national action (four eyes).": "Een goedkeurder mag de start van een AMBER Alert of landelijke actie door een ander goedkeuren (vier ogen).",
        "Starting needs a second person's approval": "Starten vraagt goedkeuring van een tweede persoon",
        "An AMBER Alert, and every national action, always needs an approver's approval to start.": "Een AMBER Alert, en elke landelijke actie, heeft altijd goedkeuring van een goedkeurder nodig om te starten.",
        "An approver other than the requester must approve the start (four eyes). Urgent regional actions usually start without.": "Een andere goedkeurder dan de aanvrager moet de start goedkeuren (vier ogen). Urgente regionale acties starten meestal zonder.",
        "needed": "nodig",
        "Approval requested instead of a start: action %(id)s needs a second person.": "Goedkeuring gevraagd in plaats van gestart: actie %(id)s heeft een tweede persoon nodig.",
    }
)
