"""Every spoken prompt of the free-number IVR and the alert call, in Dutch and English.

``build_catalogue`` writes them where Asterisk looks for language-specific sounds:
``<settings.sounds_dir>/<lang>/burgernet/<name>.wav`` (digits under ``digits/``), so the
dialplan plays ``burgernet/welcome`` and Asterisk picks the file by ``CHANNEL(language)``.
Prompts that depend on an action (menu items, the alert message) are made on demand
through the TTS cache and returned as absolute sound names (no extension).

Texts follow the tone of the Dutch control rooms: formal "u", short sentences, numbers
written out so the synthesiser says "één één twee" and not "honderdtwaalf".
"""

from __future__ import annotations

import filecmp
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from burgernet.settings import Settings, get_settings
from recordings.convert import atomic_target
from recordings.paths import (
    LANGUAGES,
    action_sound_dir,
    asterisk_sound_name,
    check_language,
    prompt_path,
)
from recordings.tts import SpeechEngine, TextToSpeech

PROMPTS: Final[Mapping[str, Mapping[str, str]]] = {
    "welcome": {
        "nl": "Welkom bij Burgernet, het gratis nummer van de politie. "
        "U belt over een Burgernetactie. Een ogenblik geduld alstublieft.",
        "en": "Welcome to Burgernet, the free police number. "
        "You are calling about a Burgernet alert. Please hold for a moment.",
    },
    "code-welcome": {
        # The first thing every caller of the free number hears (ivr/freephone.py): short, as it
        # is time lost for callers without a code; a key press cuts it off.
        "nl": "Burgernet. Toets uw actiecode.",
        "en": "Burgernet. Key your action code.",
    },
    "code-unknown": {
        # A keyed code no active action holds; the call then goes on as without a code.
        "nl": "Deze actiecode kennen wij niet, of de actie is afgelopen.",
        "en": "We do not know that action code, or the alert has ended.",
    },
    "enter-postcode": {
        "nl": "Wij kunnen uw locatie niet vaststellen. Toets de vier cijfers van de postcode "
        "waar u nu bent, gevolgd door een hekje.",
        "en": "We cannot determine your location. Please enter the four digits of the postcode "
        "where you are now, followed by the hash key.",
    },
    "invalid-postcode": {
        "nl": "Deze postcode is niet bekend. Probeer het opnieuw.",
        "en": "That postcode was not recognised. Please try again.",
    },
    "no-action": {
        "nl": "Er loopt op dit moment geen Burgernetactie in uw omgeving. "
        "Heeft u spoed, hang dan op en bel één één twee. "
        "Geen spoed, maar wel politie nodig? Bel nul negen nul nul, acht acht vier vier. "
        "Bedankt voor uw oplettendheid.",
        "en": "There is no Burgernet alert in your area at the moment. "
        "In an emergency, hang up and call one one two. "
        "For the police when it is not an emergency, call zero nine zero zero, eight eight four four. "
        "Thank you for staying alert.",
    },
    "menu-intro": {
        "nl": "Er lopen meerdere Burgernetacties in uw omgeving. Kies de actie waarover u belt.",
        "en": "There are several Burgernet alerts in your area. "
        "Please choose the alert you are calling about.",
    },
    "tip-instructions": {
        # Played after "all-busy" or the technical fallback: short, the caller is waiting.
        "nl": "Spreek na de toon in wat u heeft gezien, waar en hoe laat, en uw naam. "
        "Wij bellen u terug. Toets een hekje als u klaar bent.",
        "en": "After the tone, tell us what you saw, where and when, and your name. "
        "We will call you back. Press hash when you have finished.",
    },
    "tip-thanks": {
        "nl": "Bedankt voor uw informatie. De meldkamer neemt zo nodig contact met u op.",
        "en": "Thank you for your information. The control room will contact you if needed.",
    },
    "connecting": {
        "nl": "U wordt nu doorverbonden met de meldkamer van de politie.",
        "en": "You are now being connected to the police control room.",
    },
    "all-busy": {
        # Played when every centralist was rung without answer; a tip recording follows.
        "nl": "Alle medewerkers van de meldkamer zijn op dit moment in gesprek.",
        "en": "All control room staff are busy at the moment.",
    },
    "alert-intro": {
        "nl": "Dit is een Burgernetoproep van de politie.",
        "en": "This is a Burgernet call from the police.",
    },
    "alert-menu": {
        "nl": "Heeft u informatie? Toets één om direct met de meldkamer te spreken. "
        "Toets twee om het bericht opnieuw te beluisteren. "
        "Toets negen als u geen Burgernetoproepen meer wilt ontvangen.",
        "en": "Do you have information? Press one to talk to the control room now. "
        "Press two to hear this message again. "
        "Press nine to stop receiving Burgernet alerts.",
    },
    "optout-confirmed": {
        "nl": "U bent afgemeld en ontvangt geen Burgernetoproepen meer. "
        "Wilt u later weer meedoen, meld u dan opnieuw aan via burgernet punt n l.",
        "en": "You have been unsubscribed and will no longer receive Burgernet alerts. "
        "To take part again later, sign up at burgernet dot n l.",
    },
    "goodbye": {
        "nl": "Bedankt voor uw medewerking. Tot ziens.",
        "en": "Thank you for your help. Goodbye.",
    },
    "desk-whisper": {
        # Heard by the centralist only, after they answer (dialplans/desk.conf), before the digits.
        "nl": "Burgernetoproep over actie",
        "en": "Burgernet call about alert",
    },
    "technical-fallback": {
        "nl": "Excuses, er is een technische storing. U wordt doorverbonden met de meldkamer.",
        "en": "Sorry, there is a technical problem. You are being connected to the control room.",
    },
}

