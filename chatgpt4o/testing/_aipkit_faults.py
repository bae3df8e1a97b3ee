"""Failures the AIPKit emulator can inject, one request at a time.

An :class:`AipkitFault` is a frozen value built with one of its class-method factories and
queued with :meth:`AipkitEmulator.fail_next <chatgpt4o.testing._aipkit.AipkitEmulator.fail_next>`.
Its ``target`` says which requests it may hit:

- ``"page"``: a GET of the page;
- ``"cache"``: step 1, ``POST action=aipkit_cache_sse_message``;
- ``"stream"``: step 2, ``GET ?action=aipkit_frontend_chat_stream``;
- ``"message"``: the JSON action ``aipkit_frontend_chat_message`` (up to 2.4.0);
- ``"chat"``: a stream or a JSON message, whichever comes first (where the model is called);
- ``"nonce"``: the nonce refresh ``aipkit_get_frontend_chat_nonce``;
- ``"ajax"``: any request to ``admin-ajax.php``.

Each request takes the oldest queued fault that can hit it; a fault is used up by that one
request. Faults by layer:

- HTTP / CDN, answered at once: :meth:`~AipkitFault.status`,
  :meth:`~AipkitFault.rate_limited`, :meth:`~AipkitFault.server_error`,
  :meth:`~AipkitFault.cloudflare`, :meth:`~AipkitFault.page`,
  :meth:`~AipkitFault.plugin_gone`
- transport: :meth:`~AipkitFault.stall` (then a normal answer), :meth:`~AipkitFault.reset`
- the plugin, at the step where the real failure happens (the checks before it run as
  usual): :meth:`~AipkitFault.stale_nonce`, :meth:`~AipkitFault.cache_expired`,
  :meth:`~AipkitFault.cache_missing`, :meth:`~AipkitFault.cache_store_failed`,
  :meth:`~AipkitFault.quota_reached`
- the model and the stream: :meth:`~AipkitFault.model_error`,
  :meth:`~AipkitFault.connection_error`, :meth:`~AipkitFault.upstream_cut`,
  :meth:`~AipkitFault.stream_cut`, :meth:`~AipkitFault.stream_stall`,
  :meth:`~AipkitFault.warning`
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

from ._fault_base import SiteFault, check_after_chunks, check_seconds

__all__ = [
    "DEFAULT_API_ERROR",
    "DEFAULT_STREAM_ERROR",
    "FAULT_TARGETS",
    "HANDLER_KINDS",
    "AipkitFault",
    "AipkitTarget",
    "RequestKind",
]

AipkitTarget = Literal["page", "ajax", "cache", "stream", "message", "chat", "nonce"]
#: What a request is, for matching faults to it.
RequestKind = Literal["page", "cache", "stream", "message", "nonce", "other"]

FAULT_TARGETS: tuple[AipkitTarget, ...] = (
    "page", "ajax", "cache", "stream", "message", "chat", "nonce",
)  # fmt: skip

_TARGET_KINDS: Mapping[str, frozenset[str]] = {
    "page": frozenset({"page"}),
    "ajax": frozenset({"cache", "stream", "message", "nonce", "other"}),
    "cache": frozenset({"cache"}),
    "stream": frozenset({"stream"}),
    "message": frozenset({"message"}),
    "chat": frozenset({"stream", "message"}),
    "nonce": frozenset({"nonce"}),
}
# The requests each plugin or model fault can act on at all.
_APPLIES_TO: Mapping[str, frozenset[str]] = {
    "stale_nonce": frozenset({"cache", "stream", "message"}),
    "cache_expired": frozenset({"stream"}),
    "cache_missing": frozenset({"stream"}),
    "cache_store_failed": frozenset({"cache"}),
    "quota_reached": frozenset({"stream", "message"}),
    "model_error": frozenset({"stream", "message"}),
    "connection_error": frozenset({"stream", "message"}),
    "upstream_cut": frozenset({"stream", "message"}),
    "stream_cut": frozenset({"stream", "message"}),
    "stream_stall": frozenset({"stream", "message"}),
    "warning": frozenset({"stream"}),
}
#: Faults that go through the handler and act at their own step.
HANDLER_KINDS = frozenset(_APPLIES_TO)

_API_ERROR = (
    "Incorrect API key provided: sk-proj-****************************abcd. You can find your "
    "API key at https://platform.openai.com/account/api-keys. (Code: invalid_api_key)"
)
_STREAM_ERROR = " (Error: The server had an error while processing your request. Sorry about that!)"
_TIMED_OUT = "Operation timed out after 120001 milliseconds with 0 bytes received"


@dataclass(frozen=True, repr=False)  # SiteFault.__repr__: the fields that are set
class AipkitFault(SiteFault):
    """One injected failure. Build it with a factory, e.g. ``AipkitFault.stale_nonce()``.

    Attributes (read-only; their meaning depends on ``kind``):
        kind: which fault this is (the name of the factory that built it).
        target: which requests it may hit (see the module text).
        code: an HTTP status (HTTP faults; the upstream's status for ``model_error``).
        body: the body of ``status`` and ``page``.
        headers: extra response headers as ``(name, value)`` pairs.
        content_type: the ``Content-Type`` of ``body``.
        seconds: how long to stall.
        count: how many text deltas go out first.
        text: the error or warning text, where the fault carries one.
        clean: ``stream_cut``: end the response properly (no ``done``) instead of
            dropping the connection.
    """

    TARGETS: ClassVar[tuple[str, ...]] = FAULT_TARGETS
    DEFAULT_TARGET: ClassVar[str] = "ajax"

    target: AipkitTarget = "ajax"
    count: int = 0
    text: str = ""
    clean: bool = False

    def hits(self, request_kind: str) -> bool:
        """Whether this fault may act on a request of ``request_kind``."""
        if request_kind not in _TARGET_KINDS[self.target]:
            return False
        applies = _APPLIES_TO.get(self.kind)
        return applies is None or request_kind in applies

    # HTTP / CDN (status, rate_limited, server_error, cloudflare, page: from SiteFault) ---

    @classmethod
    def plugin_gone(cls, target: str = "ajax") -> AipkitFault:
        """HTTP 400, body ``0``: the plugin is deactivated (no handler for the action)."""
        return cls(
            "plugin_gone",
            cls._target(target, ("ajax", "cache", "stream", "message", "chat", "nonce")),
        )

    # transport (stall: from SiteFault) --------------------------------------------------

    @classmethod
    def reset(cls, target: str = "ajax") -> AipkitFault:
        """Reset the TCP connection (RST) without sending a byte of the answer."""
        return cls("reset", cls._target(target))

    # the plugin -------------------------------------------------------------------------

    @classmethod
    def stale_nonce(cls, target: str = "cache") -> AipkitFault:
        """The nonce is rejected as if it were stale: step 1 answers 403
        ``nonce_failure_cache_sse``, the stream an ``error`` + ``done``, the JSON action
        403. The cache key of a refused stream is kept, as on a real site."""
        return cls(
            "stale_nonce", cls._target(target, ("ajax", "cache", "stream", "message", "chat"))
        )

    @classmethod
    def cache_expired(cls) -> AipkitFault:
        """The stream finds its cache key expired ("Cached message has expired.")."""
        return cls("cache_expired", "stream")

    @classmethod
    def cache_missing(cls) -> AipkitFault:
        """The stream finds no such cache key ("Message not found in cache."), as for a key
        used already."""
        return cls("cache_missing", "stream")

    @classmethod
    def cache_store_failed(cls) -> AipkitFault:
        """Step 1 fails to store the message: HTTP 500 ``sse_cache_db_insert_failed``."""
        return cls("cache_store_failed", "cache")

    @classmethod
    def quota_reached(cls, target: str = "chat") -> AipkitFault:
        """The guest's quota is used up: the bot's quota text (``quota_notice`` from 2.4.5)
        as an ``error`` + ``done``, or HTTP 429 from the JSON action."""
        return cls("quota_reached", cls._target(target, ("ajax", "stream", "message", "chat")))

    # the model --------------------------------------------------------------------------

    @classmethod
    def model_error(
        cls, text: str | None = None, *, after_chunks: int = 0, code: int = 401
    ) -> AipkitFault:
        """The model fails. The reply is not stored; the stream ends without ``done``.

        With ``after_chunks=0`` the model's API answered HTTP ``code``: the stream sends
        ``message_start`` then ``error`` ``"API Error: <text>"``; the JSON action answers
        HTTP ``code`` with ``"OpenAI API Error (HTTP <code>): <text>"``. With
        ``after_chunks=N`` N deltas go out first and the error comes from inside the
        model's stream (default text ``" (Error: ...)"``, sent as is).
        """
        return cls(
            "model_error",
            "chat",
            code=code,
            count=check_after_chunks(after_chunks),
            text=text or "",
        )

    @classmethod
    def connection_error(cls, text: str = _TIMED_OUT, *, after_chunks: int = 0) -> AipkitFault:
        """The site loses the model's API (cURL): ``after_chunks`` deltas, then ``error``
        ``"Connection Error: <text>"`` without ``done``. What was streamed is stored as the
        reply, as the plugin does."""
        return cls("connection_error", "chat", count=check_after_chunks(after_chunks), text=text)

    @classmethod
    def upstream_cut(cls, after_chunks: int = 1) -> AipkitFault:
        """The model's stream stops early without an error: ``after_chunks`` deltas, then a
        normal ``done``, and the partial reply is stored. With 0 deltas: ``error``
        ``"Connection error: no data received from AI."`` without ``done``."""
        return cls("upstream_cut", "chat", count=check_after_chunks(after_chunks))

    @classmethod
    def stream_cut(cls, after_chunks: int = 1, *, clean: bool = False) -> AipkitFault:
        """The site's answer breaks off after ``after_chunks`` deltas: no ``done``, nothing
        stored. By default the connection is dropped (the chunked body never ends); with
        ``clean=True`` the response ends properly, just early."""
        return cls("stream_cut", "chat", count=check_after_chunks(after_chunks), clean=clean)

    @classmethod
    def stream_stall(cls, after_chunks: int, seconds: float) -> AipkitFault:
        """``after_chunks`` deltas, a pause of ``seconds``, then the rest as normal."""
        return cls(
            "stream_stall",
            "chat",
            count=check_after_chunks(after_chunks),
            seconds=check_seconds(seconds),
        )

    @classmethod
    def warning(
        cls, text: str = " (Incomplete: max_output_tokens)", *, after_chunks: int | None = None
    ) -> AipkitFault:
        """A non-fatal ``warning`` event (``id: err-<unix>``) after ``after_chunks`` deltas
        (default: after all of them); its text is appended to the stored reply and the
        stream ends with ``done``."""
        count = -1 if after_chunks is None else check_after_chunks(after_chunks)
        return cls("warning", "stream", count=count, text=text)


#: The default texts, for the emulator.
DEFAULT_API_ERROR = _API_ERROR
DEFAULT_STREAM_ERROR = _STREAM_ERROR
