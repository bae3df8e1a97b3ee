"""Chat messages: their type, their validation, and `format_prompt` (g4f's semantics).

The plugin takes one text field, so a conversation is flattened into a prompt the way
g4f does it: a lone message is sent as its text; several become `Role: text` lines
followed by an `Assistant:` cue.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "KNOWN_ROLES",
    "SYSTEM_ROLES",
    "Message",
    "Messages",
    "Turn",
    "format_prompt",
    "format_turns",
    "normalize_messages",
]

#: One chat message, as OpenAI and g4f shape it: {"role": "user", "content": "Hi"}.
Message = Mapping[str, Any]
#: A conversation, oldest message first.
Messages = Sequence[Message]
#: One checked message: (role, text).
Turn = tuple[str, str]

KNOWN_ROLES = frozenset({"system", "developer", "user", "assistant"})
# OpenAI's newer name for the system role; `include_system=False` leaves both out.
SYSTEM_ROLES = frozenset({"system", "developer"})


def _content_text(content: object, where: str) -> str:
    """The text of a message's content: a string, or a list of text parts."""
    if type(content) is str:  # the usual case, without the ABC checks below
        return content
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence) and not isinstance(content, (bytes, bytearray)):
        texts: list[str] = []
        for index, part in enumerate(content):
            if not isinstance(part, Mapping):
                raise TypeError(
                    f"{where}: content part {index} must be a dict like "
                    f"{{'type': 'text', 'text': '...'}}, not {type(part).__name__}"
                )
            kind = part.get("type", "text")
            text = part.get("text")
            if kind != "text" or not isinstance(text, str):
                raise TypeError(
                    f"{where}: content part {index} is {kind!r}; this provider only "
                    "sends text"
                )
            texts.append(text)
        return "".join(texts)  # as g4f joins them
    raise TypeError(
        f"{where}: content must be a str or a list of text parts, "
        f"not {type(content).__name__}"
    )


def normalize_messages(messages: object) -> list[Turn]:
    """Check `messages` and return them as (role, text) pairs.

    Raises TypeError or ValueError naming the first bad item, so that nothing is sent
    for a conversation the site could not make sense of.
    """
    if type(messages) is not list and (
        isinstance(messages, (str, bytes, bytearray, Mapping))
        or not isinstance(messages, Sequence)
    ):
        raise TypeError(
            "messages must be a list of {'role': ..., 'content': ...} dicts, "
            f"not {type(messages).__name__}"
        )
    if not messages:
        raise ValueError("messages is empty: give at least one message")
    pairs: list[Turn] = []
    for index, message in enumerate(messages):
        if type(message) is not dict and not isinstance(message, Mapping):
            raise TypeError(f"messages[{index}] must be a dict, not {type(message).__name__}")
        if "role" not in message or "content" not in message:
            missing = [key for key in ("role", "content") if key not in message]
            raise ValueError(f"messages[{index}] has no {' and no '.join(missing)}")
        role = message["role"]
        if not isinstance(role, str):
            raise TypeError(f"messages[{index}]: role must be a str, not {type(role).__name__}")
        if role not in KNOWN_ROLES:
            raise ValueError(
                f"messages[{index}]: unknown role {role!r}; "
                f"use one of {', '.join(sorted(KNOWN_ROLES))}"
            )
        pairs.append((role, _content_text(message["content"], f"messages[{index}]")))
    return pairs


def format_prompt(
    messages: Messages,
    add_special_tokens: bool = False,
    do_continue: bool = False,
    include_system: bool = True,
) -> str:
    """Flatten a conversation into one prompt, as g4f's `format_prompt` does.

    One message (and no special tokens asked for) is sent as its bare text. Otherwise
    each message becomes a `Role: text` line and, unless `do_continue`, the prompt ends
    with `\\nAssistant:` so the model answers as the assistant.
    """
    return format_turns(
        normalize_messages(messages),
        add_special_tokens=add_special_tokens,
        do_continue=do_continue,
        include_system=include_system,
    )


def format_turns(
    turns: Sequence[Turn],
    *,
    add_special_tokens: bool = False,
    do_continue: bool = False,
    include_system: bool = True,
) -> str:
    """`format_prompt` for turns that are checked already."""
    if not add_special_tokens and len(turns) == 1:
        return turns[0][1]
    lines = "\n".join(
        f"{role.capitalize()}: {text}"
        for role, text in turns
        if include_system or role not in SYSTEM_ROLES
    )
    return lines if do_continue else f"{lines}\nAssistant:"
