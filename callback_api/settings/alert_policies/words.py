"""The Alert retries page's words in Dutch, added to the panel's dictionary
(:mod:`callback_api.i18n`) when the feature is imported."""

# ruff: noqa: E501  (a table of sentences: one translation per line reads best)
from __future__ import annotations

from callback_api.i18n import DUTCH

for _english, _dutch in {
    "Alert retries": "Herhaalpogingen alert",
    "Alert retries and fallback": "Herhaalpogingen en terugval van alerts",
    "What follows each outcome of an alert call. The calls counted are every call of the delivery, whatever their outcome; a wait grows by the multiplier after each call. Workers use a change within %(seconds)s seconds.": "Wat er volgt op elke uitkomst van een alertgesprek. Alle gesprekken van de bezorging tellen mee, wat hun uitkomst ook was; een wachttijd groeit na elk gesprek met de vermenigvuldiger. Workers gebruiken een wijziging binnen %(seconds)s seconden.",
    "An alert call that did not reach the participant in the end (failed, or still busy or unanswered after the last call) goes out by SMS when that outcome says so, to participants who allow SMS and have a mobile number, once per broadcast. Trouble at a provider (an overloaded or unreachable service) is retried as before: %(attempts)s attempts, %(seconds)s s doubling.": "Een alertgesprek dat de deelnemer uiteindelijk niet bereikte (mislukt, of na het laatste gesprek nog steeds in gesprek of niet opgenomen) gaat per sms, als die uitkomst dat zegt, naar deelnemers die sms toestaan en een mobiel nummer hebben, eenmaal per uitzending. Storingen bij een aanbieder (overbelast of onbereikbaar) worden herhaald zoals voorheen: %(attempts)s pogingen, %(seconds)s s en telkens het dubbele.",
    "Outcome": "Uitkomst",
    "Calls at most": "Hoogstens gesprekken",
    "Wait": "Wachttijd",
    "Multiplier": "Vermenigvuldiger",
    "After the last call": "Na het laatste gesprek",
    "Default": "Standaard",
    "Busy": "In gesprek",
    "No answer": "Niet opgenomen",
    "Answering machine (message left)": "Antwoordapparaat (bericht ingesproken)",
    "Failed (the call cannot be made)": "Mislukt (het gesprek kan niet tot stand komen)",
    "Send the alert by SMS": "Alert per sms sturen",
    "Stop": "Stoppen",
    "Wait before the next call (seconds)": "Wachttijd voor het volgende gesprek (seconden)",
    "Wait multiplier per call": "Vermenigvuldiger van de wachttijd per gesprek",
    "A failed call is never repeated: the number cannot be called. Choose what follows it.": "Een mislukt gesprek wordt nooit herhaald: het nummer is niet te bellen. Kies wat erop volgt.",
    "The settings' default: %(default)s.": "De standaard uit de instellingen: %(default)s.",
    "%(attempts)s call(s), %(seconds)s s apart, ×%(multiplier)s": "%(attempts)s gesprek(ken), %(seconds)s s ertussen, ×%(multiplier)s",
}.items():
    DUTCH.setdefault(_english, _dutch)
