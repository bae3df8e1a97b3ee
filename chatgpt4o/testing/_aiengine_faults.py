"""Failures the AI Engine emulator can inject, one request at a time.

An :class:`EngineFault` is a frozen value built with one of its class-method factories
and queued with ``AIEngineEmulator.fail_next``. Its ``target`` says which request it hits:
``"page"`` (the next GET of the chat page), ``"session"`` (the next request to
``mwai/v1/start_session``) or ``"submit"`` (the next request to ``mwai-ui/v1/chats/submit``).

Faults by layer:

- HTTP / CDN, answered before WordPress runs: :meth:`~EngineFault.status`,
  :meth:`~EngineFault.rate_limited`, :meth:`~EngineFault.server_error` (500 on a REST
  route: WordPress's critical error as JSON), :meth:`~EngineFault.cloudflare`,
  :meth:`~EngineFault.waf`, :meth:`~EngineFault.page`
- transport: :meth:`~EngineFault.stall`, :meth:`~EngineFault.reset`
- WordPress: :meth:`~EngineFault.stale_nonce`, :meth:`~EngineFault.no_route`
- the plugin and the model (``submit`` only): :meth:`~EngineFault.provider_error`,
  :meth:`~EngineFault.upstream_cut`, :meth:`~EngineFault.refused`,
  :meth:`~EngineFault.over_limit`, :meth:`~EngineFault.moderation`
- the site's stream (``submit`` only): :meth:`~EngineFault.stream_cut`,
  :meth:`~EngineFault.stream_stall`

The HTTP, CDN and reset faults answer at once. The others go through the request's normal
checks and act at the step where the real failure happens (a missing nonce still gets its
401 before a provider error could happen). Either way the fault is used up by the request
it was queued for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from ._aiengine_rules import PROVIDER_ERROR
from ._fault_base import SiteFault, check_after_chunks, check_seconds, parse_fault_text

__all__ = [
    "ENGINE_TARGETS",
    "IMMEDIATE_KINDS",
    "EngineFault",
    "EngineTarget",
    "parse_engine_fault",
]

EngineTarget = Literal["page", "session", "submit"]

#: Every target, in the order they are usually hit.
ENGINE_TARGETS: tuple[EngineTarget, ...] = ("page", "session", "submit")
#: Kinds that answer before WordPress looks at the request.
IMMEDIATE_KINDS = frozenset(
    {"status", "rate_limited", "server_error", "cloudflare", "waf", "page", "reset"}
)


@dataclass(frozen=True, repr=False)  # SiteFault.__repr__: the fields that are set
class EngineFault(SiteFault):
    """One injected failure. Build it with a factory, e.g. ``EngineFault.waf("session")``.

    Attributes (read-only; their meaning depends on ``kind``):
        kind: the name of the factory that built it.
        target: ``"page"``, ``"session"`` or ``"submit"`` (see the module text).
        code: the HTTP status, where the fault sets one.
        body: the body, where the fault carries one.
        headers: extra response headers as ``(name, value)`` pairs.
        content_type: the ``Content-Type`` of ``body``.
        seconds: how long to stall.
        count: how many ``live`` chunks go out first (``None``: the fault's default).
        text: the message of a model or plugin failure.
        abort: ``stream_cut``: drop the connection instead of ending the response.
    """

    TARGETS: ClassVar[tuple[str, ...]] = ENGINE_TARGETS
    DEFAULT_TARGET: ClassVar[str] = "submit"

    target: EngineTarget = "submit"
    count: int | None = None
    text: str = ""
    abort: bool = False

    # HTTP / CDN (status, rate_limited, server_error, cloudflare, page: from SiteFault) ---

    @classmethod
    def waf(cls, target: EngineTarget = "session") -> EngineFault:
        """A web application firewall's HTML 403 page (``start_session`` by default, where
        scrapers were stopped by one in 2024)."""
        return cls("waf", cls._target(target), code=403)

    # transport (stall: from SiteFault) --------------------------------------------------

    @classmethod
    def reset(cls, target: EngineTarget = "submit") -> EngineFault:
        """Reset the TCP connection (RST) without sending a byte."""
        return cls("reset", cls._target(target))

    # WordPress --------------------------------------------------------------------------

    @classmethod
    def stale_nonce(cls, target: EngineTarget = "submit") -> EngineFault:
        """The nonce the request sends (``X-WP-Nonce`` or ``_wpnonce``) is treated as
        expired: 403 ``rest_cookie_invalid_nonce``. A request sending none is unaffected."""
        return cls("stale_nonce", cls._target(target, ("session", "submit")))

    @classmethod
    def no_route(cls, target: EngineTarget = "submit") -> EngineFault:
        """404 ``rest_no_route``, as when the plugin or its chatbots module is off."""
        return cls("no_route", cls._target(target, ("session", "submit")))

    # the plugin and the model -----------------------------------------------------------

    @classmethod
    def provider_error(cls, msg: str = PROVIDER_ERROR, after_chunks: int = 0) -> EngineFault:
        """The model's API fails with ``msg``: HTTP 500 JSON, or after ``after_chunks``
        ``live`` chunks an ``error`` event. From 3.6.3 visitors see the masked text."""
        return cls("provider_error", count=check_after_chunks(after_chunks), text=msg)

    @classmethod
    def upstream_cut(cls, after_chunks: int = 2) -> EngineFault:
        """The model's stream ends early, after ``after_chunks`` pieces: a streamed answer
        ends normally (``end``) with the partial reply, as a real site does; a plain answer
        cannot parse the model's cut answer and fails (HTTP 500)."""
        return cls("upstream_cut", count=check_after_chunks(after_chunks))

    @classmethod
    def refused(cls, msg: str = "Unauthorized query.") -> EngineFault:
        """An ``mwai_ai_allowed`` filter refuses the query with ``msg`` (shown as it is,
        ``overLimit: false``)."""
        return cls("refused", text=msg)

    @classmethod
    def over_limit(cls, msg: str | None = None) -> EngineFault:
        """The usage limit is reached for this query: 429 (500 before 3.6.3) or an
        ``error`` event, ``overLimit: true`` from 3.6.3; ``msg`` defaults to the
        version's guests text."""
        return cls("over_limit", text=msg or "")

    @classmethod
    def moderation(cls) -> EngineFault:
        """The moderation module flags the message (before any stream starts)."""
        return cls("moderation")

    # the site's stream ------------------------------------------------------------------

    @classmethod
    def stream_cut(cls, after_chunks: int | None = None, *, abort: bool = False) -> EngineFault:
        """A streamed answer stops after ``after_chunks`` ``live`` chunks (default: all of
        them) with no ``end`` event: the response ends there, or with ``abort=True`` the
        connection is dropped mid-response. A plain answer is not affected."""
        return cls("stream_cut", count=check_after_chunks(after_chunks), abort=abort)

    @classmethod
    def stream_stall(cls, after_chunks: int, seconds: float) -> EngineFault:
        """A streamed answer pauses ``seconds`` after ``after_chunks`` chunks, then ends
        normally."""
        return cls(
            "stream_stall", count=check_after_chunks(after_chunks), seconds=check_seconds(seconds)
        )


def parse_engine_fault(text: str) -> EngineFault:
    """``NAME[=ARG][@TARGET]``: the factory ``NAME`` called with ``ARG`` (a number where
    its first parameter takes one) and, where it has one, ``target=TARGET``; e.g.
    ``waf@session``, ``provider_error``, ``server_error=503@submit``."""
    return parse_fault_text(EngineFault, text, targets=True)
