"""The participant app's words: English is the key, Dutch is looked up (as in the panel).

The app chooses its language on the device (the browser's, or the switch, kept in IndexedDB),
because the service worker writes notifications while no page is open and the app keeps no
cookie. So the table goes to the device as ``/app/words.js`` (read by the page and by the
service worker) and the server renders the page's first view with the same table. A test
checks that every text the page, ``app.js`` and ``match.js`` mark has its Dutch here.
"""

# ruff: noqa: E501  (a table of sentences: one translation per line reads best)
from __future__ import annotations

import json

LANGUAGES = ("nl", "en")

DUTCH: dict[str, str] = {
    # The page
    "Skip to content": "Naar de inhoud",
    "Burgernet on this phone": "Burgernet op deze telefoon",
    "Alerts from the police for the places you choose, and a way to tell them what you saw.": "Meldingen van de politie voor de plaatsen die u kiest, en een manier om te vertellen wat u zag.",
    "Get an alert when the police look for someone or something near your places. Seen something? Call %(number)s for free.": "Krijg een melding als de politie iemand of iets zoekt bij uw plaatsen. Iets gezien? Bel gratis %(number)s.",
    "You are offline. Your places are safe on this phone; alerts arrive when you are back online.": "U bent offline. Uw plaatsen staan veilig op deze telefoon; meldingen komen binnen zodra u weer online bent.",
    "Alerts": "Meldingen",
    "Turn on alerts": "Meldingen aanzetten",
    "Turn off alerts": "Meldingen uitzetten",
    "Turning alerts on…": "Meldingen worden aangezet…",
    "Alerts are on.": "Meldingen staan aan.",
    "Alerts are off.": "Meldingen staan uit.",
    "Add a place: without one you only get nationwide AMBER Alerts.": "Voeg een plaats toe: zonder plaats krijgt u alleen landelijke AMBER Alerts.",
    "No account and no phone number: the app only gets a push address from your browser.": "Geen account en geen telefoonnummer: de app krijgt alleen een pushadres van uw browser.",
    "This browser cannot receive alerts. On an iPhone, add the app to your home screen first.": "Deze browser kan geen meldingen ontvangen. Zet de app op een iPhone eerst op uw beginscherm.",
    "Notifications are blocked for this app. Allow them in your browser's site settings, then try again.": "Meldingen zijn geblokkeerd voor deze app. Sta ze toe in de site-instellingen van uw browser en probeer het opnieuw.",
    "Alerts could not be turned on. Check your connection and try again.": "Meldingen konden niet worden aangezet. Controleer uw verbinding en probeer het opnieuw.",
    "Your places": "Uw plaatsen",
    "Your places stay on this phone. The server only learns a rough area of about 20 by 40 km, so it knows which alerts to send you.": "Uw plaatsen blijven op deze telefoon. De server weet alleen een ruw gebied van ongeveer 20 bij 40 km, zodat hij weet welke meldingen hij u stuurt.",
    "Add at least one place: home, work, or where you are now.": "Voeg minstens één plaats toe: thuis, werk, of waar u nu bent.",
    "Where I am now": "Waar ik nu ben",
    "Home": "Thuis",
    "Work": "Werk",
    "Not set": "Niet ingesteld",
    "Use my location": "Mijn locatie gebruiken",
    "Remove": "Verwijderen",
    "Postcode": "Postcode",
    "Save": "Opslaan",
    "Pick on the map": "Kies op de kaart",
    "Pick %(place)s on the map": "Kies %(place)s op de kaart",
    "Tap the map where the place is.": "Tik op de kaart waar de plaats is.",
    "Map": "Kaart",
    "Save this place": "Deze plaats opslaan",
    "Cancel": "Annuleren",
    "Picked on the map": "Gekozen op de kaart",
    "Located %(time)s": "Bepaald %(time)s",
    "Place saved on this phone.": "Plaats opgeslagen op deze telefoon.",
    "Place removed from this phone.": "Plaats verwijderd van deze telefoon.",
    "Asking for your location…": "Uw locatie wordt gevraagd…",
    "This phone cannot tell its location.": "Deze telefoon kan zijn locatie niet bepalen.",
    "Your location was not shared. You can enter a postcode instead.": "Uw locatie is niet gedeeld. U kunt ook een postcode invullen.",
    "Enter a Dutch postcode: 1234 or 1234 AB.": "Vul een Nederlandse postcode in: 1234 of 1234 AB.",
    "This postcode is not known.": "Deze postcode is niet bekend.",
    "No connection. Try again later.": "Geen verbinding. Probeer het later opnieuw.",
    "Recent alerts": "Recente meldingen",
    "No alerts for your places yet.": "Nog geen meldingen voor uw plaatsen.",
    # The sighting form
    "I saw something": "Ik zag iets",
    "In danger, or is it happening right now? Call 112.": "In gevaar, of gebeurt het nu? Bel 112.",
    "What did you see? Where, which way did they go, what did they wear?": "Wat zag u? Waar, welke kant gingen ze op, wat droegen ze?",
    "When?": "Wanneer?",
    "Just now": "Zojuist",
    "About 15 minutes ago": "Ongeveer een kwartier geleden",
    "About half an hour ago": "Ongeveer een half uur geleden",
    "About an hour ago": "Ongeveer een uur geleden",
    "Two hours ago or more": "Twee uur geleden of langer",
    "Where? (optional)": "Waar? (niet verplicht)",
    "Add my current location": "Mijn huidige locatie toevoegen",
    "Remove the location": "Locatie weghalen",
    "No location added.": "Geen locatie toegevoegd.",
    "Location added: %(where)s": "Locatie toegevoegd: %(where)s",
    "Photo (optional)": "Foto (niet verplicht)",
    "The photo is sent without its hidden data (such as where and when it was taken). At most 8 MB.": "De foto wordt verstuurd zonder verborgen gegevens (zoals waar en wanneer hij is gemaakt). Hooguit 8 MB.",
    "Send to the control room": "Naar de meldkamer sturen",
    "Back": "Terug",
    "Describe what you saw.": "Beschrijf wat u zag.",
    "Not sent.": "Niet verstuurd.",
    "Thank you. The control room has your sighting (number %(id)s).": "Dank u. De meldkamer heeft uw waarneming (nummer %(id)s).",
    "Is it urgent? Call %(number)s now.": "Is het dringend? Bel nu %(number)s.",
    "The photo is too large (at most 8 MB).": "De foto is te groot (hooguit 8 MB).",
    "You sent several sightings in a short time. Please wait a little, or call %(number)s.": "U stuurde een aantal waarnemingen kort na elkaar. Wacht even, of bel %(number)s.",
    "This action has ended. If you saw something, call %(number)s.": "Deze actie is afgelopen. Zag u iets, bel dan %(number)s.",
    "No connection. Call %(number)s to tell the control room.": "Geen verbinding. Bel %(number)s om het de meldkamer te vertellen.",
    "Action code %(code)s": "Actiecode %(code)s",
    "Photo with the alert": "Foto bij de melding",
    "The control room asks: %(question)s": "De meldkamer vraagt: %(question)s",
    # The call page
    "Call the control room": "De meldkamer bellen",
    "Then key in action code %(code)s.": "Toets daarna actiecode %(code)s in.",
    # Notifications (match.js, in the service worker)
    "Missing person": "Vermiste persoon",
    "Missing child": "Vermist kind",
    "AMBER Alert": "AMBER Alert",
    "Suspect": "Verdachte",
    "Vehicle": "Voertuig",
    "Information": "Informatie",
    "Burgernet": "Burgernet",
    "Update": "Update",
    "Result": "Afloop",
    "A question from the control room": "Een vraag van de meldkamer",
    "Seen something? Call %(number)s and key in action code %(code)s.": "Iets gezien? Bel %(number)s en toets actiecode %(code)s.",
    "Seen something? Call %(number)s.": "Iets gezien? Bel %(number)s.",
    "Call %(number)s": "Bel %(number)s",
    "Answer": "Antwoorden",
}


def translate(text: str, lang: str, **values: object) -> str:
    translated = DUTCH.get(text, text) if lang == "nl" else text
    return translated % values if values else translated


def words_script() -> str:
    """``/app/words.js``: the table for the page and the service worker (``self`` is both)."""
    table = json.dumps({"nl": DUTCH}, ensure_ascii=False, sort_keys=True)
    return f"/* The participant app's words (callback_api/participant_app/words.py). */\nself.BURGERNET_WORDS = {table};\n"
