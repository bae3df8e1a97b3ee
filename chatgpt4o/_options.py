"""The options every `chatgpt4o` command takes to reach a site, and their resolution.

`chatgpt4o` (the chat), `check`, `models` and `serve` all talk to a site; they add the
same options (`add_site_options`) and resolve them the same way (`site_options`): flags
first, then the environment, then the defaults, checked before any I/O, and every secret
handed to the command's `Scrubber` so that no message can show it.

Cookies come from three places, merged by name: `CHATGPT4O_COOKIE` (a Cookie header's
text), then `--cookie-file` (Netscape cookies.txt, see `_cookiefile`), then `--cookie`;
a later one wins for the same name. The first two keep `cf_clearance` out of shell
history and `ps`.

Like `_terminal`, this module stays free of asyncio and the HTTP stack.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ._config import PROXY_SCHEMES, check_bot, check_proxy
from ._constants import DEFAULT_MAX_RETRIES, DEFAULT_SITE_URL, DEFAULT_TIMEOUT
from ._cookiefile import (
    CookieFileError,
    FileCookie,
    cookies_for,
    parse_cookie_file,
    parse_cookie_header,
)
from ._exceptions import redact
from ._terminal import (
    ENV_COOKIE,
    ENV_PROXY,
    ENV_TIMEOUT,
    ENV_URL,
    LOCAL_INSTALL_HINT,
    Scrubber,
    UsageError,
    parse_seconds,
)

__all__ = [
    "SiteOptions",
    "add_bot_option",
    "add_local_options",
    "add_site_options",
    "bot_option",
    "emulator_argv",
    "env_value",
    "site_options",
    "whole_number",
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
    #: The cookies for `site_url`: environment, file and flags merged.
    cookies: dict[str, str] = field(repr=False)
    #: The cookies of the environment and of --cookie, by name (the file's are matched
    #: to a site by `cookies_for`).
    given_cookies: dict[str, str] = field(repr=False, default_factory=dict)
    flag_cookies: dict[str, str] = field(repr=False, default_factory=dict)
    file_cookies: tuple[FileCookie, ...] = field(repr=False, default=())

    @property
    def call_options(self) -> dict[str, Any]:
        """The keyword arguments of a provider call (and of `discover`) for these
        options: proxy, timeout, cookies, max_retries."""
        return {
            "proxy": self.proxy,
            "timeout": self.timeout,
            "cookies": self.cookies,
            "max_retries": self.retries,
        }

    @property
    def site_url(self) -> str:
        """The page to load: the one asked for, or the default site's."""
        return self.url or DEFAULT_SITE_URL

    def cookies_for(self, url: str) -> dict[str, str]:
        """The cookies a request to `url` carries: the environment's, then the
        file's that match its host, then --cookie's. The caller scrubs the values
        (`site_options` did for `site_url`)."""
        return {
            **self.given_cookies,
            **cookies_for(list(self.file_cookies), url),
            **self.flag_cookies,
        }


def _seconds(text: str) -> float:
    try:
        return parse_seconds(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def whole_number(text: str) -> int:
    """argparse type: a whole number >= 0."""
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
    """Add --url, --proxy, --timeout, --retries, --cookie and --cookie-file to
    `parser`."""
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
        "--retries", type=whole_number, metavar="N",
        help=f"retries after network errors, HTTP 408, 409, 429 and 5xx "
        f"(default {DEFAULT_MAX_RETRIES})",
    )
    parser.add_argument(
        "--cookie", type=_cookie, action="append", default=[], metavar="NAME=VALUE",
        help="a cookie for the site, e.g. cf_clearance=...; repeatable (a value here "
        f"shows in ps and shell history: prefer --cookie-file or env {ENV_COOKIE})",
    )
    parser.add_argument(
        "--cookie-file", action="append", default=[], metavar="FILE",
        help="cookies.txt in Netscape format (as curl and the browsers' cookie export "
        "write it): the cookies whose domain matches the site; repeatable",
    )


_PROXY_SHAPE = "scheme://[user:password@]host:port, e.g. socks5://127.0.0.1:9050"


