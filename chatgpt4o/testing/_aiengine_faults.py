"""Failures the AI Engine emulator can inject, one request at a time.

An :class:`EngineFault` is a frozen value built with one of its class-method factories
and queued with ``AIEngineEmulator.fail_next``. Its ``target`` says which request it hits:
``"page"`` (the next GET of the chat page), ``"session"`` (the next request to
``mwai/v1/start_session``) or ``"submit"`` (the next request to ``mwai-ui/v1/chats/submit``).

Faults by layer:

- HTTP / CDN, answered before WordPress runs: :meth:`~EngineFault.status`,
  :meth:`~EngineFault.rate_limited`, :meth:`~EngineFault.server_error`,
  :meth:`~EngineFault.cloudflare`, :meth:`~EngineFault.waf`, :meth:`~EngineFault.page`
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

import argparse
import dataclasses
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from ._aiengine_rules import PROVIDER_ERROR

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

_HTML = "text/html; charset=UTF-8"


def _target(target: str, allowed: tuple[EngineTarget, ...] = ENGINE_TARGETS) -> EngineTarget:
    for known in allowed:
        if target == known:
            return known
    raise ValueError(f"fault target must be one of {allowed}, not {target!r}")


def _after(after_chunks: int | None) -> int | None:
    if after_chunks is not None and after_chunks < 0:
        raise ValueError(f"after_chunks must be >= 0, not {after_chunks!r}")
    return after_chunks


def _seconds(seconds: float) -> float:
    if seconds < 0:
        raise ValueError(f"seconds must be >= 0, not {seconds!r}")
    return float(seconds)


@dataclass(frozen=True)
class EngineFault:
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

    kind: str
    target: EngineTarget = "submit"
    code: int = 200
    body: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = _HTML
    seconds: float = 0.0
    count: int | None = None
    text: str = ""
    abort: bool = False

    def __repr__(self) -> str:
        shown = [f"kind={self.kind!r}", f"target={self.target!r}"]
        for item in dataclasses.fields(self)[2:]:
            value = getattr(self, item.name)
            if value != item.default:
                shown.append(f"{item.name}={value!r}")
        return f"EngineFault({', '.join(shown)})"

    # HTTP / CDN -------------------------------------------------------------------------

    @classmethod
    def status(
        cls,
        code: int,
        body: str = "",
        *,
        headers: Mapping[str, str] | None = None,
        content_type: str = _HTML,
        target: EngineTarget = "submit",
    ) -> EngineFault:
        """Answer with HTTP ``code``, ``body`` and ``headers``, whatever the request."""
        if not 100 <= code <= 999:
            raise ValueError(f"not an HTTP status code: {code!r}")
        return cls(
            "status",
            _target(target),
            code=code,
            body=body,
            headers=tuple((headers or {}).items()),
            content_type=content_type,
        )

    @classmethod
    def rate_limited(
        cls, retry_after: str | None = None, target: EngineTarget = "submit"
    ) -> EngineFault:
        """nginx's HTTP 429 page; ``Retry-After: retry_after`` if given."""
        headers = () if retry_after is None else (("Retry-After", str(retry_after)),)
        return cls("rate_limited", _target(target), code=429, headers=headers)

    @classmethod
    def server_error(cls, code: int = 500, target: EngineTarget = "submit") -> EngineFault:
        """A 5xx: 500 is WordPress's critical error (JSON on REST routes, HTML on the page),
        502, 503 and 504 are nginx's pages."""
        if not 500 <= code <= 599:
            raise ValueError(f"server_error needs a 5xx status, not {code!r}")
        return cls("server_error", _target(target), code=code)

    @classmethod
    def cloudflare(cls, status: int = 403, target: EngineTarget = "submit") -> EngineFault:
        """A Cloudflare managed challenge ("Just a moment...", ``cf-mitigated: challenge``)."""
        return cls("cloudflare", _target(target), code=status)

    @classmethod
    def waf(cls, target: EngineTarget = "session") -> EngineFault:
        """A web application firewall's HTML 403 page (``start_session`` by default, where
        scrapers were stopped by one in 2024)."""
        return cls("waf", _target(target), code=403)

    @classmethod
    def page(cls, html: str) -> EngineFault:
        """Serve exactly ``html`` (HTTP 200) for the next GET of the page."""
        return cls("page", "page", body=html)

    # transport --------------------------------------------------------------------------

    @classmethod
    def stall(cls, seconds: float, target: EngineTarget = "submit") -> EngineFault:
        """Wait ``seconds`` before anything, then answer normally."""
        return cls("stall", _target(target), seconds=_seconds(seconds))

    @classmethod
    def reset(cls, target: EngineTarget = "submit") -> EngineFault:
        """Reset the TCP connection (RST) without sending a byte."""
        return cls("reset", _target(target))

    # WordPress --------------------------------------------------------------------------

    @classmethod
    def stale_nonce(cls, target: EngineTarget = "submit") -> EngineFault:
        """The nonce the request sends (``X-WP-Nonce`` or ``_wpnonce``) is treated as
        expired: 403 ``rest_cookie_invalid_nonce``. A request sending none is unaffected."""
        return cls("stale_nonce", _target(target, ("session", "submit")))

    @classmethod
    def no_route(cls, target: EngineTarget = "submit") -> EngineFault:
        """404 ``rest_no_route``, as when the plugin or its chatbots module is off."""
        return cls("no_route", _target(target, ("session", "submit")))

    # the plugin and the model -----------------------------------------------------------

    @classmethod
    def provider_error(cls, msg: str = PROVIDER_ERROR, after_chunks: int = 0) -> EngineFault:
        """The model's API fails with ``msg``: HTTP 500 JSON, or after ``after_chunks``
        ``live`` chunks an ``error`` event. From 3.6.3 visitors see the masked text."""
        return cls("provider_error", count=_after(after_chunks), text=msg)

    @classmethod
    def upstream_cut(cls, after_chunks: int = 2) -> EngineFault:
        """The model's stream ends early, after ``after_chunks`` pieces: a streamed answer
        ends normally (``end``) with the partial reply, as a real site does; a plain answer
        cannot parse the model's cut answer and fails (HTTP 500)."""
        return cls("upstream_cut", count=_after(after_chunks))

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
        return cls("stream_cut", count=_after(after_chunks), abort=abort)

    @classmethod
    def stream_stall(cls, after_chunks: int, seconds: float) -> EngineFault:
        """A streamed answer pauses ``seconds`` after ``after_chunks`` chunks, then ends
        normally."""
        return cls("stream_stall", count=_after(after_chunks), seconds=_seconds(seconds))


