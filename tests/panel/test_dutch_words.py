"""Every string a panel template marks for translation has its Dutch words.

The panel's default language is Dutch (a Dutch browser gets it first): an English string
without a translation shows up in English in the middle of a Dutch page.
"""

from __future__ import annotations

import re
from pathlib import Path

import callback_api.reports.words  # noqa: F401  (adds the reports' words to the dictionary)
from callback_api.i18n import DUTCH

TEMPLATES = Path(__file__).resolve().parents[2] / "callback_api" / "templates"
MARKED = re.compile(r"""\b_\((["'])(.+?)(?<!\\)\1""")


def test_every_marked_template_string_has_a_dutch_translation() -> None:
    marked = {
        (path.relative_to(TEMPLATES).as_posix(), match[2])
        for path in TEMPLATES.rglob("*.html")
        for match in MARKED.finditer(path.read_text())
    }
    assert len(marked) > 100  # the pattern really finds the panel's strings
    assert sorted(entry for entry in marked if entry[1] not in DUTCH) == []


def test_the_words_on_the_call_card_have_dutch_translations() -> None:
    from callback_api.desk.views import CARD_WORDS

    assert [english for english in CARD_WORDS.values() if english not in DUTCH] == []
