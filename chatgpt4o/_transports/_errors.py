"""One wording for transport failures, whichever HTTP library raised them.

Each transport decides what kind of failure an exception is (by `isinstance` on its
library's classes); this module turns it into the library's own error, with curl's
boilerplate cut and every secret (proxy password, nonce, cookie) left out.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import unquote

from .._config import describe_proxy
from .._exceptions import (
    HostNotFoundError,
    ProviderConnectionError,
    ProviderTimeoutError,
    redact,
)

__all__ = [
    "FailureKind",
    "closed_under_request",
    "proxy_refused",
    "transport_error",
    "value_error_detail",
]

#: "timeout": the request's time ran out; "proxy": the proxy failed; "no_such_host": DNS
#: says the host name does not exist (see `_dns.py`); "connect": any other failure to get
#: (or finish reading) an answer, a temporary resolver failure included.
FailureKind = Literal["timeout", "proxy", "no_such_host", "connect"]

# curl ends every message with a pointer to its docs, which says nothing to our users.
_CURL_DOCS_TAIL = " See https://curl.se/"


def _detail(err: BaseException, proxy: str | None) -> str:
    detail = str(err).split(_CURL_DOCS_TAIL, 1)[0].strip()
    if proxy:  # before redact: it would change the very text to look for
        shown = describe_proxy(proxy)
        for spelling in {proxy, unquote(proxy)}:
            detail = detail.replace(spelling, shown)
    return redact(detail) or type(err).__name__


def transport_error(
    kind: FailureKind, err: BaseException, *, url: str, proxy: str | None
) -> ProviderConnectionError:
    """The library's error for a transport failure `err` of `kind`."""
    detail = _detail(err, proxy)
    url = redact(url)
    via = f" via proxy {describe_proxy(proxy)}" if proxy else ""
    if kind == "timeout":
        return ProviderTimeoutError(f"Timed out talking to {url}{via}: {detail}")
    if kind == "proxy" and proxy:
        return ProviderConnectionError(f"The proxy {describe_proxy(proxy)} failed: {detail}")
    if kind == "no_such_host":
        return HostNotFoundError(f"Could not reach {url}{via}: no such host name: {detail}")
    return ProviderConnectionError(f"Could not reach {url}{via}: {detail}")


def proxy_refused(proxy: str) -> ProviderConnectionError:
    """HTTP 407 from the proxy: its credentials were not accepted."""
    return ProviderConnectionError(
        f"The proxy {describe_proxy(proxy)} refused the request (HTTP 407): "
        "check its user name and password"
    )


def closed_under_request(url: str) -> ProviderConnectionError:
    """The transport was closed while the request was under way."""
    return ProviderConnectionError(
        f"The request to {redact(url)} was cut off: its session was closed"
    )


def value_error_detail(err: BaseException) -> str:
    """`err`'s message, fit for a ValueError about the caller's arguments."""
    return _detail(err, None)
