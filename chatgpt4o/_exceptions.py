"""The errors `chatgpt4o` raises on purpose.

Every one of them derives from `ProviderError`, itself a `RuntimeError` (the original
provider promised `RuntimeError`, and code written for it keeps working):

* ProviderError (RuntimeError)
  * ModelNotSupportedError (also ValueError) - unknown model; raised before any I/O.
  * ProviderConnectionError (also ConnectionError) - connect, DNS, TLS, proxy, reset.
    * HostNotFoundError - the site's host name does not exist in DNS (not retried).
    * ProviderTimeoutError (also TimeoutError) - the call's deadline passed.
  * HTTPStatusError - a non-2xx answer; carries `status_code` and a trimmed `body`.
    * CloudflareError - a Cloudflare challenge (403 or 503) stood in the way.
    * PluginUnavailableError - HTTP 400 `0`: the site's plugin has no chat action
      (AI Power 2.3 and newer, or the plugin is gone).
    * RateLimitError - HTTP 429; `retry_after` is the server's Retry-After.
  * ServiceError - the plugin refused or failed; `kind` says how (`token_limit` for
    the plugin's usage limit), `server_message` what it said.
    * NonceError - the nonce was rejected again right after a fresh scrape.
  * ResponseError - a 2xx answer that is not what the protocol promises.
    * ScrapeError - the page has no post ID or no chat nonce.

Bad `messages` raise plain `TypeError` or `ValueError`, like any Python API given
arguments of the wrong type or value.

Messages never contain the nonce, cookies or a proxy password: bodies are trimmed and
every text passes through `redact` before it is shown.
"""

from __future__ import annotations

import re
from typing import Literal

from ._constants import BODY_PREVIEW_CHARS

__all__ = [
    "CloudflareError",
    "HTTPStatusError",
    "HostNotFoundError",
    "ModelNotSupportedError",
    "NonceError",
    "PluginUnavailableError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeoutError",
    "RateLimitError",
    "ResponseError",
    "ScrapeError",
    "ServiceError",
    "ServiceErrorKind",
    "StaleCredentials",
    "redact",
    "trim",
]


# userinfo in URLs (proxy passwords); nonce, cookie and password fields as a form,
# a query string or JSON writes them (key=value, "key":"value"); cookie headers.
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:@/\s]*):[^/\s]*@", re.I)
_SECRET_FIELD = re.compile(
    r"(?P<key>_wpnonce|nonce|search_nonce|cookie|cf_clearance|password)"
    r"(?P<sep>\s*=\s*[\"']?|[\"']\s*:\s*[\"']?)(?P<value>[^\s\"'&;,}>]+)",
    re.I,
)
# A WordPress nonce anywhere (10 lowercase hex digits standing alone, not all of them
# decimal digits), e.g. in a quoted page.
_NONCE_LIKE = re.compile(
    r"(?<![0-9A-Za-z])(?=[0-9a-f]{0,9}[a-f])[0-9a-f]{10}(?![0-9A-Za-z])"
)
_COOKIE_HEADER = re.compile(r"(?P<key>(?:set-)?cookie:\s*)[^\s=;]+=[^\r\n]*", re.I)


def redact(text: str) -> str:
    """Hide proxy passwords, nonces and cookie values in `text`."""
    text = _URL_PASSWORD.sub(r"\g<scheme>\g<user>:***@", text)
    text = _COOKIE_HEADER.sub(r"\g<key>***", text)
    text = _SECRET_FIELD.sub(r"\g<key>\g<sep>***", text)
    return _NONCE_LIKE.sub("***", text)


