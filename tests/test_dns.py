"""A host name that does not exist is not retried; a temporary resolver failure still is
(docs/protocol.md §5.5), on both backends.

Nothing here asks a DNS server: the failures are injected (the system resolver through
`socket.getaddrinfo`, which httpx and the curl fallback use; curl's own c-ares lookups
through a stand-in session raising curl_cffi's real `DNSError`s). The two tests that let
the real resolver answer for a `.invalid` name (RFC 2606: never resolves) run only where
the system resolver says "no such name" for it within two seconds.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from curl_cffi.requests import exceptions as curl_exceptions

from chatgpt4o import Chatgpt4o, HostNotFoundError, ProviderConnectionError
from chatgpt4o._retry import retryable
from chatgpt4o._transports import _dns
from chatgpt4o._transports import curl as curl_module
from chatgpt4o._transports import httpx as httpx_module
from chatgpt4o._transports.curl import CurlTransport
from chatgpt4o.testing import SiteEmulator

from .conftest import USER_HELLO, expected_reply

CURL_DOCS = " See https://curl.se/libcurl/c/libcurl-errors.html first for more details."
NAME = "wp.invalid"
URL = f"https://{NAME}/"
real_getaddrinfo = socket.getaddrinfo


def curl_dns_error(reason: str | None, host: str = NAME) -> curl_exceptions.DNSError:
    tail = f" ({reason})" if reason else ""
    message = f"Failed to perform, curl: (6) Could not resolve host: {host}{tail}.{CURL_DOCS}"
    return curl_exceptions.DNSError(message, 6)


def gaierror(code: int) -> socket.gaierror:
    return socket.gaierror(code, "injected")


class FakeResolver:
    """`socket.getaddrinfo` for NAME: each lookup takes the next of `answers` (an error
    code, or None for 127.0.0.1); other names go to the real resolver."""

    def __init__(self, *answers: int | None) -> None:
        self.answers = list(answers)
        self.asked = 0

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name != NAME:
            return real_getaddrinfo(host, port, *args, **kwargs)
        self.asked += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if answer is not None:
            raise gaierror(answer)
        return real_getaddrinfo("127.0.0.1", port, *args, **kwargs)


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FakeResolver]:
    def install(*answers: int | None) -> FakeResolver:
        fake = FakeResolver(*answers)
        monkeypatch.setattr(socket, "getaddrinfo", fake)
        return fake

    return install


# -- the verdicts ------------------------------------------------------------------------


def wrapped(code: int) -> httpx.ConnectError:
    """httpx's ConnectError with the resolver's gaierror behind it, as httpcore raises it."""
    outer = httpx.ConnectError(f"[Errno {code}] injected")
    outer.__cause__ = gaierror(code)
    return outer


def test_a_gaierror_anywhere_in_the_chain_decides() -> None:
    assert _dns.gaierror_says_no_such_name(wrapped(socket.EAI_NONAME)) is True
    assert _dns.gaierror_says_no_such_name(wrapped(socket.EAI_AGAIN)) is False
    assert _dns.gaierror_says_no_such_name(httpx.ConnectError("refused")) is False


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("curl: (6) Could not resolve host: wp.invalid (Domain name not found)", True),
        ("Could not resolve host: wp.invalid (DNS server returned answer with no data)", True),
        ("Could not resolve host: wp.invalid (Misformatted domain name)", True),
        ("Could not resolve host: wp.invalid (Timeout while contacting DNS servers)", False),
        ("Could not resolve host: wp.invalid (DNS server returned general failure)", False),
        ("Could not resolve host: wp.invalid (Could not contact DNS servers)", False),
        ("Could not resolve host: wp.invalid", None),
        ("curl: (6) Could not resolve host: wp.invalid. See https://curl.se/", None),
        ("Reason: 'Could not resolve host: wp.invalid'. This may be", None),  # older ones
    ],
)
def test_curl_messages(message: str, expected: bool | None) -> None:
    assert _dns.curl_resolve_failure(message) == ("wp.invalid", expected)


def test_other_curl_messages_are_no_lookup_failure() -> None:
    assert _dns.curl_resolve_failure("Could not resolve host") is None
    assert _dns.curl_resolve_failure("Recv failure: Connection reset by peer") is None


def test_the_retry_decision_honours_retryable() -> None:
    assert retryable(HostNotFoundError("no such host")) == (False, None)
    assert retryable(ProviderConnectionError("temporary failure")) == (True, None)
    assert HostNotFoundError.retryable is False
    assert ProviderConnectionError.retryable is True


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("Domain name not found", HostNotFoundError),
        ("Timeout while contacting DNS servers", ProviderConnectionError),
        (None, ProviderConnectionError),  # no reason: only `send` asks the system resolver
    ],
)
def test_curl_lookup_failures_map_by_their_reason(
    reason: str | None, expected: type[Exception]
) -> None:
    mapped = curl_module._map_error(curl_dns_error(reason), url=URL, proxy=None)
    assert type(mapped) is expected
    assert "curl.se" not in str(mapped)


@pytest.mark.parametrize(
    ("code", "expected"),
    [(socket.EAI_NONAME, HostNotFoundError), (socket.EAI_AGAIN, ProviderConnectionError)],
)
def test_httpx_lookup_failures_map_by_their_code(code: int, expected: type[Exception]) -> None:
    mapped = httpx_module._map_error(wrapped(code), url=URL, proxy=None)
    assert type(mapped) is expected


# -- curl without a reason: the system resolver is asked, on that path only ---------------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [(socket.EAI_NONAME, HostNotFoundError), (socket.EAI_AGAIN, ProviderConnectionError),
     (None, ProviderConnectionError)],  # it resolves now: the failure was temporary
)
async def test_curl_without_a_reason_asks_the_system_resolver(
    resolver: Callable[..., FakeResolver], answer: int | None, expected: type[Exception]
) -> None:
    fake = resolver(answer)
    mapped = await curl_module._map_send_error(curl_dns_error(None), url=URL, proxy=None)
    assert type(mapped) is expected
    assert fake.asked == 1


async def test_curl_with_a_reason_does_not_ask(resolver: Callable[..., FakeResolver]) -> None:
    fake = resolver(socket.EAI_NONAME)
    for reason in ("Domain name not found", "Timeout while contacting DNS servers"):
        await curl_module._map_send_error(curl_dns_error(reason), url=URL, proxy=None)
    assert fake.asked == 0


async def test_a_slow_system_resolver_is_not_waited_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.3)
        raise gaierror(socket.EAI_NONAME)

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    started = time.monotonic()
    assert await _dns.system_says_no_such_name(NAME, timeout=0.05) is False
    assert time.monotonic() - started < 0.25


# -- whole calls: retried or not ---------------------------------------------------------


class FailingCurlSession:
    """Stands in for a curl_cffi session whose every lookup fails with `error`."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.requests = 0

    async def _fail(self) -> Any:
        raise self.error

    def request(self, *args: Any, **kwargs: Any) -> Any:
        self.requests += 1
        return self._fail()


