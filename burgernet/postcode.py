"""Dutch postcodes: ``1234 AB`` (PC6) and the numeric part ``1234`` (PC4, what DTMF can carry)."""

from __future__ import annotations

import re

_PC6 = re.compile(r"^([1-9][0-9]{3})\s?([A-Za-z]{2})$")
_PC4 = re.compile(r"^[1-9][0-9]{3}$")
# PostNL never issues these letter pairs.
_UNUSED_LETTERS = frozenset({"SA", "SD", "SS"})


class InvalidPostcode(ValueError):
    pass


def normalise_postcode(raw: str) -> str:
    """``"1234 ab"`` → ``"1234AB"``; a bare PC4 ``"1234"`` stays ``"1234"``."""
    text = (raw or "").strip().upper()
    if _PC4.match(text):
        return text
    match = _PC6.match(text)
    if not match:
        raise InvalidPostcode(f"not a Dutch postcode: {raw!r} (expected 1234 AB)")
    digits, letters = match.groups()
    if letters in _UNUSED_LETTERS:
        raise InvalidPostcode(f"not a Dutch postcode: {raw!r} ({letters} is never used)")
    return digits + letters


def pc4(postcode: str) -> str:
    return postcode[:4]


def is_pc4(text: str) -> bool:
    return bool(_PC4.match(text))
