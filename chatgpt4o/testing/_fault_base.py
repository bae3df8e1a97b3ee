"""What every emulator's faults share: the value, the HTTP / CDN factories, the parser.

:class:`SiteFault` is the frozen value each emulator's fault class extends
(:class:`~chatgpt4o.testing._faults.Fault`, ``AipkitFault``, ``EngineFault``) with the
fields and factories of its own plugin. A fault class names its targets (``TARGETS``) and
the one its factories use by default (``DEFAULT_TARGET``); :meth:`SiteFault.hits` says
which requests a fault may act on (by default the requests of its target).

:func:`parse_fault_text` reads the ``--fail`` strings of the command lines:
``NAME[=ARG[,ARG...]][@TARGET]``, each emulator choosing which parts its grammar has.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

__all__ = [
    "HTML",
    "SiteFault",
    "check_after_chunks",
    "check_seconds",
    "fault_factories",
    "parse_fault_text",
]

HTML = "text/html; charset=UTF-8"

F = TypeVar("F", bound="SiteFault")
_Count = TypeVar("_Count", int, "int | None")


def check_seconds(seconds: float) -> float:
    """A stall's length: not negative."""
    if seconds < 0:
        raise ValueError(f"seconds must be >= 0, not {seconds!r}")
    return float(seconds)


def check_after_chunks(after_chunks: _Count) -> _Count:
    """A count of chunks sent before a fault acts: not negative (``None``: the fault's
    default)."""
    if after_chunks is not None and after_chunks < 0:
        raise ValueError(f"after_chunks must be >= 0, not {after_chunks!r}")
    return after_chunks


