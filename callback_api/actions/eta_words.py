"""The words of the ETA and the night rules in Dutch (the new-action preview, an action's page,
the participant's page), added to the panel's dictionary (:mod:`callback_api.i18n`) when the
actions feature is imported, as :mod:`callback_api.reports.words` does."""

# ruff: noqa: E501  (a table of sentences: one translation per line reads best)
from __future__ import annotations

from callback_api.i18n import DUTCH

DUTCH.update(
    {
        "Expected time until handled": "Verwachte tijd tot alles verwerkt is",
        "Expected time until handled, if started now": "Verwachte tijd tot alles verwerkt is, bij starten nu",
        "%(channel)s: half in %(t50)s, 90 %% in %(t90)s, all in %(t100)s": "%(channel)s: de helft in %(t50)s, 90 %% in %(t90)s, alles in %(t100)s",
        "held for the night until %(time)s": "wacht de nacht tot %(time)s",
        "held for the night": "wacht de nacht",
        "Everyone": "Iedereen",
        "Held for the night:": "Wacht de nacht:",
        "%(count)s × %(channel)s until %(time)s": "%(count)s × %(channel)s tot %(time)s",
        "they go by themselves when the quiet hours end.": "ze gaan vanzelf wanneer de nachtrust voorbij is.",
        "expected %(seconds)s s": "verwacht %(seconds)s s",
        "Alerts at night too": "Ook 's nachts alerts",
        "In the quiet hours, calls (and texts, if so set) about actions that are not urgent otherwise wait for the morning.": "In de nachtrust wachten oproepen (en sms'jes, als dat zo is ingesteld) over acties zonder spoed anders tot de ochtend.",
    }
)
