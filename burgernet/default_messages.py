"""The default texts participants receive, in Dutch and English, until an operator stores a
template of their own (:mod:`burgernet.message_templates` renders both).

(kind, channel, language) → (subject, body): an action's alert, update and result per channel;
the neighbourhood inquiry's invitation and follow-up, by e-mail only. SMS texts fit 160
characters with a short description; voice texts are read by text-to-speech before the key
menu ("press 1 ...").
"""

from __future__ import annotations

DEFAULTS: dict[tuple[str, str, str], tuple[str | None, str]] = {
    ("alert", "sms", "nl"): (
        None,
        "Burgernet {type}: {description}. Omgeving {area}. "
        "Gezien? Bel gratis {free_number}, code {action_code}",
    ),
    ("alert", "sms", "en"): (
        None,
        "Burgernet {type}: {description}. Area: {area}. Seen? Call free {free_number}, code {action_code}",
    ),
    ("alert", "voice", "nl"): (
        None,
        "Dit is Burgernet, namens de politie. Burgernetactie: {type}. {description}. "
        "In de omgeving van {area}. Heeft u iets gezien? Bel dan gratis {free_number}, "
        "en toets de actiecode {action_code}.",
    ),
    ("alert", "voice", "en"): (
        None,
        "This is Burgernet, on behalf of the police. Burgernet alert: {type}. {description}. "
        "In the area of {area}. Have you seen anything? Then call {free_number}, free of charge, "
        "and key the action code {action_code}.",
    ),
    ("alert", "email", "nl"): (
        "Burgernet: {type} in {area}",
        "Beste deelnemer,\n\n"
        "De politie vraagt uw hulp bij een Burgernetactie in de omgeving van {area}: {type}.\n\n"
        "{description}\n\n"
        "Heeft u iets gezien? Bel dan direct gratis {free_number}, "
        "en toets de actiecode {action_code}. "
        "Bel bij direct gevaar 112.\n\n"
        "Met vriendelijke groet,\nBurgernet, namens de politie",
    ),
    ("alert", "email", "en"): (
        "Burgernet: {type} in {area}",
        "Dear participant,\n\n"
        "The police ask for your help with a Burgernet alert in the area of {area}: {type}.\n\n"
        "{description}\n\n"
        "Have you seen anything? Then call {free_number} at once, free of charge, "
        "and key the action code {action_code}. "
        "In immediate danger, call 112.\n\n"
        "Kind regards,\nBurgernet, on behalf of the police",
    ),
    ("update", "sms", "nl"): (
        None,
        "Burgernet update {type}: {description}. Gezien? Bel gratis {free_number}, code {action_code}",
    ),
    ("update", "sms", "en"): (
        None,
        "Burgernet update {type}: {description}. Seen? Call free {free_number}, code {action_code}",
    ),
    ("update", "voice", "nl"): (
        None,
        "Dit is Burgernet met nieuws over de Burgernetactie {type} in de omgeving van {area}. {description}. "
        "Heeft u iets gezien? Bel dan gratis {free_number}, en toets de actiecode {action_code}.",
    ),
    ("update", "voice", "en"): (
        None,
        "This is Burgernet with news about the Burgernet alert {type} in the area of {area}. {description}. "
        "Have you seen anything? Then call {free_number}, free of charge, "
        "and key the action code {action_code}.",
    ),
    ("update", "email", "nl"): (
        "Burgernet update: {type} in {area}",
        "Beste deelnemer,\n\n"
        "Er is nieuws over de Burgernetactie {type} in de omgeving van {area}.\n\n"
        "{description}\n\n"
        "Heeft u iets gezien? Bel dan gratis {free_number}, en toets de actiecode {action_code}.\n\n"
        "Met vriendelijke groet,\nBurgernet, namens de politie",
    ),
    ("update", "email", "en"): (
        "Burgernet update: {type} in {area}",
        "Dear participant,\n\n"
        "There is news about the Burgernet alert {type} in the area of {area}.\n\n"
        "{description}\n\n"
        "Have you seen anything? Then call {free_number}, free of charge, "
        "and key the action code {action_code}.\n\n"
        "Kind regards,\nBurgernet, on behalf of the police",
    ),
    ("result", "sms", "nl"): (
        None,
        "Burgernet: actie {type} ({area}) afgesloten. {outcome}. {result_message}. Dank voor uw hulp!",
    ),
    ("result", "sms", "en"): (
        None,
        "Burgernet: alert {type} ({area}) ended. {outcome}. {result_message}. Thank you!",
    ),
    ("result", "voice", "nl"): (
        None,
        "Dit is Burgernet. De Burgernetactie {type} in de omgeving van {area} is afgesloten. "
        "{outcome}. {result_message}. Hartelijk dank voor uw hulp.",
    ),
    ("result", "voice", "en"): (
        None,
        "This is Burgernet. The Burgernet alert {type} in the area of {area} has ended. "
        "{outcome}. {result_message}. Thank you very much for your help.",
    ),
    ("result", "email", "nl"): (
        "Burgernet: actie afgesloten ({type}, {area})",
        "Beste deelnemer,\n\n"
        "De Burgernetactie {type} in de omgeving van {area} is afgesloten.\n\n"
        "Afloop: {outcome}\n\n{result_message}\n\n"
        "Hartelijk dank voor uw hulp.\n\n"
        "Met vriendelijke groet,\nBurgernet, namens de politie",
    ),
    ("result", "email", "en"): (
        "Burgernet: search ended ({type}, {area})",
        "Dear participant,\n\n"
        "The Burgernet alert {type} in the area of {area} has ended.\n\n"
        "Outcome: {outcome}\n\n{result_message}\n\n"
        "Thank you very much for your help.\n\n"
        "Kind regards,\nBurgernet, on behalf of the police",
    ),
    # The neighbourhood inquiry (action type "inquiry"): e-mail only.
    ("invitation", "email", "nl"): (
        "Burgernet buurtonderzoek: {title}",
        "Beste deelnemer,\n\n"
        "De politie vraagt uw hulp bij een buurtonderzoek in uw omgeving: {title}\n\n"
        "{question}\n\n"
        "Heeft u iets gezien of gehoord, of heeft u camerabeelden of een foto? Geef het door via uw "
        "persoonlijke link (geldig tot {closes}):\n\n{url}\n\n"
        "Deze link is alleen voor u: stuur hem niet door. U kunt één keer een verklaring geven.\n"
        "Is het dringend? Bel dan 112.\n\n"
        "U krijgt dit bericht omdat u zich bij Burgernet heeft aangemeld voor buurtonderzoeken.",
    ),
    ("invitation", "email", "en"): (
        "Burgernet neighbourhood inquiry: {title}",
        "Dear participant,\n\n"
        "The police ask for your help with a neighbourhood inquiry near you: {title}\n\n"
        "{question}\n\n"
        "Did you see or hear anything, or do you have camera footage or a photo? Please tell us "
        "through your personal link (valid until {closes}):\n\n{url}\n\n"
        "This link is for you only: please do not forward it. You can give one statement.\n"
        "In an emergency, call 112.\n\n"
        "You receive this message because you signed up for Burgernet neighbourhood inquiries.",
    ),
    ("follow_up", "email", "nl"): (
        "Burgernet buurtonderzoek, update: {title}",
        "Beste deelnemer,\n\nU ontving eerder een vraag van de politie over: {title}\n\n"
        "{message}\n\nBedankt voor uw hulp.",
    ),
    ("follow_up", "email", "en"): (
        "Burgernet neighbourhood inquiry, update: {title}",
        "Dear participant,\n\nYou were asked earlier by the police about: {title}\n\n"
        "{message}\n\nThank you for your help.",
    ),
}

# Web Push (the participant app): the notification's text is the SMS's, short enough for a
# notification; the app adds the title, the area and the call button from the payload.
for (_kind, _channel, _language), _text in list(DEFAULTS.items()):
    if _channel == "sms" and _kind in ("alert", "update", "result"):
        DEFAULTS[(_kind, "push", _language)] = _text
