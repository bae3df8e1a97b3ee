"""The options every `chatgpt4o` command takes to reach a site, and their resolution.

`chatgpt4o` (the chat), `check`, `models` and `serve` all talk to a site; they add the
same options (`add_site_options`) and resolve them the same way (`site_options`): flags
first, then the environment, then the defaults, checked before any I/O, and every secret
handed to the command's `Scrubber` so that no message can show it.

Like `_terminal`, this module stays free of asyncio and the HTTP stack.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ._config import check_proxy
from ._constants import DEFAULT_MAX_RETRIES, DEFAULT_SITE_URL, DEFAULT_TIMEOUT
from ._exceptions import redact
from ._terminal import (
    ENV_PROXY,
    ENV_TIMEOUT,
    ENV_URL,
    Scrubber,
    UsageError,
    parse_seconds,
)

__all__ = [
    "SiteOptions",
    "add_site_options",
    "env_value",
    "site_options",
]


@dataclass(frozen=True)
class SiteOptions:
    """Where and how to reach the site, as one run of a command asks."""

    #: The page with the chat; None: the default site (chatgpt4o.one, AI Power).
    url: str | None
    proxy: str | None = field(repr=False)
    #: Seconds for a whole call, retries included; None: no limit.
    timeout: float | None
    retries: int
    cookies: dict[str, str] = field(repr=False)

    @property
    def site_url(self) -> str:
        """The page to load: the one asked for, or the default site's."""
        return self.url or DEFAULT_SITE_URL


def _seconds(text: str) -> float:
    try:
        return parse_seconds(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def _cookie(text: str) -> tuple[str, str]:
    # The message must not repeat the argument: it may be a secret.
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise argparse.ArgumentTypeError("expected NAME=VALUE")
    return name, value


def add_site_options(parser: argparse.ArgumentParser) -> None:
    """Add --url, --proxy, --timeout, --retries and --cookie to `parser`."""
    parser.add_argument(
        "--url", metavar="URL",
        help="a page with the chatbot of a site: AI Power (any version) or AI Engine, "
        f"found on the page (env {ENV_URL}; default {DEFAULT_SITE_URL})",
    )
    parser.add_argument(
        "--proxy", metavar="URL",
        help=f"proxy URL: http, https, socks4, socks4a, socks5 or socks5h, with "
        f"user:password@ if needed (env {ENV_PROXY})",
    )
    parser.add_argument(
        "--timeout", type=_seconds, metavar="SECONDS",
        help=f"limit for the whole call, retries included; 0: none "
        f"(env {ENV_TIMEOUT}; default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--retries", type=_count, metavar="N",
        help=f"retries after network errors, HTTP 408, 409, 429 and 5xx "
        f"(default {DEFAULT_MAX_RETRIES})",
    )
    parser.add_argument(
        "--cookie", type=_cookie, action="append", default=[], metavar="NAME=VALUE",
        help="a cookie for the site, e.g. cf_clearance=...; repeatable",
    )


def env_value(environ: Mapping[str, str], name: str) -> str | None:
    """The environment variable `name`, stripped; None when unset or blank."""
    value = environ.get(name, "").strip()
    return value or None


def site_options(
    args: argparse.Namespace,
    environ: Mapping[str, str],
    scrub: Scrubber,
    *,
    local: bool = False,
) -> SiteOptions:
    """The site options of `args` (added by `add_site_options`), with the environment's
    defaults; a UsageError for what cannot work. With `local` (the bundled emulator)
    the environment's URL and proxy do not apply, and --url is refused."""
    cookies = dict(args.cookie)
    for value in cookies.values():
        scrub.add(value)

    proxy: str | None = args.proxy
    if proxy is None and not local:
        proxy = env_value(environ, ENV_PROXY)
    if proxy:
        with contextlib.suppress(ValueError):  # check_proxy says what is wrong with it
            scrub.add(urlsplit(proxy).password)
    try:
        proxy = check_proxy(proxy)
    except (TypeError, ValueError) as err:
        raise UsageError(f"--proxy: {err}") from None

    timeout: float | None = args.timeout
    if timeout is None:
        text = env_value(environ, ENV_TIMEOUT)
        timeout = DEFAULT_TIMEOUT
        if text is not None:
            try:
                timeout = parse_seconds(text)
            except ValueError as err:
                raise UsageError(f"{ENV_TIMEOUT}: {err}") from None

    url: str | None = args.url
    if local:
        if url is not None:
            raise UsageError("--local and --url cannot be used together")
    else:
        if url is None:
            url = env_value(environ, ENV_URL)
        if url is not None:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise UsageError(f"--url must be an http:// or https:// URL, got {redact(url)!r}")

    return SiteOptions(
        url=url,
        proxy=proxy,
        timeout=timeout or None,
        retries=DEFAULT_MAX_RETRIES if args.retries is None else args.retries,
        cookies=cookies,
    )
