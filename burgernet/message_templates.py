"""The words participants receive: one template per action type, kind, channel and language.

An operator may store a template (table ``message_templates``); without one, the defaults in
:mod:`burgernet.default_messages` apply, in Dutch and English. Templates hold placeholders in
braces, ``{description}``; only the names in :data:`PLACEHOLDERS` exist, and a template naming
another is refused when it is saved (:func:`check_template`), never discovered half-way
through a broadcast.

The neighbourhood inquiry's two e-mails (the invitation with each resident's personal link,
and the follow-up update) are templates too, under the action type ``"inquiry"``, with their
own :data:`INQUIRY_PLACEHOLDERS`; the question and the update keep their paragraphs.

Rendering never calls ``str.format`` on operator text: ``{description.__class__}`` and
format specs would reach Python objects. The template is parsed once and only plain
``{name}`` fields are substituted (``{{`` and ``}}`` stand for literal braces).

SMS: 160 GSM-7 characters make one message. When a rendered SMS is longer, the free-text
fields (description, then the result message) are shortened with "..." until it fits, or
are as short as they can be; the free number is never cut.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from burgernet.default_messages import DEFAULTS
from burgernet.domain import ACTION_TYPE_LABELS, ActionType, Channel, Language
from burgernet.errors import DomainError, NotFoundError
from burgernet.models import MessageTemplate

KINDS = ("alert", "update", "result")
# The neighbourhood inquiry's two e-mails are a family of their own, stored under the action
# type "inquiry": the invitation with the resident's personal link, and the follow-up update.
INQUIRY = "inquiry"
INQUIRY_KINDS = ("invitation", "follow_up")
DEFAULT_FREE_NUMBER = "0800-0011"
SMS_LIMIT = 160
MAX_BODY = 5000
MAX_SUBJECT = 200

# Every placeholder a template may use, with what it stands for (shown in the panel).
PLACEHOLDERS: dict[str, str] = {
    "title": "short title of the action",
    "type": "kind of action in words (missing child, vehicle, ...)",
    "description": "what to look for",
    "area": "where (place or area description)",
    "region": "police region",
    "free_number": "the free number to call (0800-0011)",
    "action_code": "the action code to key on the free number (4821; spoken digit by digit); "
    "without a code the clause holding it is left out",
    "outcome": "how the action ended (result messages)",
    "result_message": "the closing message of the centralist (result messages)",
}
# The inquiry's e-mails have their own placeholders.
INQUIRY_PLACEHOLDERS: dict[str, str] = {
    "title": "title of the inquiry",
    "question": "the question to the residents",
    "closes": "when the inquiry closes (date and time)",
    "url": "the resident's personal link (an invitation must contain it)",
    "message": "the text of the follow-up update",
}
# An invitation without the link would ask for a statement nobody can give.
_REQUIRED = {(INQUIRY, "invitation"): ("url",)}
# Free text typed by an operator in several paragraphs keeps its line breaks.
_MULTILINE = frozenset({"question", "message"})
# Shortened first, in this order, when an SMS is too long.
_SHORTENABLE = ("description", "result_message", "title", "area")
_ELLIPSIS = "..."  # three dots: "…" is not in the GSM-7 alphabet and would halve the SMS size
_SPACE_BEFORE_STOP = re.compile(r"[ ]+(?=\.)")
_STOPS = re.compile(r"\.(?:[ ]*\.)+")
_COLON_STOP = re.compile(r":[ ]*\.")
_BLANK_LINES = re.compile(r"\n{3,}")
# The action code (burgernet.action_codes): printed as is, spoken digit by digit in a voice alert.
_CODE = "action_code"
_DIGIT_WORDS = {
    "nl": ("nul", "één", "twee", "drie", "vier", "vijf", "zes", "zeven", "acht", "negen"),
    "en": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
}


class TemplateError(DomainError):
    """A template cannot be saved or used; the message says what to change."""

    code: ClassVar[str] = "template.invalid"


class UnknownTemplateKey(TemplateError, NotFoundError):
    """No template has this action type, kind, channel or language."""

    code: ClassVar[str] = "template.not_found"


@dataclass(frozen=True)
class RenderedMessage:
    subject: str | None  # e-mail only
    body: str


@dataclass(frozen=True)
class TemplateKey:
    action_type: str
    kind: str
    channel: str
    language: str

    def check(self) -> TemplateKey:
        _one_of("action type", self.action_type, [*(t.value for t in ActionType), INQUIRY])
        if self.action_type == INQUIRY:
            _one_of("kind", self.kind, list(INQUIRY_KINDS))
            _one_of("channel", self.channel, [Channel.EMAIL.value])  # inquiries ask by e-mail only
        else:
            _one_of("kind", self.kind, list(KINDS))
            _one_of("channel", self.channel, [c.value for c in Channel])
        _one_of("language", self.language, [lang.value for lang in Language])
        return self


@dataclass(frozen=True)
class TemplateText:
    subject: str | None
    body: str
    customised: bool  # False: the default (burgernet.default_messages)


def _one_of(name: str, value: str, allowed: list[str]) -> None:
    if value not in allowed:
        raise UnknownTemplateKey(f"unknown {name} {value!r} (one of {', '.join(allowed)})")


# --- keys and defaults ---------------------------------------------------------------------------
def template_keys() -> list[TemplateKey]:
    """Every template an operator can change: per action type, kind, channel and language,
    then the inquiry's e-mails."""
    keys = [
        TemplateKey(t.value, kind, c.value, lang.value)
        for t in ActionType
        for kind in KINDS
        for c in Channel
        for lang in Language
    ]
    keys += [
        TemplateKey(INQUIRY, kind, Channel.EMAIL.value, lang.value)
        for kind in INQUIRY_KINDS
        for lang in Language
    ]
    return keys


