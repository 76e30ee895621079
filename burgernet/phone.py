"""Phone numbers: E.164 normalisation with ``phonenumbers``, caller-ID classification, and
which numbers the system may dial.

Every call the system places to a citizen (alert calls, a centralist's call-back) goes out
over the trunk at our cost and in the police's name. A foreign number (``00…``/``+…``), a
premium or free service (0800, 0900, 0906, 0909), a short code (112, 14xxx) or a pager is never
a citizen's line, so :func:`dialable_national` refuses it, using ``phonenumbers``' copy of the
Dutch numbering plan. The dialplan repeats the check for hand-made calls
(``dialplans/centralists.conf``).
"""

from __future__ import annotations

import re
from typing import ClassVar

import phonenumbers
from phonenumbers import PhoneNumberType

from burgernet.errors import DomainError

DEFAULT_REGION = "NL"
# What Asterisk and carriers put in CALLERID(num) for a withheld number.
_ANONYMOUS_MARKERS = frozenset({"", "anonymous", "unknown", "restricted", "private", "unavailable", "0"})
_CALLER_ID_CHARS = re.compile(r"[^0-9+]")
# 061-065 and 068: the Dutch mobile ranges (066 is pagers; 060, 067 and 069 are not issued).
_DUTCH_MOBILE = re.compile(r"^06[1-58][0-9]{7}$")


_DIALABLE_TYPES = frozenset({PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE})
_SEPARATORS = re.compile(r"[\s().-]")
# Fixed lines start 01-05 or 07; mobiles 06. The national form is always 10 digits.
_DIALABLE_NATIONAL = re.compile(r"0[1-7][0-9]{8}")


class InvalidPhoneNumber(ValueError):
    pass


class NotDialable(DomainError):
    """The system does not call this number; the message says why."""

    code: ClassVar[str] = "phone.not_dialable"


def normalise(raw: str, region: str = DEFAULT_REGION) -> str:
    """Return ``raw`` in E.164 (``+31612345678``) or raise :class:`InvalidPhoneNumber`."""
    text = (raw or "").strip()
    if not text:
        raise InvalidPhoneNumber("empty phone number")
    if len(text) > 32:
        raise InvalidPhoneNumber("phone number too long")
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(f"not a phone number: {raw!r} ({exc})") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber(f"not a valid phone number: {raw!r}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def caller_id_to_e164(caller_id: str | None, region: str = DEFAULT_REGION) -> str | None:
    """Map whatever a trunk puts in the caller ID to E.164, or ``None`` for anonymous/odd values.

    Never raises: a caller must be routed whatever their caller ID looks like.
    """
    if caller_id is None:
        return None
    stripped = caller_id.strip().strip('"').lower()
    if stripped in _ANONYMOUS_MARKERS:
        return None
    if region == DEFAULT_REGION and _DUTCH_MOBILE.match(stripped):
        # The common case on the free number, without the general parser: 06 12345678.
        return "+31" + stripped[1:]
    digits = _CALLER_ID_CHARS.sub("", stripped)
    if len(digits) < 6 or len(digits) > 20:
        return None
    try:
        return normalise(digits, region)
    except InvalidPhoneNumber:
        return None


def e164_to_national(e164: str) -> str:
    """How a Dutch trunk wants a number dialled: +31612345678 → 0612345678, others with 00."""
    if e164.startswith("+31"):
        return "0" + e164[3:]
    if e164.startswith("+"):
        return "00" + e164[1:]
    return e164


def free_number_display(digits: str) -> str:
    """``08000011`` → ``0800-0011``, the way the free number is printed and read out."""
    return f"{digits[:4]}-{digits[4:]}" if len(digits) == 8 and digits.startswith("0800") else digits


def dialable_national(number: str) -> str:
    """The number as the trunk dials it (``0612345678``), or :class:`NotDialable`.

    Accepts the national form or ``+31…`` (how participants are stored); refuses ``00…``
    outright, even ``0031…``: an international prefix is never what we dial.
    """
    compact = _SEPARATORS.sub("", number or "")
    if compact.startswith("00"):
        raise NotDialable(f"{number!r}: international numbers are not dialled")
    if compact.startswith("+"):
        if not compact.startswith("+31"):
            raise NotDialable(f"{number!r}: only Dutch numbers are dialled")
        compact = "0" + compact[3:]
    if not _DIALABLE_NATIONAL.fullmatch(compact):
        raise NotDialable(f"{number!r}: only Dutch fixed (01-05, 07) and mobile (06) numbers are dialled")
    parsed = phonenumbers.parse(compact, DEFAULT_REGION)
    if not phonenumbers.is_valid_number(parsed) or phonenumbers.number_type(parsed) not in _DIALABLE_TYPES:
        raise NotDialable(f"{number!r}: not a Dutch fixed or mobile number")
    return compact


def is_dialable(number: str) -> bool:
    try:
        dialable_national(number)
    except NotDialable:
        return False
    return True
