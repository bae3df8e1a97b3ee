"""The OpenAI shapes the server reads and writes: a chat completion request, a
`chat.completion`, its streamed `chat.completion.chunk`s, the model list.

No I/O here: bytes in, checked values out; values in, bytes out.

Token counts are estimates: the sites report none, so `usage` counts characters / 4,
rounded up, of the messages' text (prompt) and of the reply (completion).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ._errors import APIError, bad_request

__all__ = [
    "DONE",
    "ChatRequest",
    "ChunkFormat",
    "completion_body",
    "completion_id",
    "error_event",
    "estimate_tokens",
    "model_list_body",
    "model_names",
    "parse_chat_request",
    "usage",
]

#: The roles a message may have (`developer` is OpenAI's newer name for `system`).
ROLES = frozenset({"system", "developer", "user", "assistant"})
#: The fields of a request the server reads; any other is ignored (and logged).
_READ = frozenset({"model", "messages", "stream", "stream_options"})

#: The last event of a stream that ended well.
DONE = b"data: [DONE]\n\n"


@dataclass(frozen=True)
class ChatRequest:
    """A checked chat completion request."""

    #: The model as asked for ("" for the provider's default).
    model: str
    #: The conversation, as the library takes it: `{"role", "content": str}` each.
    messages: list[dict[str, str]]
    stream: bool
    #: `stream_options.include_usage`: a usage chunk before `[DONE]`.
    include_usage: bool
    #: Characters of the messages' text, for the usage estimate.
    prompt_chars: int
    #: The request's fields that the site cannot honour, ignored.
    ignored: tuple[str, ...]


def _text(content: object, index: int) -> str:
    """A message's content as text: a string, or a list of text parts (joined)."""
    if isinstance(content, str):
        return content
    param = f"messages[{index}].content"
    if isinstance(content, list):
        texts: list[str] = []
        for number, part in enumerate(content):
            if not isinstance(part, dict):
                raise bad_request(
                    f"messages[{index}].content[{number}] must be an object like "
                    '{"type": "text", "text": "..."}',
                    param,
                )
            kind = part.get("type")
            text = part.get("text")
            if kind != "text" or not isinstance(text, str):
                shown = kind if isinstance(kind, str) else type(kind).__name__
                raise bad_request(
                    f"messages[{index}].content[{number}] is of type {shown!r}; "
                    "only text parts can be sent to the site",
                    param,
                )
            texts.append(text)
        return "".join(texts)
    raise bad_request(
        f"messages[{index}].content must be a string or a list of text parts, "
        f"not {_json_type(content)}",
        param,
    )


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _messages(value: object) -> tuple[list[dict[str, str]], int]:
    if value is None:
        raise bad_request("Missing required parameter: 'messages'", "messages")
    if not isinstance(value, list):
        raise bad_request(
            f"'messages' must be an array of messages, not {_json_type(value)}", "messages"
        )
    if not value:
        raise bad_request("'messages' is empty: give at least one message", "messages")
    messages: list[dict[str, str]] = []
    chars = 0
    for index, message in enumerate(value):
        if not isinstance(message, dict):
            raise bad_request(
                f"messages[{index}] must be an object, not {_json_type(message)}",
                f"messages[{index}]",
            )
        role = message.get("role")
        if role not in ROLES:
            if role in ("tool", "function"):
                reason = f"role {role!r} is not supported: this server runs no tools"
            elif role is None:
                reason = "has no role"
            else:
                shown = role if isinstance(role, str) else _json_type(role)
                reason = f"has an unknown role {shown!r}"
            raise bad_request(
                f"messages[{index}] {reason}; the roles are assistant, developer, "
                "system and user",
                f"messages[{index}].role",
            )
        if message.get("tool_calls") or message.get("function_call"):
            raise bad_request(
                f"messages[{index}] has tool calls: this server runs no tools",
                f"messages[{index}].tool_calls",
            )
        if "content" not in message:
            raise bad_request(
                f"messages[{index}] has no content", f"messages[{index}].content"
            )
        text = _text(message["content"], index)
        chars += len(text)
        messages.append({"role": role, "content": text})
    return messages, chars


