"""Faults the emulator can inject, one request at a time.

A :class:`Fault` is a plain frozen value built with one of its class-method factories and
queued with :meth:`SiteEmulator.fail_next <chatgpt4o.testing.SiteEmulator.fail_next>`.
Each fault has a ``target``: ``"post"`` faults hit the next request to
``/wp-admin/admin-ajax.php``, ``"page"`` faults hit the next GET of the page ``/``.

Faults by layer:

- HTTP / CDN: :meth:`Fault.status`, :meth:`Fault.rate_limited`, :meth:`Fault.server_error`,
  :meth:`Fault.cloudflare`, :meth:`Fault.page`
- transport: :meth:`Fault.stall`, :meth:`Fault.reset_before_headers`,
  :meth:`Fault.reset_after_headers`
- body: :meth:`Fault.html_instead_of_json`, :meth:`Fault.truncated_json`,
  :meth:`Fault.data_wrong_type`, :meth:`Fault.no_data`, :meth:`Fault.empty_body`,
  :meth:`Fault.wrong_content_type`, :meth:`Fault.non_utf8`
- plugin / WordPress: :meth:`Fault.ai_unavailable`, :meth:`Fault.token_limit`,
  :meth:`Fault.plugin_gone`, :meth:`Fault.ajax_referer_failed`, :meth:`Fault.stale_nonce`
- the model: :meth:`Fault.upstream_error`, :meth:`Fault.upstream_unreachable`
- streaming: :meth:`Fault.stream_no_done`, :meth:`Fault.stream_limited`,
  :meth:`Fault.stream_error_event`, :meth:`Fault.stream_error_object`,
  :meth:`Fault.stream_stall`

Most faults answer at once, before the emulator looks at the request. The plugin and model
faults (:data:`HANDLER_FAULTS`) instead go through the handler like a normal request (nonce,
banned IPs and words, the message...) and act at the step where the real failure happens:
a stale nonce still gets its 403, and an empty message never reaches the model. Either way
the fault is used up by the request it was queued for.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

from ._fault_base import SiteFault, check_after_chunks, check_seconds

__all__ = [
    "FLAGS",
    "HANDLER_FAULTS",
    "STALE_NONCE_STYLES",
    "STREAM_ERROR_MESSAGES",
    "Fault",
    "FaultTarget",
]

FaultTarget = Literal["page", "post"]

#: Messages of the flag events, by the flag the plugin sets (English; a site in another
#: language sends the translation, except for ``pineconeError``, whose text comes from the
#: vector database).
STREAM_ERROR_MESSAGES: Mapping[str, str] = {
    "tokenLimitReached": "You have reached your token limit.",
    "ipBanned": "You are not allowed to access this feature.",
    "messageFlagged": (
        "Your message contains prohibited words. Please modify your message and try again."
    ),
    "modflag": (
        "Your message has been flagged as potentially harmful or inappropriate. Please "
        "ensure that your messages are respectful and do not contain language or content "
        "that could be offensive or harmful to others. Thank you for your cooperation."
    ),
    "pineconeError": "There was an error while searching the knowledge base. Please try again.",
}

#: The flags of flag events, and whether the plugin stops after the event (``True``) or
#: goes on with a complete normal answer (``False``).
FLAGS: Mapping[str, bool] = {
    "tokenLimitReached": True,
    "ipBanned": False,
    "messageFlagged": False,
    "modflag": True,
    "pineconeError": True,
}

#: Ways a stale nonce is answered (see :meth:`Fault.stale_nonce`).
STALE_NONCE_STYLES = (
    "json",  # {"status":"error","msg":"Nonce verification failed"}, AI Power <= 1.8.90
    "security_check",  # {"status":"error","msg":"Security check"}, older versions
    "invalid_nonce",  # {"status":"error","msg":"Invalid nonce. ..."}, older versions
    "expired",  # 403 bare "The link you followed has expired.", 1.8.91 to 2.2
    "are_you_sure",  # 403 bare "Are you sure you want to do this?", very old WordPress
)

#: Faults that go through the handler and act at their own step (see the module text).
HANDLER_FAULTS = frozenset(
    {
        "ai_unavailable",
        "token_limit",
        "upstream_error",
        "upstream_unreachable",
        "stream_no_done",
        "stream_limited",
        "stream_error_event",
        "stream_error_object",
        "stream_stall",
    }
)

_UPSTREAM_ERROR = (
    "You exceeded your current quota, please check your plan and billing details. "
    "For more information on this error, read the docs: "
    "https://platform.openai.com/docs/guides/error-codes/api-errors."
)
_UNREACHABLE = (
    "cURL error 7: Failed to connect to api.openai.com port 443 after 3 ms: "
    "Couldn't connect to server"
)
_TIMED_OUT = "cURL error 28: Operation timed out after 30001 milliseconds with 2148 bytes received"


@dataclass(frozen=True, repr=False)  # SiteFault.__repr__: the fields that are set
class Fault(SiteFault):
    """One injected failure. Build it with a factory, e.g. ``Fault.rate_limited("5")``.

    Attributes (read-only; their meaning depends on ``kind``):
        kind: which fault this is (the name of the factory that built it).
        target: ``"post"`` (the next admin-ajax request) or ``"page"`` (the next page GET).
        code: the HTTP status to answer with, where the fault sets one.
        body: the body text, where the fault carries one.
        headers: extra response headers as ``(name, value)`` pairs.
        content_type: the ``Content-Type`` of ``body``.
        seconds: how long to stall.
        count: how many stream chunks to send first (``None``: the fault's default).
        text: a message, event kind or style, depending on ``kind``.
        once: upstream errors: print the error frames once instead of twice.
        whole: upstream errors: the model's error body arrives in pieces (see
            :meth:`upstream_error`).
    """

    TARGETS: ClassVar[tuple[str, ...]] = ("page", "post")
    DEFAULT_TARGET: ClassVar[str] = "post"

    target: FaultTarget = "post"
    count: int | None = None
    text: str = ""
    once: bool = False
    whole: bool = False

    # (HTTP / CDN: status, rate_limited, server_error, cloudflare, page; transport: stall;
    # inherited from SiteFault)

    # transport --------------------------------------------------------------------------

    @classmethod
    def reset_before_headers(cls, target: FaultTarget = "post") -> Fault:
        """Reset the TCP connection (RST) without sending any byte of a response."""
        return cls("reset_before_headers", cls._target(target))

    @classmethod
    def reset_after_headers(cls, target: FaultTarget = "post") -> Fault:
        """Send the status line, headers (a too-large Content-Length) and half a body, then
        close the connection."""
        return cls("reset_after_headers", cls._target(target))

    # body -------------------------------------------------------------------------------

    @classmethod
    def html_instead_of_json(cls) -> Fault:
        """HTTP 200 with an HTML page (``text/html``) where the JSON answer belongs."""
        return cls("html_instead_of_json")

    @classmethod
    def truncated_json(cls) -> Fault:
        """HTTP 200 ``application/json`` carrying the first half of a success body."""
        return cls("truncated_json")

    @classmethod
    def data_wrong_type(cls, value: object = 42) -> Fault:
        """A success body whose ``data`` is ``value`` (default ``42``) instead of a string."""
        return cls("data_wrong_type", text=json.dumps(value))

    @classmethod
    def no_data(cls) -> Fault:
        """``{"status":"success","msg":"Something went wrong"}``: success without ``data``."""
        return cls("no_data")

    @classmethod
    def empty_body(cls) -> Fault:
        """HTTP 200 with an empty body (``text/html``, as admin-ajax.php labels it)."""
        return cls("empty_body")

    @classmethod
    def wrong_content_type(cls) -> Fault:
        """A normal success body labelled ``Content-Type: text/plain``."""
        return cls("wrong_content_type")

    @classmethod
    def non_utf8(cls) -> Fault:
        """HTTP 200 ``application/json`` whose body is Latin-1, not valid UTF-8."""
        return cls("non_utf8")

    # plugin / WordPress -----------------------------------------------------------------

    @classmethod
    def ai_unavailable(cls) -> Fault:
        """``{"status":"error","msg":"Unable to initialize the AI instance. ..."}``: the
        plugin has no usable API key (JSON even on a streaming site)."""
        return cls("ai_unavailable")

    @classmethod
    def token_limit(cls) -> Fault:
        """The token-limit answer (JSON, or one ``data:`` event when streaming)."""
        return cls("token_limit")

    @classmethod
    def plugin_gone(cls) -> Fault:
        """HTTP 400, body ``0``: no handler for the action (AI Power 2.3 and newer)."""
        return cls("plugin_gone")

    @classmethod
    def ajax_referer_failed(cls) -> Fault:
        """HTTP 403, body ``-1``: a failed ``check_ajax_referer``."""
        return cls("ajax_referer_failed")

    @classmethod
    def stale_nonce(cls, style: str | None = None) -> Fault:
        """Answer as if the nonce were stale, in the site's language.

        ``style`` is one of :data:`STALE_NONCE_STYLES`; ``None`` (the default) answers the
        way the emulator's ``plugin_version`` does.
        """
        if style is not None and style not in STALE_NONCE_STYLES:
            raise ValueError(f"style must be one of {STALE_NONCE_STYLES}, not {style!r}")
        return cls("stale_nonce", text=style or "")

    # the model --------------------------------------------------------------------------

    @classmethod
    def upstream_error(
        cls, msg: str = _UPSTREAM_ERROR, *, once: bool = False, whole: bool = False
    ) -> Fault:
        """The model's API answers an error with the text ``msg``, as the site shows it:

        - plain JSON: ``{"status":"error","msg":<msg, HTML-escaped>,"greeting_message":…,
          "log":false}``;
        - streaming: one ``event: message`` frame per word of ``msg``, a stop frame, no
          ``[DONE]``, the whole sequence **printed twice** as on real sites (``once=True``:
          once); up to 1.8.84 the plugin's JSON (``"status":"success"``, ``"data":""``)
          follows. With ``whole=True`` the error body reached the plugin in pieces: the
          raw body is passed through, then one frame holds the whole text (printed once);
        - Assistant mode: the thread could not be created or continued: ``event:
          assistant_error`` then ``event: done`` with empty data, or a JSON error.
        """
        return cls("upstream_error", text=msg, once=once, whole=whole)

    @classmethod
    def upstream_unreachable(cls, msg: str = _UNREACHABLE) -> Fault:
        """The site cannot reach the model's API at all (``msg`` is the transport error).

        Plain JSON: the error JSON with ``msg``. Streaming: an **empty** event stream from
        1.8.85 (up to 1.8.84 only the plugin's JSON with ``"data":""``). Assistant mode: an
        ``assistant_error`` with ``msg``.
        """
        return cls("upstream_unreachable", text=msg)

    # streaming --------------------------------------------------------------------------

    @classmethod
    def stream_no_done(cls, after_chunks: int | None = None) -> Fault:
        """The model's stream is cut: the first ``after_chunks`` text chunks (default: all),
        then the response ends and the connection closes, with no finish chunk and no
        ``data: [DONE]``. Up to 1.8.84 the plugin's JSON with the partial text follows. In
        Assistant mode the run fails: the deltas, then the end without ``event: done``."""
        return cls("stream_no_done", count=check_after_chunks(after_chunks))

    @classmethod
    def stream_limited(cls, after_chunks: int | None = None, msg: str = _TIMED_OUT) -> Fault:
        """An exception while streaming: ``after_chunks`` text chunks (default: half), then
        ``event: message`` frames with the words of ``msg`` and ``event: message`` /
        ``data: [LIMITED]``."""
        return cls("stream_limited", count=check_after_chunks(after_chunks), text=msg)

    @classmethod
    def stream_error_event(cls, kind: str = "ipBanned", msg: str | None = None) -> Fault:
        """A flag event ``data: {"msg":"...","<kind>":true}`` (kinds: :data:`FLAGS`).

        ``tokenLimitReached``, ``modflag`` and ``pineconeError`` end the answer there;
        after ``ipBanned`` and ``messageFlagged`` the plugin goes on and a complete normal
        stream follows, as on a real site. ``msg`` defaults to the site's text for the flag.
        """
        if kind not in FLAGS:
            raise ValueError(f"kind must be one of {tuple(FLAGS)}, not {kind!r}")
        return cls("stream_error_event", body=msg or "", text=kind)

    @classmethod
    def stream_error_object(
        cls, msg: str = "Provider returned error", after_chunks: int = 0, code: int = 502
    ) -> Fault:
        """``after_chunks`` text chunks, then ``data: {"error":{"message":<msg>,"code":…}}``
        (an upstream error object passed through, as OpenRouter bots do), then the end."""
        return cls(
            "stream_error_object", count=check_after_chunks(after_chunks), text=msg, code=code
        )

    @classmethod
    def stream_stall(cls, after_chunks: int, seconds: float) -> Fault:
        """Stream ``after_chunks`` text chunks, stall ``seconds``, then finish normally."""
        count = check_after_chunks(after_chunks)
        return cls("stream_stall", count=count, seconds=check_seconds(seconds))
