"""The site's language: every text the emulator can send that a real site translates.

A real site translates WordPress core's strings (the stale-nonce 403, the critical-error
page) with the core language pack, the plugin's ``esc_html__()`` strings with the plugin's
pack, and builds the model's first prompt from the plugin's per-language chat files. The
emulator keeps all of them in :data:`TEXTS`: English is the key, each other language maps
it to its translation. The German texts of WordPress core are the core pack's (informal
"du"); the German plugin texts are written for the emulator in the same style, since the
plugin ships no German pack of its own.

Upstream error texts (from the model's API) and the plugin's untranslated literals
(``"Failed to create thread."``) are never translated, as on a real site.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "LANGUAGES",
    "TEXTS",
    "html_lang",
    "translate",
]

#: Languages the emulator speaks.
LANGUAGES = ("en", "de")

_HTML_LANG = {"en": "en-US", "de": "de-DE"}

#: English text -> {language: translation}. English itself needs no entry.
TEXTS: Mapping[str, Mapping[str, str]] = {
    # WordPress core
    "The link you followed has expired.": {
        "de": "Der Link, dem du gefolgt bist, ist abgelaufen.",
    },
    "Please try again.": {"de": "Bitte versuche es erneut."},
    "Are you sure you want to do this?": {"de": "Bist du sicher, dass du das tun möchtest?"},
    "There has been a critical error on this website.": {
        "de": "Es gab einen kritischen Fehler auf dieser Website.",
    },
    "Learn more about troubleshooting WordPress.": {
        "de": "Erfahre mehr über die Fehlerbehebung in WordPress.",
    },
    # the plugin's answers
    "Something went wrong": {"de": "Etwas ist schiefgelaufen"},
    "Nonce verification failed": {"de": "Nonce-Überprüfung fehlgeschlagen"},
    "Security check": {"de": "Sicherheitsüberprüfung"},
    (
        "Invalid nonce. This can happen when the page was served from a cache. "
        "Please clear the cache or reload the page and try again."
    ): {
        "de": (
            "Ungültige Nonce. Das kann passieren, wenn die Seite aus einem Cache geladen "
            "wurde. Bitte leere den Cache oder lade die Seite neu und versuche es erneut."
        ),
    },
    "It appears that nothing was inputted.": {"de": "Anscheinend wurde nichts eingegeben."},
    "You are not allowed to access this feature.": {
        "de": "Du darfst diese Funktion nicht verwenden.",
    },
    "Your message contains prohibited words. Please modify your message and try again.": {
        "de": (
            "Deine Nachricht enthält verbotene Wörter. Bitte ändere deine Nachricht und "
            "versuche es erneut."
        ),
    },
    "You have reached your token limit.": {"de": "Du hast dein Token-Limit erreicht."},
    "Unable to initialize the AI instance. Please make sure the API key is valid.": {
        "de": (
            "Die KI-Instanz konnte nicht initialisiert werden. Bitte stelle sicher, dass der "
            "API-Schlüssel gültig ist."
        ),
    },
    (
        "Your message has been flagged as potentially harmful or inappropriate. Please "
        "ensure that your messages are respectful and do not contain language or content "
        "that could be offensive or harmful to others. Thank you for your cooperation."
    ): {
        "de": (
            "Deine Nachricht wurde als möglicherweise schädlich oder unangemessen markiert. "
            "Bitte achte darauf, dass deine Nachrichten respektvoll sind und keine Sprache "
            "oder Inhalte enthalten, die andere beleidigen oder verletzen könnten. Danke "
            "für dein Verständnis."
        ),
    },
    # the page
    "Sources": {"de": "Quellen"},
    "No result found": {"de": "Kein Ergebnis gefunden"},
    "Type a message": {"de": "Nachricht eingeben"},
    "Hello 👋, how can I help you today?": {"de": "Hallo 👋, wie kann ich dir heute helfen?"},
    # the model's first prompt (the plugin's per-language chat files)
    "Friendly": {"de": "Freundlich"},
    (
        "Converse as if you were an AI assistant. Answer the question as truthfully as "
        "possible using the provided text. Tone: {tone}"
    ): {
        "de": (
            "Unterhalte dich so, als wärst du ein AI-Assistent. Beantworte die Frage so "
            "ehrlich wie möglich mit dem angegebenen Text. Ton: {tone}"
        ),
    },
    (
        "Converse as if you were an AI assistant. Answer the question as truthfully as "
        "possible using the provided context. Tone: {tone}, Current context: {context}"
    ): {
        "de": (
            "Unterhalte dich so, als wärst du ein AI-Assistent. Beantworte die Frage so "
            "ehrlich wie möglich mit dem angegebenen Text. Ton: {tone} Aktueller Kontext: "
            "{context}"
        ),
    },
}


def translate(text: str, language: str) -> str:
    """``text`` in ``language`` (English when there is no translation)."""
    if language == "en":
        return text
    return TEXTS.get(text, {}).get(language, text)


def html_lang(language: str) -> str:
    """The ``<html lang>`` of a site in ``language``."""
    return _HTML_LANG.get(language, language)
