"""The bytes of every event stream the plugin can send (docs/protocol.md §4.3).

Each function returns complete SSE events (ending in a blank line). The plugin builds its
own frames by string concatenation, so these do too: a word holding ``"`` or ``\\`` makes
an invalid JSON frame, exactly as on a real site.
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Mapping

from ._php import php_json

__all__ = [
    "ChunkWriter",
    "assistant_delta",
    "assistant_event",
    "assistant_upstream_events",
    "error_frame",
    "flag_event",
    "limited_frames",
    "new_id",
    "openai_error_body",
    "word_frames",
]

_STOP_FRAME = b'data: {"choices":[{"finish_reason":"stop"}]}\n\n'
_ID_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str) -> str:
    """An OpenAI-style object ID, e.g. ``thread_`` plus 24 letters and digits."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))


class ChunkWriter:
    """OpenAI chat-completion chunks of one upstream stream, passed through as they are."""

    def __init__(self, stream_id: str, created: int, model: str, fingerprint: str) -> None:
        self._head = (
            f'data: {{"id":"{stream_id}","object":"chat.completion.chunk","created":{created},'
            f'"model":"{model}","system_fingerprint":"{fingerprint}",'
            '"choices":[{"index":0,"delta":'
        )

    def chunk(self, delta: Mapping[str, str], finish: str | None = None) -> bytes:
        """One chunk carrying ``delta`` (and ``finish_reason``)."""
        delta_json = json.dumps(delta, ensure_ascii=False, separators=(",", ":"))
        finish_json = "null" if finish is None else f'"{finish}"'
        tail = f',"logprobs":null,"finish_reason":{finish_json}}}]}}\n\n'
        return (self._head + delta_json + tail).encode()

    def role(self) -> bytes:
        """The first chunk: the assistant role and empty content."""
        return self.chunk({"role": "assistant", "content": ""})

    def content(self, piece: str) -> bytes:
        """A chunk of reply text."""
        return self.chunk({"content": piece})

    def stop(self) -> bytes:
        """The last chunk: ``finish_reason: "stop"``."""
        return self.chunk({}, "stop")


def _delta_frame(content: str) -> bytes:
    frame = 'event: message\ndata: {"choices":[{"delta":{"content":"' + content + '"}}]}\n\n'
    return frame.encode("utf-8", "surrogateescape")


def word_frames(text: str) -> bytes:
    """An upstream error: one ``event: message`` frame per word (split on spaces, the words
    after the first with a leading space), then a stop frame. No ``[DONE]``."""
    words = text.split(" ")
    frames = [_delta_frame(word if index == 0 else " " + word) for index, word in enumerate(words)]
    return b"".join(frames) + _STOP_FRAME


def limited_frames(text: str) -> bytes:
    """An exception while streaming: the text's word frames, then ``event: message`` /
    ``data: [LIMITED]``. No stop frame, no ``[DONE]``."""
    frames = []
    for index, word in enumerate(text.split(" ")):
        if index and word == "[LIMITED]":
            frames.append(b"event: message\ndata: [LIMITED]\n\n")
        else:
            frames.append(_delta_frame(word if index == 0 else " " + word))
    frames.append(b"event: message\ndata: [LIMITED]\n\n")
    return b"".join(frames)


def error_frame(text: str) -> bytes:
    """The whole error text in one ``event: message`` frame, then a stop frame (what the
    plugin prints when the model's error body arrived in several pieces)."""
    return _delta_frame(text) + _STOP_FRAME


def openai_error_body(text: str, code: str = "invalid_api_key") -> bytes:
    """An OpenAI API error body, pretty-printed as the API sends it."""
    error = {"message": text, "type": "invalid_request_error", "param": None, "code": code}
    return (json.dumps({"error": error}, indent=4, ensure_ascii=False) + "\n").encode(
        "utf-8", "surrogateescape"
    )


def flag_event(payload: Mapping[str, object]) -> bytes:
    """One ``data:`` event holding the plugin's JSON (a flag event, or an error object)."""
    return f"data: {php_json(payload)}\n\n".encode()


def assistant_event(event: str, data: object) -> bytes:
    """An event of the plugin's own (``thread_id``, ``assistant_error``, ``done``)."""
    if not isinstance(data, str):
        data = php_json(data)
    return f"event: {event}\ndata: {data}\n\n".encode()


def _upstream(event: str, payload: object) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"event: {event}\ndata: {data}\n\n"


def assistant_delta(message_id: str, piece: str) -> str:
    """One upstream ``thread.message.delta`` event."""
    delta = {"index": 0, "type": "text", "text": {"value": piece, "annotations": []}}
    payload = {"id": message_id, "object": "thread.message.delta", "delta": {"content": [delta]}}
    return _upstream("thread.message.delta", payload)


def assistant_upstream_events(
    thread_id: str, message_id: str, pieces: list[str], *, finished: bool = True
) -> list[str]:
    """The upstream Assistants stream of one run, one string per network chunk.

    The plugin forwards only the chunks holding ``thread.message.delta`` or ``done``; the
    other events sharing such a chunk go along (here: ``thread.message.created`` and
    ``thread.message.in_progress`` before the first delta, ``thread.message.completed``
    and ``thread.run.step.completed`` after the last one). With ``finished=False`` the run
    fails after the pieces: ``thread.run.failed``, and the upstream stream ends.
    """
    run_id, step_id = new_id("run_"), new_id("step_")
    base = {"thread_id": thread_id, "run_id": run_id}
    message = {"id": message_id, "object": "thread.message", **base, "role": "assistant"}
    text = "".join(pieces)
    run = {"id": run_id, "object": "thread.run", "thread_id": thread_id}
    chunks = [
        _upstream("thread.run.created", {**run, "status": "queued"})
        + _upstream("thread.run.queued", {**run, "status": "queued"}),
        _upstream("thread.run.in_progress", {**run, "status": "in_progress"})
        + _upstream("thread.run.step.created", {"id": step_id, "object": "thread.run.step"}),
    ]
    opening = _upstream("thread.message.created", {**message, "status": "in_progress"})
    opening += _upstream("thread.message.in_progress", {**message, "status": "in_progress"})
    deltas = [assistant_delta(message_id, piece) for piece in pieces]
    if deltas:
        deltas[0] = opening + deltas[0]
    else:
        deltas = [opening]
    if finished:
        content = [{"type": "text", "text": {"value": text, "annotations": []}}]
        deltas[-1] += _upstream(
            "thread.message.completed", {**message, "status": "completed", "content": content}
        ) + _upstream("thread.run.step.completed", {"id": step_id, "status": "completed"})
        chunks += deltas
        chunks.append(_upstream("thread.run.completed", {**run, "status": "completed"}))
        chunks.append(_upstream("done", "[DONE]"))
    else:
        chunks += deltas
        chunks.append(_upstream("thread.run.failed", {**run, "status": "failed"}))
    return chunks