def _proxy(text: str, source: str) -> str:
    """`text` as a proxy URL, or a UsageError saying what is wrong, in words that
    never show a password (not even one in a value that is not a URL)."""
    scheme, sep, _ = text.partition("://")
    if not sep or not scheme:
        got = "" if "@" in text else f", got {text!r}"
        raise UsageError(f"{source}: expected a proxy URL, {_PROXY_SHAPE}{got}")
    if scheme.lower() not in PROXY_SCHEMES:
        shown = scheme if len(scheme) <= 20 else scheme[:19] + "…"
        raise UsageError(
            f"{source}: a proxy's scheme is one of {', '.join(PROXY_SCHEMES)}, "
            f"got {shown!r}"
        )
    try:
        host = urlsplit(text).hostname
    except ValueError:
        host = None
    if not host:
        raise UsageError(
            f"{source}: the proxy URL {redact(text)!r} has no host; expected {_PROXY_SHAPE}"
        )
    try:
        return check_proxy(text) or text
    except (TypeError, ValueError) as err:
        raise UsageError(f"{source}: {err}") from None


def add_bot_option(parser: argparse.ArgumentParser, *, doing: str = "talk to") -> None:
    """Add --bot: one of several chatbots on the page."""
    parser.add_argument(
        "--bot", metavar="ID",
        help=f"which chatbot of the page to {doing}, by its id there (default: the first)",
    )


def add_local_options(
    parser: argparse.ArgumentParser, *, doing: str = "talk to it", example: bool = True
) -> None:
    """Add --local (the bundled emulator) and --emulator (its options)."""
    parser.add_argument(
        "--local", action="store_true",
        help=f"start the bundled site emulator on a free local port and {doing} "
        f"(needs aiohttp: {LOCAL_INSTALL_HINT})",
    )
    parser.add_argument(
        "--emulator", metavar="OPTIONS", default="",
        help="with --local: options for the emulator, as python -m chatgpt4o.testing takes "
        "them, in one string"
        + (", e.g. --emulator='--plugin-version 1.8.84 --language de'" if example else ""),
    )


def bot_option(args: argparse.Namespace) -> str | None:
    """The --bot of `args`, checked as the providers check a bot id."""
    try:
        return check_bot(args.bot)
    except ValueError:
        raise UsageError(f"--bot must be a chatbot's id on the page, got {args.bot!r}") from None


def emulator_argv(args: argparse.Namespace) -> list[str]:
    """The emulator's options of --emulator, split as a shell would; a UsageError when
    they cannot be, or come without --local."""
    if args.emulator and not args.local:
        raise UsageError("--emulator configures the emulator of --local; add --local")
    try:
        return shlex.split(args.emulator)
    except ValueError as err:
        raise UsageError(f"--emulator: {err}") from None


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
    given: dict[str, str] = {}
    if not local:
        text = env_value(environ, ENV_COOKIE)
        if text is not None:
            try:
                given = parse_cookie_header(text, ENV_COOKIE)
            except CookieFileError as err:
                raise UsageError(str(err)) from None
    file_cookies: list[FileCookie] = []
    for path in getattr(args, "cookie_file", None) or []:
        try:
            file_cookies.extend(parse_cookie_file(path))
        except CookieFileError as err:
            raise UsageError(f"--cookie-file: {err}") from None
    flags = dict(args.cookie)
    for value in (*given.values(), *flags.values()):
        scrub.add(value)

    proxy: str | None = args.proxy
    source = "--proxy"
    if proxy is None and not local:
        proxy = env_value(environ, ENV_PROXY)
        source = ENV_PROXY
    if proxy:
        with contextlib.suppress(ValueError):
            scrub.add(urlsplit(proxy).password)
        proxy = _proxy(proxy, source)
    else:
        proxy = None

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
            try:
                parts.port  # noqa: B018 - reading it checks it
            except ValueError:
                raise UsageError(f"--url has a bad port: {redact(url)!r}") from None

    cookies = {
        **given,
        **cookies_for(file_cookies, url or DEFAULT_SITE_URL),
        **flags,
    }
    for value in cookies.values():
        scrub.add(value)
    return SiteOptions(
        url=url,
        proxy=proxy,
        timeout=timeout or None,
        retries=DEFAULT_MAX_RETRIES if args.retries is None else args.retries,
        cookies=cookies,
        given_cookies=given,
        flag_cookies=flags,
        file_cookies=tuple(file_cookies),
    )