def placeholders_for(key: TemplateKey) -> dict[str, str]:
    """The placeholders a template for ``key`` may use, with what each stands for."""
    return INQUIRY_PLACEHOLDERS if key.action_type == INQUIRY else PLACEHOLDERS


def default_template(key: TemplateKey) -> TemplateText:
    subject, body = DEFAULTS[(key.kind, key.channel, key.language)]
    return TemplateText(subject, body, customised=False)


# --- parsing and checking --------------------------------------------------------------------------
_Piece = tuple[str, str | None]  # literal text, then a placeholder name (or None)


def _parse(text: str, placeholders: Mapping[str, str] = PLACEHOLDERS) -> list[_Piece]:
    """Split ``text`` into literal text and placeholder names; TemplateError when malformed."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise TemplateError(
            f"a brace is not closed or not paired ({exc}); write {{{{ or }}}} for a literal brace"
        ) from None
    pieces: list[_Piece] = []
    for literal, field, spec, conversion in parsed:
        if field is None:
            pieces.append((literal, None))
            continue
        if field not in placeholders or spec or conversion:
            shown = (
                "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            )
            allowed = ", ".join("{" + name + "}" for name in placeholders)
            raise TemplateError(f"unknown placeholder {shown}; use only {allowed}")
        pieces.append((literal, field))
    return pieces


def check_template(
    channel: str, subject: str | None, body: str, *, key: TemplateKey | None = None
) -> tuple[str | None, str]:
    """The cleaned (subject, body) an operator may save, or TemplateError saying what is wrong.

    With ``key`` the placeholders are that template's (the inquiry's e-mails have their own).
    """
    _one_of("channel", channel, [c.value for c in Channel])
    placeholders = placeholders_for(key) if key is not None else PLACEHOLDERS
    body = body.replace("\r\n", "\n").strip()
    subject = (subject or "").strip() or None
    if not body:
        raise TemplateError("the message text is empty")
    if len(body) > MAX_BODY:
        raise TemplateError(f"the message text is longer than {MAX_BODY} characters")
    used = {name for _literal, name in _parse(body, placeholders) if name}
    for name in _REQUIRED.get((key.action_type, key.kind), ()) if key is not None else ():
        if name not in used:
            raise TemplateError(f"the message text needs {{{name}}}: {placeholders[name]}")
    if channel == Channel.EMAIL.value:
        if subject is None:
            raise TemplateError("an e-mail needs a subject")
        if len(subject) > MAX_SUBJECT or "\n" in subject:
            raise TemplateError(f"the subject must be one line of at most {MAX_SUBJECT} characters")
        _parse(subject, placeholders)
    elif subject is not None:
        raise TemplateError("only e-mail has a subject; leave it empty for SMS and voice")
    return subject, body


def _without_code_clause(pieces: list[_Piece]) -> list[_Piece]:
    """The template without the clause that names the action code, for a message with no code
    (a draft's preview; a code is given when the action starts).

    The clause runs back from ``{action_code}`` to the nearest ``,`` ``;`` or ``:`` (dropped with
    it) or sentence end (kept), within the text right before it: "Bel gratis {free_number},
    code {action_code}" becomes "Bel gratis {free_number}".
    """
    kept: list[_Piece] = []
    for literal, field in pieces:
        if field != _CODE:
            kept.append((literal, field))
            continue
        cut = max(literal.rfind(mark) for mark in ",;:")
        end = max(literal.rfind(mark) for mark in ".?!\n")
        if end > cut:
            kept.append((literal[: end + 1], None))
        elif cut >= 0:
            kept.append((literal[:cut], None))
    return kept


def _spoken_code(code: str, language: str) -> str:
    # Digit by digit, with a pause between: "vier, acht, twee, één" (not "vierduizend...").
    words = _DIGIT_WORDS[language]
    return ", ".join(words[int(digit)] for digit in code if digit.isdigit())


def _substitute(pieces: list[_Piece], values: Mapping[str, str]) -> str:
    return "".join(literal + (values.get(field, "") if field else "") for literal, field in pieces)


def _one_stop(match: re.Match[str]) -> str:
    # ". . ." left by empty fields is one full stop; a real ellipsis ("...") stays.
    return _ELLIPSIS if _ELLIPSIS in match.group() else "."


def _tidy(text: str) -> str:
    """Spaces and full stops put right after empty or dotted fields, line breaks kept.

    ``"{description}. In {area}"`` with an empty description gives ``". In"``; a description
    ending in its own full stop gives ``".. In"``: both become one full stop (an ellipsis stays).
    """
    lines = [" ".join(line.split()) for line in text.split("\n")]
    tidy = "\n".join(lines)
    tidy = _STOPS.sub(_one_stop, tidy)
    tidy = _SPACE_BEFORE_STOP.sub("", tidy)
    tidy = _STOPS.sub(_one_stop, tidy)
    tidy = _COLON_STOP.sub(".", tidy)
    tidy = _BLANK_LINES.sub("\n\n", tidy)
    return tidy.strip()


def _one_line(value: object) -> str:
    return " ".join(str(value).split())


def _values(key: TemplateKey, fields: Mapping[str, str]) -> dict[str, str]:
    values = {
        name: "\n".join(_one_line(line) for line in str(fields.get(name, "")).strip().splitlines())
        if name in _MULTILINE
        else _one_line(fields.get(name, ""))
        for name in placeholders_for(key)
    }
    if key.action_type == INQUIRY:
        return values
    if not values["type"]:
        values["type"] = ACTION_TYPE_LABELS[ActionType(key.action_type)][Language(key.language)]
    if not values["free_number"]:
        values["free_number"] = DEFAULT_FREE_NUMBER
    return values


def _fit_sms(pieces: list[_Piece], values: dict[str, str]) -> str:
    body = _tidy(_substitute(pieces, values))
    for name in _SHORTENABLE:
        excess = len(body) - SMS_LIMIT
        if excess <= 0:
            break
        value = values[name]
        if not value:
            continue
        keep = max(0, len(value) - excess - len(_ELLIPSIS))
        values[name] = (value[:keep].rstrip() + _ELLIPSIS) if keep else ""
        body = _tidy(_substitute(pieces, values))
    return body


def stored_template(session: Session, key: TemplateKey) -> TemplateText:
    """The operator's template for ``key``, or the default."""
    row = session.execute(
        select(MessageTemplate.subject, MessageTemplate.body).where(
            MessageTemplate.action_type == key.action_type,
            MessageTemplate.kind == key.kind,
            MessageTemplate.channel == key.channel,
            MessageTemplate.language == key.language,
        )
    ).first()
    if row is None:
        return default_template(key)
    return TemplateText(row[0], row[1], customised=True)


def render_text(
    key: TemplateKey, subject: str | None, body: str, fields: Mapping[str, str]
) -> RenderedMessage:
    """Fill a template (stored, default or a draft being previewed) with ``fields``."""
    values = _values(key, fields)
    placeholders = placeholders_for(key)
    pieces = _parse(body, placeholders)
    if _CODE in values and not values[_CODE]:
        pieces = _without_code_clause(pieces)
    elif _CODE in values and key.channel == Channel.VOICE.value:
        values[_CODE] = _spoken_code(values[_CODE], key.language)
    if key.channel == Channel.SMS.value:
        text = _fit_sms(pieces, dict(values))
    else:
        text = _tidy(_substitute(pieces, values))
    rendered_subject = None
    if key.channel == Channel.EMAIL.value and subject:
        rendered_subject = _tidy(_substitute(_parse(subject, placeholders), values))[:MAX_SUBJECT]
    return RenderedMessage(rendered_subject, text)


def render_message(
    session: Session,
    *,
    action_type: str,
    kind: str,
    channel: str,
    language: str,
    fields: dict[str, str],
) -> RenderedMessage:
    """The message for one participant's channel and language (what the broadcasters send).

    ``fields`` holds the placeholder values (``description``, ``area``, ``outcome``, ...);
    missing ones become empty, ``type`` defaults to the action type in words and
    ``free_number`` to 0800-0011. Unknown keys are ignored.
    """
    key = TemplateKey(action_type, kind, channel, language).check()
    template = stored_template(session, key)
    return render_text(key, template.subject, template.body, fields)


def save_template(
    session: Session, key: TemplateKey, *, subject: str | None, body: str, actor: str
) -> tuple[str | None, str]:
    """Store (or replace) the template for ``key`` after checking it; the caller audits."""
    key.check()
    subject, body = check_template(key.channel, subject, body, key=key)
    row = session.scalar(
        select(MessageTemplate).where(
            MessageTemplate.action_type == key.action_type,
            MessageTemplate.kind == key.kind,
            MessageTemplate.channel == key.channel,
            MessageTemplate.language == key.language,
        )
    )
    now = datetime.now(UTC)
    if row is None:
        session.add(
            MessageTemplate(
                action_type=key.action_type,
                kind=key.kind,
                channel=key.channel,
                language=key.language,
                subject=subject,
                body=body,
                updated_at=now,
                updated_by=actor,
            )
        )
    else:
        row.subject, row.body, row.updated_at, row.updated_by = subject, body, now, actor
    session.flush()
    return subject, body


def reset_template(session: Session, key: TemplateKey) -> bool:
    """Drop the stored template so the default applies again; False when there was none."""
    key.check()
    row = session.scalar(
        select(MessageTemplate).where(
            MessageTemplate.action_type == key.action_type,
            MessageTemplate.kind == key.kind,
            MessageTemplate.channel == key.channel,
            MessageTemplate.language == key.language,
        )
    )
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def customised_keys(session: Session) -> set[TemplateKey]:
    rows = session.execute(
        select(
            MessageTemplate.action_type,
            MessageTemplate.kind,
            MessageTemplate.channel,
            MessageTemplate.language,
        )
    )
    return {TemplateKey(*row) for row in rows}