@pytest.mark.parametrize(
    ("reason", "tries", "expected"),
    [("Domain name not found", 1, HostNotFoundError),
     ("Timeout while contacting DNS servers", 3, ProviderConnectionError)],
)
async def test_curl_calls_retry_only_a_temporary_failure(
    sleeps: list[float], reason: str, tries: int, expected: type[Exception]
) -> None:
    session = FailingCurlSession(curl_dns_error(reason))
    site = Chatgpt4o.for_site(URL, transport=CurlTransport(client=session))  # type: ignore[arg-type]
    site.reset_cache()
    with pytest.raises(expected) as caught:
        await site.create_async("", USER_HELLO, max_retries=2)
    assert type(caught.value) is expected
    assert session.requests == tries
    assert len(sleeps) == tries - 1


async def test_httpx_call_with_a_name_that_does_not_exist_is_not_retried(
    resolver: Callable[..., FakeResolver], sleeps: list[float]
) -> None:
    fake = resolver(socket.EAI_NONAME)
    site = Chatgpt4o.for_site(URL, backend="httpx")
    site.reset_cache()
    with pytest.raises(HostNotFoundError, match="no such host name"):
        await site.create_async("", USER_HELLO, max_retries=2)
    assert fake.asked == 1
    assert sleeps == []


async def test_httpx_call_retries_a_temporary_resolver_failure(
    resolver: Callable[..., FakeResolver], sleeps: list[float], emulator: SiteEmulator
) -> None:
    port = emulator.url.rsplit(":", 1)[1].strip("/")
    fake = resolver(socket.EAI_AGAIN, None)  # then it resolves, to the emulator
    site = Chatgpt4o.for_site(f"http://{NAME}:{port}/", backend="httpx")
    site.reset_cache()
    reply = await site.create_async("", USER_HELLO, max_retries=2)
    assert reply == expected_reply(emulator)
    assert fake.asked >= 2
    assert len(sleeps) == 1
    assert emulator.page_loads == 1


# -- the real resolver, where it answers for .invalid at once ------------------------------


def _resolver_says_no_such_name() -> bool:
    async def ask() -> bool:
        return await _dns.system_says_no_such_name("chatgpt4o-test.invalid", timeout=2.0)

    return asyncio.run(ask())


@pytest.fixture(scope="module")
def real_resolver() -> None:
    if not _resolver_says_no_such_name():
        pytest.skip("the system resolver does not say at once that a .invalid name is unknown")


@pytest.mark.usefixtures("real_resolver")
@pytest.mark.parametrize("backend", ["curl_cffi", "httpx"])
async def test_a_real_invalid_name_fails_at_once(backend: str, sleeps: list[float]) -> None:
    site = Chatgpt4o.for_site("http://chatgpt4o-test.invalid/", backend=backend)
    site.reset_cache()
    with pytest.raises(ProviderConnectionError) as caught:
        await site.create_async("", USER_HELLO, max_retries=2, timeout=10)
    if backend == "curl_cffi" and not isinstance(caught.value, HostNotFoundError):
        pytest.skip(f"curl's own resolver answered otherwise: {caught.value}")
    assert isinstance(caught.value, HostNotFoundError)
    assert sleeps == []
