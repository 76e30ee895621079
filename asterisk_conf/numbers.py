"""Which called numbers reach the free-number flow, in the forms carriers deliver them.

Carriers differ: one sends the free number as dialled (``08000011``), another in E.164
(``+318000011`` or ``318000011``), a third with the international prefix (``00318000011``).
All of them, and the extra DIDs of ``asterisk.extra_numbers``, go to the same flow; the
dialplan then carries on with the canonical form (``asterisk.free_number``), so FastAGI and
the call log see one number whatever the trunk sent.
"""

from __future__ import annotations

import re

import phonenumbers

from burgernet.phone import DEFAULT_REGION
from burgernet.settings import AsteriskSettings

# What a trunk may deliver as a called number: digits, with an optional leading '+'.
_NUMBER = re.compile(r"\+?[0-9]{3,15}")
# Separator of the rendered list (BN_FREE_NUMBERS); FIELDNUM() in the dialplan splits on it.
LIST_SEPARATOR = "&"


class NumberError(ValueError):
    """A free number or an extra DID that cannot be rendered."""


def check_number(field: str, number: str) -> str:
    if not _NUMBER.fullmatch(number):
        raise NumberError(f"{field} {number!r} is not allowed here: use digits, with an optional leading +")
    return number


def number_forms(number: str, region: str = DEFAULT_REGION) -> tuple[str, ...]:
    """``number`` as given plus its E.164 forms (``+31…``, ``31…``) and ``0031…``, in that order."""
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException as exc:
        raise NumberError(f"{number!r} is not a phone number: {exc}") from None
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    forms = (number, e164, e164.removeprefix("+"), "00" + e164.removeprefix("+"))
    return tuple(dict.fromkeys(forms))  # unique, order kept


def free_numbers(a: AsteriskSettings) -> tuple[str, ...]:
    """Every called number that reaches the free-number flow; the canonical form first."""
    check_number("asterisk.free_number", a.free_number)
    numbers = list(number_forms(a.free_number))
    for extra in a.extra_numbers:
        check_number("asterisk.extra_numbers", extra)
        numbers.extend(number_forms(extra))
    return tuple(dict.fromkeys(numbers))
