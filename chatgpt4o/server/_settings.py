"""What a server serves and how (`ServerConfig`), resolved from arguments and the
environment the way every `chatgpt4o` command resolves its site options (`_options`).

Free of Starlette and uvicorn, so that the command can check its options (and say what
is missing) before importing them.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .._config import check_bot
from .._options import SiteOptions, env_value, site_options
from .._terminal import Scrubber, UsageError

if TYPE_CHECKING:
    from .._provider import WordPressChat

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "ENV_API_KEY",
    "ServerConfig",
    "server_config",
]

#: The environment variable with the API key clients must send.
ENV_API_KEY = "CHATGPT4O_API_KEY"
#: The largest request body taken (8 MiB).
DEFAULT_MAX_BODY_SIZE = 8 * 1024 * 1024


@dataclass(frozen=True)
class ServerConfig:
    """What the server serves, and how."""

    site: SiteOptions
    #: Clients must send `Authorization: Bearer <api_key>`; None: no key needed.
    api_key: str | None = field(default=None, repr=False)
    #: Which chatbot of the page (its id there); None: the first.
    bot_id: str | None = None
    max_body_size: int = DEFAULT_MAX_BODY_SIZE
    #: A provider class to use as it is, instead of finding one on the site's page.
    provider: type[WordPressChat] | None = None
    #: Hides the configuration's secrets (the key, cookie values, the proxy password).
    scrub: Scrubber = field(default_factory=Scrubber, repr=False, compare=False)


def _check_number(name: str, value: object, *, whole: bool, least: float) -> None:
    kinds = (int,) if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not value >= least:
        what = "a whole number" if whole else "a number"
        raise ValueError(f"{name} must be {what} >= {least:g}, got {value!r}")


def server_config(
    *,
    url: str | None,
    api_key: str | None,
    proxy: str | None,
    timeout: float | None,
    retries: int | None,
    cookies: Mapping[str, str] | None,
    bot_id: str | None,
    max_body_size: int,
    provider: type[WordPressChat] | None,
    environ: Mapping[str, str],
) -> ServerConfig:
    """The configuration `create_app` is given: None takes the environment's value,
    then the default. ValueError for a setting that cannot work."""
    _check_number("max_body_size", max_body_size, whole=True, least=1)
    if retries is not None:
        _check_number("retries", retries, whole=True, least=0)
    if timeout is not None:
        _check_number("timeout (seconds; 0: no limit)", timeout, whole=False, least=0)
    scrub = Scrubber()
    args = argparse.Namespace(
        url=url,
        proxy=proxy,
        timeout=timeout,
        retries=retries,
        cookie=list((cookies or {}).items()),
    )
    try:
        site = site_options(args, environ, scrub)
    except UsageError as err:
        raise ValueError(str(err)) from None
    if api_key is None:
        api_key = env_value(environ, ENV_API_KEY)
    scrub.add(api_key)
    return ServerConfig(
        site=site,
        api_key=api_key or None,
        bot_id=check_bot(bot_id),
        max_body_size=max_body_size,
        provider=provider,
        scrub=scrub,
    )