_FACTORIES = frozenset(
    name
    for name, value in vars(EngineFault).items()
    if isinstance(value, classmethod) and not name.startswith("_")
)


def _convert(factory: Callable[..., object], text: str) -> int | float | str:
    parameters = list(inspect.signature(factory).parameters.values())
    annotation = str(parameters[0].annotation) if parameters else ""
    for kind in (int, float):
        if kind.__name__ in annotation:
            try:
                return kind(text)
            except ValueError:
                continue
    return text


def parse_engine_fault(text: str) -> EngineFault:
    """``NAME[=ARG][@TARGET]``: the factory ``NAME`` called with ``ARG`` (a number where
    its first parameter takes one) and, where it has one, ``target=TARGET``; e.g.
    ``waf@session``, ``provider_error``, ``server_error=503@submit``."""
    spec, at, target = text.partition("@")
    name, sep, argument = spec.partition("=")
    name = name.strip().replace("-", "_")
    if name not in _FACTORIES:
        choices = ", ".join(sorted(_FACTORIES))
        raise argparse.ArgumentTypeError(f"unknown fault {name!r} (choose from {choices})")
    factory = getattr(EngineFault, name)
    kwargs: dict[str, object] = {}
    if at:
        if "target" not in inspect.signature(factory).parameters:
            raise argparse.ArgumentTypeError(f"{text!r}: {name} has no target")
        kwargs["target"] = target.strip()
    try:
        fault = factory(_convert(factory, argument), **kwargs) if sep else factory(**kwargs)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None
    if not isinstance(fault, EngineFault):  # pragma: no cover - every factory builds one
        raise argparse.ArgumentTypeError(f"{text!r} is not a fault")
    return fault
