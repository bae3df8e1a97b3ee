"""What every plugin protocol reads the same way: HTML attributes, Cloudflare's
challenges, and the HTTP statuses that mean the same on any WordPress site."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Generic, NoReturn, Protocol, TypeVar

from .._exceptions import CloudflareError, HTTPStatusError, RateLimitError, ResponseError, redact
from .._retry import parse_retry_after
from .base import PageReader

__all__ = [
    "ScraperReader",
    "attributes",
    "event_object",
    "is_cloudflare",
    "json_object",
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
