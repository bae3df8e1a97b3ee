"""What every plugin protocol reads the same way: HTML attributes, Cloudflare's
challenges, and the HTTP statuses that mean the same on any WordPress site."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any, Generic, NoReturn, Protocol, TypeVar

from .._exceptions import CloudflareError, HTTPStatusError, RateLimitError, ResponseError, redact
from .._retry import parse_retry_after
from .base import PageReader

__all__ = [
    "MarkedTags",
    "ScraperReader",
    "attributes",
    "event_object",
    "is_cloudflare",
    "json_attribute",
    "json_object",
    "maybe_json",
    "raise_for_status",
]

_Credentials = TypeVar("_Credentials")
_Found = TypeVar("_Found", covariant=True)


class _Scraper(Protocol[_Found]):
    """What a protocol's page scraper offers: read chunks, then the credentials."""

    def feed(self, chunk: bytes) -> bool: ...

    @property
    def text(self) -> str: ...

    def result(self, *, page_url: str = "", site_url: str = "") -> _Found | None: ...


class ScraperReader(PageReader[_Credentials], Generic[_Credentials]):
    """A `PageReader` over a protocol's scraper."""

    __slots__ = ("_scraper",)

    def __init__(self, scraper: _Scraper[_Credentials]) -> None:
        self._scraper = scraper

    def feed(self, chunk: bytes) -> bool:
        return self._scraper.feed(chunk)

    def text(self) -> str:
        return self._scraper.text

    def result(self, *, page_url: str, site_url: str) -> _Credentials | None:
        return self._scraper.result(page_url=page_url, site_url=site_url)


class MarkedTags:
    """A page as it arrives, and its opening tags that contain `marker`, each read once.

    The page is searched with plain `find`s from where the last chunk left off, so a
    crafted page cannot make this slower than linear; at most `max_bytes` are kept.
    """

    def __init__(self, marker: bytes, *, max_bytes: int, max_tag: int, look_back: int) -> None:
        self._marker = marker
        self._max_bytes = max_bytes
        self._max_tag = max_tag
        self._look_back = look_back
        self.page = bytearray()
        self._lower = bytearray()
        self._scan = 0

    def feed(self, chunk: bytes) -> None:
        chunk = chunk[: self._max_bytes - len(self.page)]
        self.page += chunk
        self._lower += chunk.lower()

    @property
    def full(self) -> bool:
        return len(self.page) >= self._max_bytes

    @property
    def text(self) -> str:
        return bytes(self.page).decode("utf-8", "replace")

    def new_tags(self) -> Iterator[dict[str, str]]:
        """The attributes of each whole tag with the marker that came since last time."""
        lower = self._lower
        while (at := lower.find(self._marker, self._scan)) != -1:
            start = lower.rfind(b"<", max(0, at - self._look_back), at)
            end = lower.find(b">", at)
            if end == -1:
                return  # the tag is not whole yet
            self._scan = at + len(self._marker)
            if start != -1 and end - start <= self._max_tag:
                yield attributes(bytes(self.page[start:end]).decode("utf-8", "replace"))


def maybe_json(data: bytes | str) -> Any:
    """`data` decoded as JSON, or None when it is not JSON."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def json_attribute(value: str) -> dict[str, Any] | None:
    """An HTML attribute that holds HTML-escaped JSON (plugins print their settings so),
    as a dict, if it is one."""
    parsed = maybe_json(html.unescape(value))
    return parsed if isinstance(parsed, dict) else None


def json_object(data: bytes | str, what: str = "the answer") -> dict[str, Any]:
    """`data` as a JSON object, or the `ResponseError` that says what came instead."""
    shown = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as err:
        raise ResponseError(f"Unexpected response: {what} is not JSON", body=shown) from err
    if not isinstance(value, dict):
        raise ResponseError(f"Unexpected response: {what} is not a JSON object", body=shown)
    return value


def event_object(data: bytes) -> dict[str, Any]:
    """A stream event's data as a JSON object (see `json_object`)."""
    return json_object(data, "a stream event")

# name = "value" | 'value' | bare; names as plugins write them (data-openai_stream_nav)
_ATTRIBUTE = re.compile(r"""([\w:.-]{1,100})\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")
# Only challenge pages carry these; Cloudflare's "challenge-platform" script is injected
# into ordinary pages too, so it proves nothing.
_CLOUDFLARE_MARKERS = ("<title>just a moment...</title>", "cf-chl-", "cf_chl_")


def attributes(tag: str) -> dict[str, str]:
    """The attributes of an opening tag's text (names lowercased; the first one wins;
    values not yet HTML-unescaped)."""
    found: dict[str, str] = {}
    for match in _ATTRIBUTE.finditer(tag):
        name = match.group(1).lower()
        value = next((group for group in match.groups()[1:] if group is not None), "")
        found.setdefault(name, value)
    return found


def is_cloudflare(status: int, headers: Mapping[str, str], body: str) -> bool:
    if status not in (403, 503, 429):
        return False
    if headers.get("cf-mitigated", "").lower() == "challenge":
        return True
    head = body[:8192].lower()
    return any(marker in head for marker in _CLOUDFLARE_MARKERS)


def raise_for_cloudflare(status: int, headers: Mapping[str, str], body: str) -> None:
    if is_cloudflare(status, headers, body):
        raise CloudflareError(
            "Cloudflare challenged the request; pass the cf_clearance cookie (and the "
            "user agent) of a browser that passed the challenge",
            status_code=status,
            body=body,
        )


def raise_for_status(status: int, headers: Mapping[str, str], body: str) -> NoReturn:
    """The typed error of a non-2xx answer that no plugin-specific rule explained."""
    raise_for_cloudflare(status, headers, body)
    retry_after = parse_retry_after(headers.get("retry-after"))
    if status == 429:
        hint = f"; retry after {retry_after:g} s" if retry_after is not None else ""
        raise RateLimitError(
            f"The site is rate limiting requests (HTTP 429){hint}",
            status_code=status,
            body=body,
            retry_after=retry_after,
        )
    if 300 <= status < 400:
        location = redact(headers.get("location", "?"))
        raise HTTPStatusError(
            f"The site redirected the request (HTTP {status}) to {location}; set the "
            "provider's url to the site's final address",
            status_code=status,
            body=body,
        )
    raise HTTPStatusError(
        f"The site answered HTTP {status}", status_code=status, body=body, retry_after=retry_after
    )