def trim(text: str, limit: int = BODY_PREVIEW_CHARS) -> str:
    """One line of at most `limit` characters, secrets redacted, for an error message."""
    flat = " ".join(text.split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return redact(flat)


class ProviderError(RuntimeError):
    """Root of every error this library raises on purpose."""


class ModelNotSupportedError(ProviderError, ValueError):
    """The model is not one the provider serves."""

    def __init__(self, model: str, provider: str, supported: list[str]) -> None:
        self.model = model
        self.supported = list(supported)
        super().__init__(
            f"Model is not supported: {model!r} in: {provider}. "
            f"Supported models: {', '.join(supported)}"
        )


class ProviderConnectionError(ProviderError, ConnectionError):
    """The request did not get an answer: connection, DNS, TLS or proxy failure.

    `retryable` says whether trying again may help: True for these failures, which are
    often passing (a reset, a temporary resolver failure), False for the subclasses below.
    """

    #: Whether a call retries after this failure (docs/protocol.md §5.5).
    retryable: bool = True


class HostNotFoundError(ProviderConnectionError):
    """The site's host name does not exist: DNS answered that there is no such name.

    Not retried, since the name will not exist half a second later either. A resolver
    that could not answer (a timeout, a server failure) is a plain, retried
    `ProviderConnectionError`.
    """

    retryable = False


class ProviderTimeoutError(ProviderConnectionError, TimeoutError):
    """The call's deadline passed before the answer was complete."""

    retryable = False  # nothing is left of the call to retry in


class HTTPStatusError(ProviderError):
    """The server answered with a status that is not 2xx; `retry_after` is its
    Retry-After header in seconds, if it sent one."""

    def __init__(
        self, message: str, *, status_code: int, body: str = "", retry_after: float | None = None
    ) -> None:
        self.status_code = status_code
        self.retry_after = retry_after
        self.body = trim(body)
        detail = f" (HTTP {status_code})" if str(status_code) not in message else ""
        shown = f": {self.body}" if self.body else ""
        super().__init__(f"{message}{detail}{shown}")


class CloudflareError(HTTPStatusError):
    """A Cloudflare challenge page answered instead of the site."""


class PluginUnavailableError(HTTPStatusError):
    """admin-ajax.php has no handler for the chat action on this site."""


class RateLimitError(HTTPStatusError):
    """HTTP 429: the site (or a proxy in front of it) is rate limiting requests.

    `retryable` is False for a usage limit that lasts a period (the call is not retried).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int = 429,
        body: str = "",
        retry_after: float | None = None,
        retryable: bool = True,
    ) -> None:
        self.retryable = retryable
        super().__init__(message, status_code=status_code, body=body, retry_after=retry_after)


#: How a `ServiceError` came about:
#: - "token_limit": the plugin's usage limit for this visitor (or for guests) is used up;
#: - "ip_banned", "banned_words", "empty_message": the plugin refused the message;
#: - "limited": the upstream model stopped a streamed reply;
#: - "nonce": the chat nonce was rejected (see `NonceError`);
#: - "upstream": the model behind the plugin failed, or anything else the plugin said.
ServiceErrorKind = Literal[
    "token_limit", "ip_banned", "banned_words", "empty_message", "limited", "nonce", "upstream"
]


class ServiceError(ProviderError):
    """The plugin answered with an error of its own instead of a reply.

    `kind` tells the cases apart (see `ServiceErrorKind`); `server_message` is what the
    plugin said, trimmed and without secrets.
    """

    def __init__(
        self,
        server_message: str,
        *,
        prefix: str = "The site answered with an error",
        kind: ServiceErrorKind = "upstream",
    ) -> None:
        self.server_message = trim(server_message, 500)
        self.kind = kind
        super().__init__(f"{prefix}: {self.server_message}")


class NonceError(ServiceError):
    """The chat nonce was rejected even right after a fresh scrape of the page."""


class ResponseError(ProviderError):
    """A 2xx answer that does not have the shape the protocol promises."""

    def __init__(self, message: str, *, body: str | None = None) -> None:
        self.body = trim(body) if body is not None else None
        shown = f" (got: {self.body!r})" if body is not None else ""
        super().__init__(f"{message}{shown}")


class ScrapeError(ResponseError):
    """The page has no chat widget data: no post ID or no nonce."""


class StaleCredentials(ProviderError):
    """The site rejected the credentials read from its page (an expired nonce).

    Not public: the engine forgets them, loads the page again (past page caches) and
    tries once more. If the site rejects the fresh credentials too, the call raises
    `if_again`, or a `NonceError` when that is None. With `only_if_renewed` the answer
    may not have been about credentials at all: the engine tries again only when the
    page gives different credentials, and raises `if_again` otherwise.
    """

    def __init__(
        self,
        server_message: str,
        *,
        if_again: ProviderError | None = None,
        only_if_renewed: bool = False,
        reload_page: bool = False,
    ) -> None:
        if only_if_renewed and if_again is None:
            raise ValueError("only_if_renewed needs the error to raise instead (if_again)")
        self.server_message = server_message
        self.if_again = if_again
        self.only_if_renewed = only_if_renewed
        #: Only a new load of the page can tell (not the protocol's cheaper refresh).
        self.reload_page = reload_page
        super().__init__(server_message)


# Tracebacks and reprs show the public name (`chatgpt4o.NonceError`), where users import it.
for _public in (
    ProviderError, ModelNotSupportedError, ProviderConnectionError, HostNotFoundError,
    ProviderTimeoutError, HTTPStatusError, CloudflareError, PluginUnavailableError,
    RateLimitError, ServiceError, NonceError, ResponseError, ScrapeError,
):
    _public.__module__ = "chatgpt4o"
del _public