def parse_chat_request(body: bytes) -> ChatRequest:
    """Check a request body of `POST /v1/chat/completions`; APIError (400) if bad."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError
        raise bad_request(
            "The request body is not valid JSON", code="invalid_json"
        ) from None
    if not isinstance(data, dict):
        raise bad_request(
            f"The request body must be a JSON object, not {_json_type(data)}",
            code="invalid_json",
        )
    model = data.get("model")
    if model is None:
        model = ""
    elif not isinstance(model, str):
        raise bad_request(f"'model' must be a string, not {_json_type(model)}", "model")
    messages, chars = _messages(data.get("messages"))
    stream = data.get("stream")
    if stream is None:
        stream = False
    elif not isinstance(stream, bool):
        raise bad_request(f"'stream' must be a boolean, not {_json_type(stream)}", "stream")
    options = data.get("stream_options")
    include_usage = False
    if options is not None:
        if not isinstance(options, dict):
            raise bad_request(
                f"'stream_options' must be an object, not {_json_type(options)}",
                "stream_options",
            )
        include_usage = options.get("include_usage") is True
    ignored = tuple(sorted(name for name in data if name not in _READ))
    return ChatRequest(model, messages, stream, include_usage, chars, ignored)


# -- answers -----------------------------------------------------------------------------


def estimate_tokens(chars: int) -> int:
    """The token estimate of a text of `chars` characters: chars / 4, rounded up."""
    return -(-chars // 4)


def usage(prompt_chars: int, completion_chars: int) -> dict[str, int]:
    """OpenAI's `usage` object, estimated from character counts."""
    prompt = estimate_tokens(prompt_chars)
    completion = estimate_tokens(completion_chars)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def completion_id() -> str:
    """A new `chatcmpl-...` id."""
    return "chatcmpl-" + os.urandom(12).hex()


#: One encoder for every answer (`json.dumps` with options builds a new one per call).
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _json(value: object) -> bytes:
    # Lone surrogates (never in a site's UTF-8 text, but a str may hold them) become "?".
    return _ENCODER.encode(value).encode("utf-8", "replace")


# A chat.completion's fixed parts, around the values of each answer (the same bytes as
# the JSON of the whole object, field for field).
_COMPLETION_ID = b'{"id":'
_COMPLETION_CREATED = b',"object":"chat.completion","created":'
_COMPLETION_MODEL = b',"model":'
_COMPLETION_CONTENT = (
    b',"choices":[{"index":0,"message":{"role":"assistant","content":'
)
_COMPLETION_USAGE = (
    b',"refusal":null},"logprobs":null,"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d},'
    b'"system_fingerprint":null}'
)


def completion_body(
    completion: str, created: int, model: str, reply: str, prompt_chars: int
) -> bytes:
    """A whole `chat.completion`."""
    prompt = estimate_tokens(prompt_chars)
    completion_tokens = estimate_tokens(len(reply))
    return b"".join(
        (
            _COMPLETION_ID,
            _json(completion),
            _COMPLETION_CREATED,
            b"%d" % created,
            _COMPLETION_MODEL,
            _json(model),
            _COMPLETION_CONTENT,
            _json(reply),
            _COMPLETION_USAGE % (prompt, completion_tokens, prompt + completion_tokens),
        )
    )


class ChunkFormat:
    """The server-sent events of one streamed completion: `data: <chunk>\\n\\n` each."""

    __slots__ = ("_head", "_usage_head")

    def __init__(self, completion: str, created: int, model: str) -> None:
        fields = (
            f'{{"id":{json.dumps(completion)},"object":"chat.completion.chunk",'
            f'"created":{created},"model":{json.dumps(model)},"system_fingerprint":null,'
        )
        self._head = b"data: " + fields.encode() + b'"choices":[{"index":0,"delta":'
        self._usage_head = b"data: " + fields.encode() + b'"choices":[],"usage":'

    def role(self) -> bytes:
        """The first chunk: the assistant's role, no text yet."""
        return self._head + b'{"role":"assistant","content":""},"logprobs":null,' \
            b'"finish_reason":null}]}\n\n'

    def content(self, piece: str) -> bytes:
        """A chunk with a piece of the reply."""
        return self._head + b'{"content":' + _json(piece) + \
            b'},"logprobs":null,"finish_reason":null}]}\n\n'

    def stop(self) -> bytes:
        """The last chunk: `finish_reason: "stop"`."""
        return self._head + b'{},"logprobs":null,"finish_reason":"stop"}]}\n\n'

    def usage(self, prompt_chars: int, completion_chars: int) -> bytes:
        """The usage chunk (`stream_options.include_usage`): no choices, the estimate."""
        return self._usage_head + _json(usage(prompt_chars, completion_chars)) + b"}\n\n"


def error_event(error: APIError) -> bytes:
    """An error after the first chunk: a last event `data: {"error": {...}}`."""
    return b"data: " + _json(error.payload()) + b"\n\n"


def model_list_body(models: Iterable[str], owner: str) -> bytes:
    """`GET /v1/models`: OpenAI's list of model objects."""
    return _json(
        {
            "object": "list",
            "data": [
                {"id": model, "object": "model", "created": 0, "owned_by": owner}
                for model in models
            ],
        }
    )


def model_names(models: Sequence[str], aliases: Mapping[str, str]) -> list[str]:
    """A provider's models, then its aliases, each once."""
    return list(dict.fromkeys([*models, *aliases]))
