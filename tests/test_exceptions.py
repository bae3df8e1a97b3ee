"""The error tree: its shape, its names in tracebacks, and what each error carries."""

from __future__ import annotations

import traceback
import typing

import pytest

import chatgpt4o
from chatgpt4o import (
    HTTPStatusError,
    NonceError,
    ProviderError,
    RateLimitError,
    ServiceError,
)
from chatgpt4o._exceptions import ServiceErrorKind

PUBLIC_ERRORS = [
    value
    for name in chatgpt4o.__all__
    if isinstance(value := getattr(chatgpt4o, name), type) and issubclass(value, BaseException)
]


def test_every_public_error_derives_from_the_root() -> None:
    assert PUBLIC_ERRORS
    for error in PUBLIC_ERRORS:
        assert issubclass(error, ProviderError), error


@pytest.mark.parametrize("error", PUBLIC_ERRORS, ids=lambda error: error.__name__)
def test_public_errors_show_under_the_package_name(error: type[BaseException]) -> None:
    assert error.__module__ == "chatgpt4o"
    assert getattr(chatgpt4o, error.__name__) is error


def test_a_traceback_names_the_public_path() -> None:
    try:
        raise RateLimitError("slow down", retry_after=3)
    except RateLimitError as err:
        shown = "".join(traceback.format_exception(err))
    assert "chatgpt4o.RateLimitError: slow down" in shown


def test_rate_limit_is_an_http_status_error_for_429() -> None:
    error = RateLimitError("The site is rate limiting requests", retry_after=5.0)
    assert isinstance(error, HTTPStatusError)
    assert error.status_code == 429
    assert error.retry_after == 5.0
    with pytest.raises(HTTPStatusError):  # `except HTTPStatusError` catches a 429
        raise error


def test_service_error_kinds_are_a_closed_set() -> None:
    kinds = set(typing.get_args(ServiceErrorKind))
    assert {"token_limit", "upstream", "nonce", "limited", "ip_banned"} <= kinds
    assert ServiceError("x").kind == "upstream"
    assert NonceError("x", kind="nonce").kind == "nonce"


def test_stale_nonce_signal_is_not_public() -> None:
    assert not any("Stale" in name for name in chatgpt4o.__all__)
