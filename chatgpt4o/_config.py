"""Argument checks, all made before any I/O, and how a proxy may be shown.

Each check returns the value in the form the library uses, or raises `TypeError` or
`ValueError` with a message that never shows a secret (a cookie's value, a proxy
password).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

__all__ = [
    "PROXY_SCHEMES",
    "check_bot",
    "check_cookies",
    "check_proxy",
    "check_retries",
    "check_site_url",
    "check_timeout",
    "describe_proxy",
]

PROXY_SCHEMES = ("http", "https", "socks4", "socks4a", "socks5", "socks5h")

# RFC 6265: a cookie name is a token; a value has no space, quote, comma, semicolon,
# backslash or control character, and is ASCII.
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_COOKIE_VALUE = re.compile(r'"?[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*"?')


def check_bot(bot_id: object) -> str | None:
    """A chatbot's id on its page (a str or int) as the providers keep it; None: the
    page's first chatbot."""
    if bot_id is None:
        return None
    if isinstance(bot_id, int) and not isinstance(bot_id, bool):
        return str(bot_id)
    if not isinstance(bot_id, str) or not bot_id.strip() or len(bot_id) > 200:
        raise ValueError(f"bot_id must be a chatbot's id (a str or int) or None, got {bot_id!r}")
    return bot_id.strip()


def check_timeout(timeout: object) -> float | None:
    """Seconds as a float; None (or infinity) for no deadline."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, not {type(timeout).__name__}")
    if not timeout > 0:
        raise ValueError(f"timeout must be more than 0 seconds, got {timeout!r}")
    return None if math.isinf(timeout) else float(timeout)


def check_retries(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"max_retries must be a whole number >= 0, got {value!r}")
    return value


def check_cookies(cookies: object) -> dict[str, str]:
    """A copy of the user's cookies, name to value, each checked."""
    if cookies is None:
        return {}
    if not isinstance(cookies, Mapping):
        raise TypeError(f"cookies must be a dict of name to value, not {type(cookies).__name__}")
    checked: dict[str, str] = {}
    for name, value in cookies.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(f"cookie {name!r}: names and values must be str")
        if not _COOKIE_NAME.fullmatch(name):
            raise ValueError(f"cookie {name!r}: not a valid cookie name")
        if not _COOKIE_VALUE.fullmatch(value):  # the value itself is never shown
            raise ValueError(
                f"cookie {name!r}: its value has characters a cookie cannot carry (space, "
                "quote, comma, semicolon, backslash, control or non-ASCII characters)"
            )
        checked[name] = value
    return checked


def check_site_url(url: object, owner: str = "url") -> str:
    """An http(s) URL with a host."""
    if not isinstance(url, str):
        raise TypeError(f"{owner} must be an http(s) URL string, not {type(url).__name__}")
    site = urlsplit(url)
    if site.scheme not in ("http", "https") or not site.hostname:
        raise ValueError(f"{owner} must be an http(s) URL, got {url!r}")
    return url


def describe_proxy(proxy: str) -> str:
    """The proxy as it may be shown: scheme, host and port, never the password."""
    parts = urlsplit(proxy)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{parts.hostname or '?'}{port}"


def check_proxy(proxy: object) -> str | None:
    """A proxy URL, or None for no proxy."""
    if proxy is None or proxy == "":
        return None
    if not isinstance(proxy, str):
        raise TypeError(f"proxy must be a URL string, not {type(proxy).__name__}")
    parts = urlsplit(proxy)
    shown = describe_proxy(proxy)  # never the password, even a malformed one
    if parts.scheme.lower() not in PROXY_SCHEMES or not parts.hostname:
        raise ValueError(
            f"proxy must look like scheme://[user:password@]host:port with a scheme of "
            f"{', '.join(PROXY_SCHEMES)}; got {shown!r}"
        )
    try:
        parts.port  # noqa: B018 - parsing it validates it
    except ValueError as err:
        raise ValueError(
            f"proxy {shown!r} could not be read: a bad port, or a password with '/', '@' "
            "or ':' that is not percent-encoded"
        ) from err
    return proxy
