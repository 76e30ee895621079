"""Domain vocabulary shared by every part: enums, the action life cycle, priorities.

Pure: no database, no I/O. The ORM models and the routing core both speak these terms.
"""

from __future__ import annotations

import enum


class ActionType(enum.StrEnum):
    MISSING_PERSON = "missing_person"
    MISSING_CHILD = "missing_child"
    AMBER_ALERT = "amber_alert"
    SUSPECT = "suspect"
    VEHICLE = "vehicle"
    INFORMATION = "information"


class ActionStatus(enum.StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    CLOSED = "closed"


class AreaKind(enum.StrEnum):
    CIRCLE = "circle"
    POLYGON = "polygon"
    POSTCODES = "postcodes"
    NATIONAL = "national"  # a national AMBER Alert: everyone


class Channel(enum.StrEnum):
    VOICE = "voice"
    SMS = "sms"
    EMAIL = "email"
    # Web Push to the participant app: its recipients are push subscriptions, not participants.
    PUSH = "push"


# The life of a delivery, in order (broadcasting/store.py explains each): "sent" is final for
# e-mail and provisional for SMS, which a status callback may move to delivered/undelivered.
DELIVERY_STATUSES: tuple[str, ...] = (
    "queued",
    "sending",
    "sent",
    "delivered",
    "answered",
    # An answering machine took the alert call; the short message was left after its beep.
    "machine",
    "busy",
    "no_answer",
    "undelivered",
    "failed",
    "cancelled",
)


class OutcomeKind(enum.StrEnum):
    """How an action ended, chosen from a fixed list when it is closed (management's figures
    count "solved through a Burgernet tip" against the rest; the free-text note stays internal)."""

    SOLVED_BY_TIP = "solved_by_tip"  # found or solved through a Burgernet tip
    FOUND_OTHERWISE = "found_otherwise"
    NOT_FOUND = "not_found"
    CANCELLED = "cancelled"  # cancelled, or a false alarm
    OTHER = "other"


OUTCOME_KINDS: tuple[str, ...] = tuple(kind.value for kind in OutcomeKind)


class Language(enum.StrEnum):
    NL = "nl"
    EN = "en"


class Role(enum.StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    CENTRALIST = "centralist"
    VIEWER = "viewer"


class InvalidTransition(ValueError):
    """An action was asked to move to a status its life cycle does not allow."""


# draft → active → closed; a draft may also be closed (abandoned before it started).
ALLOWED_TRANSITIONS: dict[ActionStatus, frozenset[ActionStatus]] = {
    ActionStatus.DRAFT: frozenset({ActionStatus.ACTIVE, ActionStatus.CLOSED}),
    ActionStatus.ACTIVE: frozenset({ActionStatus.CLOSED}),
    ActionStatus.CLOSED: frozenset(),
}


def check_transition(current: ActionStatus, target: ActionStatus) -> None:
    if target not in ALLOWED_TRANSITIONS[current]:
        raise InvalidTransition(f"an action cannot go from {current.value} to {target.value}")


# Higher first: used to order spoken menus and broadcast queues (AMBER above urgent above info).
ACTION_PRIORITY: dict[ActionType, int] = {
    ActionType.AMBER_ALERT: 100,
    ActionType.MISSING_CHILD: 90,
    ActionType.MISSING_PERSON: 70,
    ActionType.SUSPECT: 60,
    ActionType.VEHICLE: 50,
    ActionType.INFORMATION: 10,
}

ACTION_TYPE_LABELS: dict[ActionType, dict[Language, str]] = {
    ActionType.MISSING_PERSON: {Language.NL: "vermiste persoon", Language.EN: "missing person"},
    ActionType.MISSING_CHILD: {Language.NL: "vermist kind", Language.EN: "missing child"},
    ActionType.AMBER_ALERT: {Language.NL: "AMBER Alert", Language.EN: "AMBER Alert"},
    ActionType.SUSPECT: {Language.NL: "verdachte", Language.EN: "suspect"},
    ActionType.VEHICLE: {Language.NL: "voertuig", Language.EN: "vehicle"},
    ActionType.INFORMATION: {Language.NL: "informatie", Language.EN: "information"},
}

OUTCOME_KIND_LABELS: dict[OutcomeKind, dict[Language, str]] = {
    OutcomeKind.SOLVED_BY_TIP: {
        Language.NL: "gevonden of opgelost dankzij een Burgernet-tip",
        Language.EN: "found or solved through a Burgernet tip",
    },
    OutcomeKind.FOUND_OTHERWISE: {
        Language.NL: "op een andere manier gevonden",
        Language.EN: "found otherwise",
    },
    OutcomeKind.NOT_FOUND: {Language.NL: "niet gevonden", Language.EN: "not found"},
    OutcomeKind.CANCELLED: {
        Language.NL: "ingetrokken of loos alarm",
        Language.EN: "cancelled or false alarm",
    },
    OutcomeKind.OTHER: {Language.NL: "anders", Language.EN: "other"},
}


def outcome_words(outcome_kind: str | None, language: str) -> str:
    """The public words for how an action ended, in the participant's language ("" if not closed)."""
    if not outcome_kind:
        return ""
    try:
        labels = OUTCOME_KIND_LABELS[OutcomeKind(outcome_kind)]
    except ValueError:
        return ""
    return labels.get(Language(language) if language in ("nl", "en") else Language.NL, "")
