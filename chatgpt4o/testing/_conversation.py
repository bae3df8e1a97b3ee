"""What the model is given: the plugin's prompt, the visitor's history and the message.

docs/protocol.md describes the request; the server side, reproduced here, is:

1. ``wpaicg_chat_history`` is sanitized (``sanitize_text_field`` of the magic-quoted value
   up to 1.8.90, ``sanitize_textarea_field`` from 1.8.91), **every backslash is deleted**,
   and the rest goes to ``json_decode``. Anything but an array (a JSON list or object) is
   silently dropped. A ``"`` inside a text (JSON ``\\"``) therefore breaks the JSON and
   drops the whole history.
2. ``"Human: " + message`` is appended.
3. The model's messages: the plugin's prompt (the "greeting") as the first ``user``
   message, then each entry, trimmed: starting with ``Human: `` -> ``user`` (the rest,
   trimmed), anything else with every ``AI: `` removed -> ``assistant`` unless empty.
   An entry may be ``{"text": ...}`` or a bare string; ``id`` is never read.

The server never shortens the history: ``data-memory-limit`` is applied by the browser
before it sends. Up to 1.9.3 the browser's history also holds the turn being sent; the
emulator takes whatever it receives, so that turn then reaches the model twice.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ._i18n import translate
from ._php import (
    addslashes,
    php_empty,
    php_json_decode,
    php_string,
    php_trim,
    sanitize_text_field,
    sanitize_textarea_field,
)

__all__ = [
    "ASSISTANT_INSTRUCTIONS",
    "BadEntry",
    "Message",
    "build_messages",
    "decode_history",
    "default_reply",
    "greeting",
]

#: One message given to the model: ``{"role": ..., "content": ...}``.
Message = dict[str, str]

#: The emulated Assistant's own instructions (the first message of every Assistant call).
ASSISTANT_INSTRUCTIONS = "You are a helpful assistant."

_DEFAULT_REPLY = "Hello! This is the local chatgpt4o.one emulator. You said: "
_PROMPT = (
    "Converse as if you were an AI assistant. Answer the question as truthfully as "
    "possible using the provided text. Tone: {tone}"
)
_PROMPT_WITH_CONTEXT = (
    "Converse as if you were an AI assistant. Answer the question as truthfully as "
    "possible using the provided context. Tone: {tone}, Current context: {context}"
)


def default_reply(message: str, messages: Sequence[Mapping[str, str]] | None = None) -> str:
    """The emulator's default answer: deterministic, echoing the message it was given.

    ``message`` is the message as the plugin processed it. ``messages`` is what the model
    was given (see ``SiteEmulator.model_calls``): its first message is the site's prompt
    and its last the current turn, so every message in between is an earlier turn. When
    there are any, the reply says how many, e.g. ``"... You said: Hi (the model saw 2
    earlier messages)"``. Without earlier turns (or without ``messages``) the reply is
    ``"Hello! This is the local chatgpt4o.one emulator. You said: <message>"``.
    """
    text = _DEFAULT_REPLY + message
    earlier = len(messages) - 2 if messages else 0
    if earlier > 0:
        text += f" (the model saw {earlier} earlier message{'' if earlier == 1 else 's'})"
    return text


def greeting(language: str, context: str | None) -> str:
    """The plugin's prompt for the model, with the page's context when it has one."""
    tone = translate("Friendly", language)
    if context is None:
        return translate(_PROMPT, language).format(tone=tone)
    return translate(_PROMPT_WITH_CONTEXT, language).format(tone=tone + ".\n", context=context)


def decode_history(raw: str, *, slashed: bool) -> list[object]:
    """The entries the plugin takes from the ``wpaicg_chat_history`` field ``raw``.

    ``slashed``: the plugin (up to 1.8.90) sanitizes the magic-quoted value with
    ``sanitize_text_field``; later releases unslash it and use ``sanitize_textarea_field``.
    """
    text = sanitize_text_field(addslashes(raw)) if slashed else sanitize_textarea_field(raw)
    value = php_json_decode(text.replace("\\", "")) if text else None
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    return []


@dataclass(frozen=True)
class BadEntry:
    """A history entry ``trim()`` cannot take as a string.

    Attributes:
        index: its position in the history. type_name: PHP's name of its type
            (``"array"``, or ``"null"``, which PHP 8.1+ accepts with a deprecation).
    """

    index: int
    type_name: str


def build_messages(
    prompt: str, entries: Sequence[object], message: str
) -> tuple[list[Message], list[BadEntry]]:
    """The model's messages for ``message`` after the history ``entries``.

    Returns the messages and the entries that were not strings. An ``array`` entry is a
    fatal ``TypeError`` on PHP 8 (the caller decides); here it is skipped, as PHP 7 does.
    """
    messages: list[Message] = [{"role": "user", "content": html.unescape(prompt)}]
    bad: list[BadEntry] = []
    for index, entry in enumerate([*entries, "Human: " + message]):
        if isinstance(entry, dict) and entry.get("text") is not None:
            entry = entry["text"]
        if isinstance(entry, (dict, list)):
            bad.append(BadEntry(index, "array"))
            continue
        if entry is None:
            bad.append(BadEntry(index, "null"))
        text = php_trim(php_string(entry))
        if text.startswith("Human: "):
            messages.append({"role": "user", "content": php_trim(text[len("Human: ") :])})
            continue
        text = php_trim(text.replace("AI: ", ""))
        if not php_empty(text):
            messages.append({"role": "assistant", "content": text})
    return messages, bad
