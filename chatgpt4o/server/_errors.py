"""Errors as OpenAI shapes them: `{"error": {"message", "type", "param", "code"}}`.

`APIError` is an error answer of the server (status, body, headers); `error_for` sorts
the library's exceptions into them, by their classes:

| what went wrong | status | type / code |
| --- | --- | --- |
| bad request: JSON, messages, parameters, argument checks | 400 | invalid_request_error |
| no key, or a wrong one | 401 | invalid_request_error / invalid_api_key |
| unknown model (`ModelNotSupportedError`) | 404 | invalid_request_error / model_not_found |
| body over the limit | 413 | invalid_request_error / request_too_large |
| `RateLimitError` (HTTP 429 upstream) | 429 | rate_limit_error / rate_limit_exceeded |
| `ServiceError` of kind `token_limit` | 429 | rate_limit_error / usage_limit_reached |
| `ProviderTimeoutError` (the call's deadline) | 504 | server_error / upstream_timeout |
| any other `ProviderError` | 502 | server_error / upstream_... |
| a bug | 500 | server_error / internal_error |

Every message that comes from the library is scrubbed again with the server's secrets
(cookie values, the proxy password, the API key) on top of the library's own redaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from .._exceptions import (
    CloudflareError,
    HTTPStatusError,
    ModelNotSupportedError,
    NonceError,
    PluginUnavailableError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseError,
    ServiceError,
)

__all__ = ["APIError", "error_for"]

Scrub = Callable[[str], str]


class APIError(Exception):
    """An error answer: HTTP `status` and an OpenAI-shaped body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",  # (OpenAI names the field so)
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def __repr__(self) -> str:
        return f"<APIError {self.status} {self.code or self.type}: {self.message!r}>"

    def payload(self) -> dict[str, object]:
        """The body as a dict: `{"error": {...}}`."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def body(self) -> bytes:
        """The body as JSON bytes."""
        return json.dumps(self.payload(), ensure_ascii=False).encode("utf-8", "replace")


def bad_request(message: str, param: str | None = None, code: str | None = None) -> APIError:
    """A 400 `invalid_request_error`."""
    return APIError(400, message, param=param, code=code)


def _upstream(status: int, message: str, code: str) -> APIError:
    return APIError(status, message, type="server_error", code=code)


def error_for(error: BaseException, scrub: Scrub) -> APIError:
    """The answer for an exception raised by the library during a call."""
    if isinstance(error, APIError):
        return error
    if isinstance(error, ModelNotSupportedError):
        return APIError(
            404,
            f"The model {scrub(error.model)!r} does not exist here; GET /v1/models "
            "lists the models",
            param="model",
            code="model_not_found",
        )
    message = scrub(" ".join(str(error).split())) or type(error).__name__
    # Subclasses before their bases: a timeout is a connection error, a rate limit and
    # a Cloudflare challenge are HTTP status errors, a nonce error is a service error.
    if isinstance(error, ProviderTimeoutError):
        return _upstream(504, message, "upstream_timeout")
    if isinstance(error, RateLimitError):
        headers = {}
        if error.retry_after is not None:
            headers["retry-after"] = str(max(0, round(error.retry_after)))
        if not error.retryable:
            headers["x-should-retry"] = "false"
        return APIError(
            429, message, type="rate_limit_error", code="rate_limit_exceeded", headers=headers
        )
    if isinstance(error, ServiceError) and error.kind == "token_limit":
        # A usage limit lasts a period: retrying at once cannot help.
        return APIError(
            429,
            message,
            type="rate_limit_error",
            code="usage_limit_reached",
            headers={"x-should-retry": "false"},
        )
    if isinstance(error, ProviderConnectionError):
        return _upstream(502, message, "upstream_unreachable")
    if isinstance(error, CloudflareError):
        return _upstream(502, message, "upstream_cloudflare")
    if isinstance(error, PluginUnavailableError):
        return _upstream(502, message, "upstream_plugin_unavailable")
    if isinstance(error, HTTPStatusError):
        return _upstream(502, message, "upstream_http_error")
    if isinstance(error, NonceError):
        return _upstream(502, message, "upstream_nonce_rejected")
    if isinstance(error, ServiceError):
        return _upstream(502, message, "upstream_plugin_error")
    if isinstance(error, ResponseError):
        return _upstream(502, message, "upstream_bad_answer")
    if isinstance(error, ProviderError):
        return _upstream(502, message, "upstream_error")
    if isinstance(error, (TypeError, ValueError)):
        # The library's checks of a call's arguments, before any I/O.
        return bad_request(message)
    return APIError(
        500, "The server failed to answer (see its log)", type="server_error",
        code="internal_error",
    )