DIGIT_WORDS: Final[Mapping[str, tuple[str, ...]]] = {
    "nl": ("nul", "één", "twee", "drie", "vier", "vijf", "zes", "zeven", "acht", "negen"),
    "en": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
}

MENU_ITEM_TEMPLATES: Final[Mapping[str, str]] = {
    "nl": "Voor {description}, toets {digit}.",
    "en": "For {description}, press {digit}.",
}


def prompt_names() -> list[str]:
    """Every catalogue name, digits included (``digits/0`` .. ``digits/9``)."""
    return [*PROMPTS, *(f"digits/{digit}" for digit in range(10))]


def prompt_text(lang: str, name: str) -> str:
    language = check_language(lang)
    if name.startswith("digits/"):
        digit = name.removeprefix("digits/")
        if digit.isdigit() and len(digit) == 1:
            return DIGIT_WORDS[language][int(digit)].capitalize() + "."
    elif name in PROMPTS:
        return PROMPTS[name][language]
    raise KeyError(f"no prompt named {name!r}")


@dataclass(frozen=True)
class BuiltPrompt:
    lang: str
    name: str
    path: Path
    # False when the file on disk was already exactly this sound.
    written: bool


def build_prompt(
    lang: str,
    name: str,
    *,
    settings: Settings | None = None,
    engine: SpeechEngine | None = None,
    force: bool = False,
) -> BuiltPrompt:
    """Make one catalogue prompt; ``force`` re-synthesises instead of using the TTS cache."""
    tts = _tts(settings, engine)
    # A recording the operator put in place (``recordings replace-prompt``) beats the TTS.
    custom = custom_prompt_path(tts.settings, lang, name)
    spoken = custom if custom.is_file() else tts.speak(prompt_text(lang, name), lang, force=force)
    target = prompt_path(tts.settings, lang, name)
    if target.is_file() and not force and filecmp.cmp(spoken, target, shallow=False):
        return BuiltPrompt(lang, name, target, written=False)
    _install(spoken, target)
    return BuiltPrompt(lang, name, target, written=True)


def custom_prompt_path(settings: Settings, lang: str, name: str) -> Path:
    """Where a replacement recording for a catalogue prompt is kept (already converted)."""
    if name not in prompt_names():
        raise KeyError(f"no prompt named {name!r}")
    return settings.data_dir / "prompts-custom" / check_language(lang) / f"{name}.wav"


def build_catalogue(
    *,
    settings: Settings | None = None,
    langs: Iterable[str] = LANGUAGES,
    engine: SpeechEngine | None = None,
    force: bool = False,
) -> list[BuiltPrompt]:
    """Every prompt in every language of ``langs``, into ``<sounds_dir>/<lang>/burgernet/``."""
    settings = settings or get_settings()
    return [
        build_prompt(lang, name, settings=settings, engine=engine, force=force)
        for lang in langs
        for name in prompt_names()
    ]


def menu_item_prompt(
    lang: str,
    digit: int,
    short_description: str,
    *,
    settings: Settings | None = None,
    engine: SpeechEngine | None = None,
) -> str:
    """ "Voor <short description>, toets <digit>." as an absolute Asterisk sound name."""
    language = check_language(lang)
    if not 0 <= digit <= 9:
        raise ValueError(f"a menu key is one digit, not {digit}")
    text = MENU_ITEM_TEMPLATES[language].format(
        description=short_description.strip().rstrip("."), digit=DIGIT_WORDS[language][digit]
    )
    return asterisk_sound_name(_tts(settings, engine).speak(text, language))


def alert_message_sound(
    action_id: int,
    lang: str,
    text: str,
    *,
    settings: Settings | None = None,
    engine: SpeechEngine | None = None,
) -> str:
    """The alert text spoken, kept with the action, as an absolute Asterisk sound name.

    The sound is copied out of the TTS cache into the action's folder so the exact audio
    that was played stays with the action even when the cache is cleared.
    """
    tts = _tts(settings, engine)
    spoken = tts.speak(text, lang)
    key = spoken.stem
    target = action_sound_dir(tts.settings, action_id) / f"alert-{check_language(lang)}-{key[:16]}.wav"
    if not target.is_file():
        _install(spoken, target)
    return asterisk_sound_name(target)


def preview_sound(
    lang: str, text: str, *, settings: Settings | None = None, engine: SpeechEngine | None = None
) -> Path:
    """``text`` spoken as an alert call would speak it, straight from the TTS cache (a ``.wav``):
    the panel's preview before an action exists, so nothing is kept with an action."""
    return _tts(settings, engine).speak(text, check_language(lang))


def _tts(settings: Settings | None, engine: SpeechEngine | None) -> TextToSpeech:
    tts = TextToSpeech(settings or get_settings())
    if engine is not None:
        tts.engine = engine
    return tts


def _install(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` atomically: Asterisk may be playing the old file right now."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_target(target) as temporary:
        shutil.copyfile(source, temporary)
