"""What the emulator remembers about each request, and how it reads form bodies."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

__all__ = ["RecordedRequest", "parse_form"]

_BOUNDARY = re.compile(r'boundary=(?:"([^"]+)"|([^;\s]+))', re.IGNORECASE)
_FIELD_NAME = re.compile(rb'\bname="([^"]*)"|\bname=([^;\s]+)', re.IGNORECASE)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the emulator received it (recorded before any fault applies), and
    what the emulated plugin made of it.

    Attributes:
        method: the HTTP method, e.g. ``"POST"``.
        path: the decoded URL path, e.g. ``"/wp-admin/admin-ajax.php"``.
        query: the query-string fields (the last value wins, as in PHP).
        form: the body fields, from ``application/x-www-form-urlencoded`` or
            ``multipart/form-data`` (the last value wins). Bytes that are not UTF-8 are
            kept as lone surrogates (``errors="surrogateescape"``).
        headers: the request headers, a case-insensitive read-only multidict
            (``multidict.CIMultiDictProxy``): ``headers["x-requested-with"]`` works.
        cookies: the cookies sent.
        peer: the client's ``(host, port)``.
        raw_body: the body bytes exactly as received.
        model_calls: the messages of every call the plugin made to the model while
            answering this request, in order: each a list of ``{"role", "content"}``
            dicts (see ``SiteEmulator.model_calls``). Usually one call; none when the
            request was refused first; two when the model's error was printed twice (the
            site's HTTP layer called it again).
        thread_id: in Assistant mode, the thread this request created or continued
            (``None`` otherwise, or when the thread could not be used).
    """

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    headers: Mapping[str, str]
    cookies: dict[str, str]
    peer: tuple[str, int]
    raw_body: bytes = field(default=b"", repr=False)
    model_calls: list[list[dict[str, str]]] = field(default_factory=list, repr=False)
    thread_id: str | None = None

    def _set_thread_id(self, thread_id: str) -> None:
        """Filled in by the emulator once the thread is known (the record is frozen)."""
        object.__setattr__(self, "thread_id", thread_id)


def _parse_multipart(body: bytes, content_type: str) -> dict[str, str]:
    match = _BOUNDARY.search(content_type)
    if match is None:
        return {}
    boundary = (match.group(1) or match.group(2)).encode("latin-1", "replace")
    fields: dict[str, str] = {}
    for part in body.split(b"--" + boundary):
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        name_match = _FIELD_NAME.search(head)
        if name_match is None:
            continue
        name = (name_match.group(1) or name_match.group(2) or b"").decode(
            "utf-8", "surrogateescape"
        )
        if content.endswith(b"\r\n"):
            content = content[:-2]
        fields[name] = content.decode("utf-8", "surrogateescape")
    return fields


def parse_form(body: bytes, content_type: str) -> dict[str, str]:
    """Return the fields of a urlencoded or multipart form ``body`` (else ``{}``)."""
    mimetype = content_type.partition(";")[0].strip().lower()
    if mimetype == "application/x-www-form-urlencoded":
        text = body.decode("utf-8", "surrogateescape")
        return dict(
            parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="surrogateescape")
        )
    if mimetype == "multipart/form-data":
        return _parse_multipart(body, content_type)
    return {}