@dataclass(frozen=True)
class SiteFault:
    """One injected failure. Subclasses add their plugin's fields and factories.

    Attributes (read-only; their meaning depends on ``kind``):
        kind: which fault this is (the name of the factory that built it).
        target: which requests it may hit (see the subclass).
        code: the HTTP status to answer with, where the fault sets one.
        body: the body text, where the fault carries one.
        headers: extra response headers as ``(name, value)`` pairs.
        content_type: the ``Content-Type`` of ``body``.
        seconds: how long to stall.
    """

    #: Every target, in the order the emulator lists queued faults.
    TARGETS: ClassVar[tuple[str, ...]] = ()
    #: The target of a factory called without one.
    DEFAULT_TARGET: ClassVar[str] = ""

    kind: str
    target: str = ""
    code: int = 200
    body: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = HTML
    seconds: float = 0.0

    def __repr__(self) -> str:
        shown = [f"kind={self.kind!r}", f"target={self.target!r}"]
        for item in dataclasses.fields(self)[2:]:
            value = getattr(self, item.name)
            if value != item.default:
                shown.append(f"{item.name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    def hits(self, request_kind: str) -> bool:
        """Whether this fault may act on a request of ``request_kind``."""
        return request_kind == self.target

    @classmethod
    def _target(cls, target: str | None, allowed: tuple[str, ...] | None = None) -> Any:
        """``target`` checked against ``allowed`` (default: every target), so one of the
        subclass's ``TARGETS``; ``None``: ``DEFAULT_TARGET``."""
        if target is None:
            return cls.DEFAULT_TARGET
        allowed = cls.TARGETS if allowed is None else allowed
        for known in allowed:
            if target == known:
                return known
        raise ValueError(f"fault target must be one of {allowed}, not {target!r}")

    # HTTP / CDN -------------------------------------------------------------------------

    @classmethod
    def status(
        cls: type[F],
        code: int,
        body: str = "",
        *,
        headers: Mapping[str, str] | None = None,
        content_type: str = HTML,
        target: str | None = None,
    ) -> F:
        """Answer with HTTP ``code``, ``body`` and ``headers``, whatever the request."""
        if not 100 <= code <= 999:
            raise ValueError(f"not an HTTP status code: {code!r}")
        return cls(
            "status",
            cls._target(target),
            code=code,
            body=body,
            headers=tuple((headers or {}).items()),
            content_type=content_type,
        )

    @classmethod
    def rate_limited(cls: type[F], retry_after: str | None = None, target: str | None = None) -> F:
        """HTTP 429 HTML page (a CDN, a WAF or nginx); ``Retry-After: retry_after``
        (seconds or an HTTP date) if given."""
        headers = () if retry_after is None else (("Retry-After", str(retry_after)),)
        return cls("rate_limited", cls._target(target), code=429, headers=headers)

    @classmethod
    def server_error(cls: type[F], code: int = 500, target: str | None = None) -> F:
        """A 5xx: 500 is WordPress's critical error, 502, 503 and 504 are nginx's pages."""
        if not 500 <= code <= 599:
            raise ValueError(f"server_error needs a 5xx status, not {code!r}")
        return cls("server_error", cls._target(target), code=code)

    @classmethod
    def cloudflare(cls: type[F], status: int = 403, target: str | None = None) -> F:
        """A Cloudflare managed challenge: ``cf-mitigated: challenge``, "Just a moment..."."""
        return cls("cloudflare", cls._target(target), code=status)

    @classmethod
    def page(cls: type[F], html: str) -> F:
        """Serve exactly ``html`` (HTTP 200) for the next GET of the page."""
        return cls("page", "page", body=html)

    # transport --------------------------------------------------------------------------

    @classmethod
    def stall(cls: type[F], seconds: float, target: str | None = None) -> F:
        """Wait ``seconds`` before anything is sent, then answer normally."""
        return cls("stall", cls._target(target), seconds=check_seconds(seconds))


def fault_factories(fault_class: type[SiteFault]) -> frozenset[str]:
    """The public class-method factories of ``fault_class``, inherited ones included."""
    return frozenset(
        name
        for klass in fault_class.__mro__
        for name, value in vars(klass).items()
        if isinstance(value, classmethod) and not name.startswith("_")
    )


def _convert(annotation: str, text: str) -> object:
    """``text`` as a parameter annotated ``annotation`` wants it: an int, a float or a
    bool where it takes one, else the text itself."""
    if "int" in annotation:
        return int(text)
    if "float" in annotation:
        return float(text)
    if annotation.strip() == "bool":
        return text.lower() in ("1", "true", "yes", "on")
    return text


def parse_fault_text(
    fault_class: type[F], text: str, *, several: bool = False, targets: bool = False
) -> F:
    """The fault ``text`` names: ``NAME``, ``NAME=ARG``, with ``several`` also
    ``NAME=ARG1,ARG2`` (the factory's leading positional arguments, the last one taking
    the rest of the text), with ``targets`` also ``...@TARGET`` (``target=TARGET``).

    Raises :class:`argparse.ArgumentTypeError` for an unknown name or bad arguments.
    """
    spec, at, target = text.partition("@") if targets else (text, "", "")
    name, sep, argument = spec.partition("=")
    name = name.strip().replace("-", "_")
    factories = fault_factories(fault_class)
    if name not in factories:
        choices = ", ".join(sorted(factories))
        raise argparse.ArgumentTypeError(f"unknown fault {name!r} (choose from {choices})")
    factory = getattr(fault_class, name)
    parameters = list(inspect.signature(factory).parameters.values())
    kwargs: dict[str, object] = {}
    if at:
        if not any(parameter.name == "target" for parameter in parameters):
            raise argparse.ArgumentTypeError(f"{text!r}: {name} has no target")
        kwargs["target"] = target.strip()
    positional = [p for p in parameters if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    try:
        values: list[object] = []
        if sep and several:
            count = len(positional)
            parts = argument.split(",", count - 1) if count > 1 else [argument]
            if len(parts) > count:
                raise ValueError(f"{name} takes at most {count} arguments")
            values = [
                _convert(str(parameter.annotation), part.strip())
                for parameter, part in zip(positional, parts, strict=False)
            ]
        elif sep:
            annotation = str(parameters[0].annotation) if parameters else ""
            values = [_convert(annotation, argument)]
        fault = factory(*values, **kwargs)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None
    if not isinstance(fault, fault_class):  # pragma: no cover - every factory builds one
        raise argparse.ArgumentTypeError(f"{text!r} is not a fault")
    return fault
