"""Caller IDs and phone numbers: whatever the trunk sends, a usable E.164 or "anonymous"."""

from __future__ import annotations

import random

import pytest

from burgernet.phone import InvalidPhoneNumber, caller_id_to_e164, normalise


def test_the_mobile_fast_path_agrees_with_phonenumbers() -> None:
    rng = random.Random(1)
    for _ in range(5000):
        number = f"06{rng.randrange(10)}{rng.randrange(10**7):07d}"
        try:
            expected: str | None = normalise(number)
        except InvalidPhoneNumber:
            expected = None
        assert caller_id_to_e164(number) == expected, number


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0612345678", "+31612345678"),
        ("+31612345678", "+31612345678"),
        ("0031612345678", "+31612345678"),
        ('"06 1234 5678"', "+31612345678"),
        ("0201234567", "+31201234567"),
        ("+3222345678", "+3222345678"),  # a Belgian caller
        ("anonymous", None),
        ("", None),
        ("0", None),
        ("12", None),
        ("0699999999", None),  # 069 is not issued
    ],
)
def test_caller_ids(raw: str, expected: str | None) -> None:
    assert caller_id_to_e164(raw) == expected
