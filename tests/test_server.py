"""The OpenAI-compatible server (`chatgpt4o.server`) under uvicorn, in front of the
emulator, as the official `openai` SDK and raw HTTP clients see it.

Each server runs in a thread with its own event loop (`ServerThread`), on 127.0.0.1 and
a free port; the emulator runs in another (`EmulatorThread`). Most tests share one pair
(`served`: faults, counters and settings reset between tests); tests that need their own
configuration or a cold cache start their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest
import uvicorn
from starlette.applications import Starlette

from chatgpt4o import Chatgpt4o
from chatgpt4o._constants import DEFAULT_MODEL
from chatgpt4o._session import aclose_shared_sessions
from chatgpt4o.server import create_app
from chatgpt4o.server._openai import completion_body, usage
from chatgpt4o.server._uvicorn import HTTP_PROTOCOL, _HeadWithBody
from chatgpt4o.testing import EmulatorThread, Fault, SiteEmulator
from chatgpt4o.testing._emulator import default_reply

from .conftest import expected_reply

HELLO = [{"role": "user", "content": "Привет!"}]


class ServerThread:
    """`app` under uvicorn on 127.0.0.1 (a free port), in a thread with its own loop,
    with the HTTP protocol of `chatgpt4o serve`."""

    def __init__(self, app: Starlette) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.server = uvicorn.Server(
            uvicorn.Config(
                app, http=HTTP_PROTOCOL, log_config=None, access_log=False, lifespan="on",
                timeout_graceful_shutdown=2,
            )
        )
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The base URL for OpenAI clients."""
        return self.origin + "/v1"

    def __enter__(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert self._thread.is_alive(), "the server did not start"
            assert time.monotonic() < deadline, "the server did not start in time"
            time.sleep(0.005)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self._thread.join(10)
        self._sock.close()


@dataclass
class Served:
    """A server in front of an emulator."""

    server: ServerThread
    emulator: SiteEmulator

    @property
    def url(self) -> str:
        return self.server.url

    def client(self, api_key: str = "sk-unused") -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url, api_key=api_key, max_retries=0, timeout=20)

    def async_client(self, api_key: str = "sk-unused") -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.url, api_key=api_key, max_retries=0, timeout=20)

    def post(self, body: bytes | Any, **headers: str) -> httpx.Response:
        """A raw POST to /v1/chat/completions (bytes as they are, else as JSON)."""
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers.setdefault("content-type", "application/json")
        return httpx.post(self.url + "/chat/completions", content=content, headers=headers)


@contextlib.contextmanager
def serve(emulator: SiteEmulator, **settings: Any) -> Iterator[Served]:
    """A server of its own for `emulator`, with `settings` for `create_app`."""
    settings.setdefault("environ", {})
    settings.setdefault("retries", 0)
    with ServerThread(create_app(emulator.url, **settings)) as server:
        yield Served(server, emulator)


@pytest.fixture(scope="module")
def shared() -> Iterator[Served]:
    with EmulatorThread(stream=True) as emulator, serve(emulator, timeout=10) as served:
        yield served


@pytest.fixture
def served(shared: Served) -> Iterator[Served]:
    """The module's server and emulator, as new: no faults, counters at zero, the
    emulator's default settings (streaming)."""
    emulator = shared.emulator
    emulator.clear_faults()
    emulator.reset_counters()
    yield shared
    emulator.clear_faults()
    emulator.stream = True
    emulator.stream_chunks = None
    emulator.chunk_delay = 0.0
    emulator.reply = default_reply


@pytest.fixture
def fresh() -> Iterator[Served]:
    """A server and a streaming emulator of this test's own (a cold cache)."""
    with EmulatorThread(stream=True) as emulator, serve(emulator) as served:
        yield served


def tokens(text: str) -> int:
    return -(-len(text) // 4)


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


# -- models ------------------------------------------------------------------------------


def test_models_lists_the_providers_models_and_aliases(served: Served) -> None:
    with served.client() as client:
        models = client.models.list()
        assert [model.id for model in models] == [DEFAULT_MODEL, "gpt-4o-mini"]
        assert {model.object for model in models} == {"model"}
        assert client.models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"
        with pytest.raises(openai.NotFoundError):
            client.models.retrieve("gpt-5")
    assert served.emulator.requests == []  # answered without the site


def test_health_answers_without_the_site(served: Served) -> None:
    response = httpx.get(served.server.origin + "/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert served.emulator.requests == []


# -- completions -------------------------------------------------------------------------


def test_a_plain_completion_has_openais_shape(served: Served) -> None:
    served.emulator.stream = False
    reply = expected_reply(served.emulator)
    with served.client() as client:
        completion = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == DEFAULT_MODEL  # the alias resolved
    (choice,) = completion.choices
    assert choice.index == 0
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content == reply
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == tokens("Привет!")
    assert completion.usage.completion_tokens == tokens(reply)
    assert completion.usage.total_tokens == tokens("Привет!") + tokens(reply)


@pytest.mark.parametrize(
    "reply",
    ["plain text", 'Привет "quoted" \\ \n\t\u2028 \U0001f600', "a lone \ud83d surrogate", ""],
)
def test_a_completion_body_is_the_json_of_the_completion(reply: str) -> None:
    # The body is assembled from fixed parts; it must be what json.dumps would write.
    model = 'gpt "4o"\n'
    body = completion_body("chatcmpl-0a1b", 1796000000, model, reply, 7)
    expected = {
        "id": "chatcmpl-0a1b",
        "object": "chat.completion",
        "created": 1796000000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": usage(7, len(reply)),
        "system_fingerprint": None,
    }
    written = json.dumps(expected, ensure_ascii=False, separators=(",", ":"))
    assert body == written.encode("utf-8", "replace")
    assert json.loads(body)["choices"][0]["message"]["content"] == reply.replace("\ud83d", "?")


async def test_a_plain_completion_of_a_streaming_site_with_the_async_client(
    served: Served,
) -> None:
    async with served.async_client() as client:
        completion = await client.chat.completions.create(model="", messages=HELLO)
    assert completion.model == DEFAULT_MODEL  # "" is the default model
    assert completion.choices[0].message.content == expected_reply(served.emulator)


def test_a_stream_sends_the_pieces_as_the_site_streams_them(served: Served) -> None:
    served.emulator.stream_chunks = 6
    reply = expected_reply(served.emulator)
    with served.client() as client:
        chunks = list(
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=HELLO,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    first, *middle, last, usage = chunks
    assert first.choices[0].delta.role == "assistant"
    assert not first.choices[0].delta.content
    pieces = [chunk.choices[0].delta.content for chunk in middle]
    assert len(pieces) == 6
    assert "".join(piece or "" for piece in pieces) == reply
    assert [chunk.choices[0].finish_reason for chunk in middle] == [None] * 6
    assert last.choices[0].finish_reason == "stop"
    assert usage.choices == []
    assert usage.usage is not None
    assert usage.usage.completion_tokens == tokens(reply)
    assert usage.usage.prompt_tokens == tokens("Привет!")
    assert {chunk.id for chunk in chunks} == {first.id}
    assert {chunk.object for chunk in chunks} == {"chat.completion.chunk"}
    assert {chunk.model for chunk in chunks} == {DEFAULT_MODEL}


async def test_a_stream_reaches_the_client_piece_by_piece(served: Served) -> None:
    served.emulator.stream_chunks = 5
    served.emulator.chunk_delay = 0.2
    stamps: list[float] = []
    async with served.async_client() as client:
        started = time.monotonic()
        stream = await client.chat.completions.create(model="", messages=HELLO, stream=True)
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                stamps.append(time.monotonic() - started)
    assert len(stamps) == 5
    assert stamps[-1] - stamps[0] > 0.6  # not the whole reply at once


def test_without_include_usage_a_stream_has_no_usage_chunk(served: Served) -> None:
    with served.client() as client:
        chunks = list(client.chat.completions.create(model="", messages=HELLO, stream=True))
    assert all(chunk.choices for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_the_raw_stream_ends_with_done(served: Served) -> None:
    body = {"model": "", "messages": HELLO, "stream": True}
    with httpx.stream("POST", served.url + "/chat/completions", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]
    assert events[-1] == "data: [DONE]"
    assert all(event.startswith("data: ") for event in events)


def test_a_conversation_goes_through_the_plugins_history(served: Served) -> None:
    messages = [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": "One"},
        {"role": "assistant", "content": "Reply one"},
        {"role": "user", "content": [{"type": "text", "text": "Two "},
                                     {"type": "text", "text": "parts"}]},
    ]
    with served.client() as client:
        completion = client.chat.completions.create(model="", messages=messages)  # type: ignore[arg-type]
    assert "You said: Two parts" in (completion.choices[0].message.content or "")
    *_, user_one, assistant, user_two = served.emulator.model_calls[-1]
    assert user_one == {"role": "user", "content": "Be brief. One"}
    assert assistant == {"role": "assistant", "content": "Reply one"}
    assert user_two == {"role": "user", "content": "Two parts"}


def test_parameters_the_site_cannot_honour_are_ignored_and_logged(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="chatgpt4o.server")
    with served.client() as client:
        completion = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "system", "content": "Answer."}, *HELLO],  # type: ignore[list-item]
            temperature=0.2,
            max_tokens=5,
            top_p=0.9,
            user="someone",
            presence_penalty=0.1,
            seed=3,
            stop=["\n"],
        )
    assert completion.choices[0].message.content == expected_reply(
        served.emulator, "Answer. Привет!"
    )
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ignored")]
    assert line.endswith(
        "max_tokens, presence_penalty, seed, stop, temperature, top_p, user"
    )


# -- request errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        (b"{", None, "not valid JSON"),
        (b"\xff\xfe", None, "not valid JSON"),
        (b"[1, 2]", None, "must be a JSON object"),
        (b'"hi"', None, "must be a JSON object"),
        ({"model": ""}, "messages", "Missing required parameter"),
        ({"messages": "hi"}, "messages", "must be an array"),
        ({"messages": []}, "messages", "empty"),
        ({"messages": ["hi"]}, "messages[0]", "must be an object"),
        ({"messages": [{"content": "hi"}]}, "messages[0].role", "has no role"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role", "unknown"),
        ({"messages": [{"role": "tool", "content": "4", "tool_call_id": "x"}]},
         "messages[0].role", "no tools"),
        ({"messages": [*HELLO, {"role": "assistant", "content": None,
                                "tool_calls": [{"id": "x", "type": "function"}]}]},
         "messages[1].tool_calls", "no tools"),
        ({"messages": [{"role": "user"}]}, "messages[0].content", "no content"),
        ({"messages": [{"role": "user", "content": 42}]}, "messages[0].content", "a number"),
        ({"messages": [{"role": "user", "content": None}]}, "messages[0].content", "null"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
         "messages[0].content", "'image_url'"),
        ({"messages": [{"role": "user", "content": ["hi"]}]}, "messages[0].content", "object"),
        ({"model": 4, "messages": HELLO}, "model", "must be a string"),
        ({"messages": HELLO, "stream": "yes"}, "stream", "must be a boolean"),
        ({"messages": HELLO, "stream_options": 1}, "stream_options", "must be an object"),
    ],
)
def test_a_bad_request_is_a_400_naming_what_is_wrong(
    served: Served, body: bytes | dict[str, Any], param: str | None, words: str
) -> None:
    response = served.post(body)
    assert response.status_code == 400
    error = error_of(response)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert words in error["message"]
    assert served.emulator.requests == []


def test_the_sdk_raises_bad_request_for_a_tool_turn(served: Served) -> None:
    with served.client() as client, pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="", messages=[{"role": "tool", "content": "4", "tool_call_id": "c1"}]
        )
    assert caught.value.status_code == 400
    assert caught.value.param == "messages[0].role"  # type: ignore[attr-defined]


def test_an_unknown_model_is_a_404_before_any_request_to_the_site(served: Served) -> None:
    with served.client() as client, pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-5", messages=HELLO)
    assert caught.value.code == "model_not_found"
    assert "'gpt-5'" in caught.value.message
    assert served.emulator.requests == []


def test_unknown_paths_and_methods_answer_in_openais_shape(served: Served) -> None:
    missing = httpx.get(served.url + "/completions")
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "unknown_url"
    wrong = httpx.get(served.url + "/chat/completions")
    assert wrong.status_code == 405
    assert error_of(wrong)["code"] == "method_not_allowed"


def test_an_unexpected_error_is_a_500_in_openais_shape(
    served: Served, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="chatgpt4o.server")

    def broken(body: bytes) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("chatgpt4o.server._app.parse_chat_request", broken)
    response = served.post({"messages": HELLO})
    assert response.status_code == 500
    assert error_of(response)["code"] == "internal_error"
    assert "a bug" not in response.text
    assert any(r.getMessage() == "unexpected RuntimeError" for r in caplog.records)
    assert any(r.getMessage().startswith("POST /v1/chat/completions ") for r in caplog.records)


async def test_under_a_root_path_the_chat_endpoint_is_reached_too(served: Served) -> None:
    # (Starlette's router, not the application's direct way, takes the root path off.)
    served.emulator.stream = False
    app = create_app(served.emulator.url, environ={}, retries=0)
    transport = httpx.ASGITransport(app, root_path="/api")
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.post(
                "/api/v1/chat/completions", json={"model": "", "messages": HELLO}
            )
    finally:
        await aclose_shared_sessions()
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == expected_reply(served.emulator)


def test_a_body_over_the_limit_is_a_413() -> None:
    with EmulatorThread() as emulator, serve(emulator, max_body_size=1000) as served:
        big = {"model": "", "messages": [{"role": "user", "content": "x" * 2000}]}
        response = served.post(big)
        assert response.status_code == 413
        assert error_of(response)["code"] == "request_too_large"
        # Sent in chunks, with no length announced, it is cut off as well.
        chunked = httpx.post(
            served.url + "/chat/completions",
            content=iter([b'{"messages": [', b" " * 600, b" " * 600, b"]}"]),
        )
        assert chunked.status_code == 413
        with served.client() as client, pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(model="", messages=big["messages"])  # type: ignore[arg-type]
        assert caught.value.status_code == 413
        assert emulator.requests == []


def test_a_huge_body_is_refused_without_being_read(served: Served) -> None:
    # Announce 1 GiB and send 1 KiB: the answer comes at once.
    with socket.create_connection(("127.0.0.1", served.server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n"
            + b" " * 1024
        )
        started = time.monotonic()
        head = sock.recv(65536)
    assert head.startswith(b"HTTP/1.1 413 ")
    assert time.monotonic() - started < 2


# -- the key -----------------------------------------------------------------------------


def test_with_a_key_every_api_call_needs_it() -> None:
    with EmulatorThread() as emulator, serve(emulator, api_key="sk-right-key") as served:
        for key in ("sk-wrong-key", "sk-right-ke", "sk-right-key-and-more"):
            with served.client(key) as client:
                with pytest.raises(openai.AuthenticationError) as caught:
                    client.chat.completions.create(model="", messages=HELLO)
                assert caught.value.code == "invalid_api_key"
                with pytest.raises(openai.AuthenticationError):
                    client.models.list()
        missing = httpx.get(served.url + "/models")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        assert "sk-right-key" not in missing.text
        assert emulator.requests == []
        with served.client("sk-right-key") as client:
            assert client.chat.completions.create(model="", messages=HELLO).choices
            assert next(model.id for model in client.models.list()) == DEFAULT_MODEL
        assert httpx.get(served.server.origin + "/health").status_code == 200


def test_the_key_comes_from_the_environment_when_not_given() -> None:
    with EmulatorThread() as emulator, serve(
        emulator, environ={"CHATGPT4O_API_KEY": "sk-env"}
    ) as served:
        assert httpx.get(served.url + "/models").status_code == 401
        with served.client("sk-env") as client:
            assert client.models.list().data
    with EmulatorThread() as emulator, serve(
        emulator, api_key="", environ={"CHATGPT4O_API_KEY": "sk-env"}
    ) as served:
        assert httpx.get(served.url + "/models").status_code == 200  # "" turns it off


# -- upstream errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status", "code", "sdk_error"),
    [
        (Fault.rate_limited(), 429, "rate_limit_exceeded", openai.RateLimitError),
        (Fault.token_limit(), 429, "usage_limit_reached", openai.RateLimitError),
        (Fault.cloudflare(), 502, "upstream_cloudflare", openai.InternalServerError),
        (Fault.server_error(500), 502, "upstream_http_error", openai.InternalServerError),
        (Fault.upstream_error("The model is overloaded"), 502, "upstream_plugin_error",
         openai.InternalServerError),
        (Fault.html_instead_of_json(), 502, "upstream_bad_answer", openai.InternalServerError),
        (Fault.plugin_gone(), 502, "upstream_plugin_unavailable", openai.InternalServerError),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_errors_get_their_status(
    served: Served,
    fault: Fault,
    status: int,
    code: str,
    sdk_error: type[openai.APIStatusError],
    stream: bool,
) -> None:
    served.emulator.stream = False  # the plugin's errors as JSON (a stream is below)
    served.emulator.fail_next(fault)
    with served.client() as client, pytest.raises(sdk_error) as caught:
        client.chat.completions.create(model="", messages=HELLO, stream=stream)
    assert caught.value.status_code == status
    assert caught.value.code == code
    assert caught.value.message  # the library's message


def test_a_429_passes_the_sites_retry_after_on(served: Served) -> None:
    served.emulator.fail_next(Fault.rate_limited(retry_after="7"))
    response = served.post({"messages": HELLO})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    served.emulator.fail_next(Fault.token_limit())
    served.emulator.stream = False
    limited = served.post({"messages": HELLO})
    assert limited.status_code == 429
    assert limited.headers["x-should-retry"] == "false"  # a usage limit lasts


def test_a_passed_deadline_is_a_504() -> None:
    with EmulatorThread() as emulator, serve(emulator, timeout=0.5) as served:
        emulator.fail_next(Fault.stall(3))
        started = time.monotonic()
        with served.client() as client, pytest.raises(openai.InternalServerError) as caught:
            client.chat.completions.create(model="", messages=HELLO)
        assert caught.value.status_code == 504
        assert caught.value.code == "upstream_timeout"
        assert time.monotonic() - started < 2.5


def test_a_site_that_does_not_answer_is_a_502() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    app = create_app(f"http://127.0.0.1:{port}/", retries=0, environ={})
    with ServerThread(app) as server, openai.OpenAI(
        base_url=server.url, api_key="sk-unused", max_retries=0
    ) as client:
        with pytest.raises(openai.InternalServerError) as caught:
            client.chat.completions.create(model="", messages=HELLO)
        assert caught.value.status_code == 502
        assert caught.value.code == "upstream_unreachable"
        # Not found once is not kept: the next request tries the page again.
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="", messages=HELLO)


def test_a_nonce_rejected_twice_is_a_502_and_once_is_recovered(served: Served) -> None:
    with served.client() as client:
        client.chat.completions.create(model="", messages=HELLO)  # the page is cached
        loads = served.emulator.page_loads
        served.emulator.rotate_nonce()  # the cached nonce goes stale
        completion = client.chat.completions.create(model="", messages=HELLO)
        assert completion.choices[0].message.content == expected_reply(served.emulator)
        assert served.emulator.page_loads == loads + 1
        served.emulator.fail_next(Fault.stale_nonce(), times=2)
        with pytest.raises(openai.InternalServerError) as caught:
            client.chat.completions.create(model="", messages=HELLO)
    assert caught.value.status_code == 502
    assert caught.value.code == "upstream_nonce_rejected"


def test_an_error_after_the_first_chunk_ends_the_stream_without_done(served: Served) -> None:
    served.emulator.stream_chunks = 4
    served.emulator.chunk_delay = 0.02  # the pieces and the error in chunks of their own
    served.emulator.fail_next(Fault.stream_error_object("Provider returned error", 2))
    body = {"model": "", "messages": HELLO, "stream": True}
    with httpx.stream("POST", served.url + "/chat/completions", json=body) as response:
        assert response.status_code == 200
        events = [line[6:] for line in response.iter_lines() if line]
    assert "[DONE]" not in events
    last = json.loads(events[-1])
    assert last["error"]["type"] == "server_error"
    assert "Provider returned error" in last["error"]["message"]
    # The role, the pieces read before the error (the library drops those that came in
    # the same read as the error), then the error.
    assert json.loads(events[1])["choices"][0]["delta"]["content"]

    served.emulator.fail_next(Fault.stream_limited(after_chunks=2))
    pieces: list[str] = []

    def read(client: openai.OpenAI) -> None:
        for chunk in client.chat.completions.create(model="", messages=HELLO, stream=True):
            pieces.append(chunk.choices[0].delta.content or "")

    with served.client() as client, pytest.raises(openai.APIError):
        read(client)
    assert "".join(pieces)


def test_secrets_of_the_configuration_never_reach_a_client(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    cookie = "cookie-value-4711"
    with EmulatorThread() as emulator, serve(
        emulator, cookies={"cf_clearance": cookie}, api_key="sk-secret-key"
    ) as served:
        # A site error page that quotes the cookie back.
        emulator.fail_next(Fault.status(500, f"<p>bad clearance {cookie}</p>", target="post"))
        response = served.post({"messages": HELLO}, authorization="Bearer sk-secret-key")
    assert response.status_code == 502
    assert cookie not in response.text
    assert "bad clearance" in response.text
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert cookie not in logged
    assert "sk-secret-key" not in logged


def access_lines(caplog: pytest.LogCaptureFixture, count: int) -> list[str]:
    """The access lines, once there are `count` (a line is written after its answer
    is sent, so the client may have it first)."""
    deadline = time.monotonic() + 3
    while True:
        lines = [r.getMessage() for r in caplog.records if r.name == "chatgpt4o.server._access"]
        if len(lines) >= count or time.monotonic() > deadline:
            assert len(lines) == count, lines
            return lines
        time.sleep(0.01)


# -- the access log ----------------------------------------------------------------------


def test_one_access_line_per_request(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="chatgpt4o.server")
    with served.client() as client:
        client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
        client.models.list()
    served.post(b"{")
    lines = access_lines(caplog, 3)
    assert lines[0].startswith("POST /v1/chat/completions 200 ")
    assert lines[0].endswith(f" model={DEFAULT_MODEL}")
    assert " ms" in lines[0]
    assert lines[1].startswith("GET /v1/models 200 ")
    assert lines[2].startswith("POST /v1/chat/completions 400 ")
    assert all(record.levelno == logging.INFO for record in caplog.records
               if record.name == "chatgpt4o.server._access")


def test_what_a_client_chose_cannot_start_a_log_line(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="chatgpt4o.server")
    served.post({"model": "gpt\nPOST /v1/chat/completions 200 1.0 ms", "messages": HELLO})
    httpx.get(served.url + "/x%0Ay")
    lines = access_lines(caplog, 2)
    assert all("\n" not in line for line in lines)
    assert lines[0].endswith(" model=gpt\\nPOST /v1/chat/completions 200 1.0 ms")
    assert lines[1].startswith("GET /v1/x\\ny 404 ")


# -- under load --------------------------------------------------------------------------


async def test_concurrent_requests_on_a_cold_cache_load_the_page_once(fresh: Served) -> None:
    async with fresh.async_client() as client:
        completions = await asyncio.gather(
            *(client.chat.completions.create(model="", messages=HELLO) for _ in range(40))
        )
    reply = expected_reply(fresh.emulator)
    assert [c.choices[0].message.content for c in completions] == [reply] * 40
    assert fresh.emulator.page_loads == 1
    assert fresh.emulator.posts == 40


async def test_concurrent_streams_all_complete(served: Served) -> None:
    reply = expected_reply(served.emulator)

    async def one(client: openai.AsyncOpenAI) -> str:
        stream = await client.chat.completions.create(model="", messages=HELLO, stream=True)
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    async with served.async_client() as client:
        replies = await asyncio.gather(*(one(client) for _ in range(30)))
    assert replies == [reply] * 30


def test_a_client_that_leaves_mid_stream_cancels_the_upstream_transfer(
    served: Served, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="chatgpt4o.server")
    emulator = served.emulator
    emulator.stream_chunks = 200
    emulator.chunk_delay = 0.05  # 10 s for the whole reply
    ended = threading.Event()
    sending = emulator._send

    async def watched(*args: Any, **kwargs: Any) -> Any:
        try:
            return await sending(*args, **kwargs)
        finally:
            ended.set()  # the emulator stopped sending: the connection is gone

    monkeypatch.setattr(emulator, "_send", watched)
    body = {"model": "", "messages": HELLO, "stream": True}
    with httpx.stream("POST", served.url + "/chat/completions", json=body) as response:
        lines = response.iter_lines()
        while "content" not in next(lines):
            pass
        left = time.monotonic()
    assert ended.wait(3), "the site went on sending"
    assert time.monotonic() - left < 1.5
    deadline = time.monotonic() + 3
    while not any("client-gone" in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, "no access line for the request"
        time.sleep(0.01)


def test_a_client_that_leaves_during_a_plain_call_cancels_it(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="chatgpt4o.server")
    served.emulator.stream = False
    served.emulator.fail_next(Fault.stall(5))
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(served.url + "/chat/completions", json={"messages": HELLO}, timeout=0.3)
    deadline = time.monotonic() + 2
    while not any("client-gone" in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, "the call went on"
        time.sleep(0.01)


# -- the HTTP protocol -------------------------------------------------------------------


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Any] = []

    def write(self, data: Any) -> None:
        self.calls.append(bytes(data))

    def close(self) -> None:
        self.calls.append("close")

    def abort(self) -> None:
        self.calls.append("abort")

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else default


async def test_a_head_goes_out_with_the_body_that_follows_it() -> None:
    transport = _Transport()
    connection = _HeadWithBody(transport, asyncio.get_running_loop())
    connection.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    assert transport.calls == []
    connection.write(b"{}")
    assert transport.calls == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    connection.write(b"more")  # not a head: at once
    await asyncio.sleep(0)
    assert transport.calls[1:] == [b"more"]
    assert connection.get_extra_info("peername") == ("127.0.0.1", 1)


async def test_a_head_alone_goes_out_at_the_loops_next_turn_or_on_close() -> None:
    transport = _Transport()
    connection = _HeadWithBody(transport, asyncio.get_running_loop())
    connection.write(b"HTTP/1.1 204 No Content\r\n\r\n")
    await asyncio.sleep(0)
    assert transport.calls == [b"HTTP/1.1 204 No Content\r\n\r\n"]
    connection.write(b"HTTP/1.1 200 OK\r\n\r\n")
    connection.close()
    await asyncio.sleep(0)
    assert transport.calls[1:] == [b"HTTP/1.1 200 OK\r\n\r\n", "close"]
    connection.write(b"HTTP/1.1 200 OK\r\n\r\n")
    connection.abort()
    await asyncio.sleep(0)
    assert transport.calls[3:] == ["abort"]


def test_a_head_request_is_answered(served: Served) -> None:
    response = httpx.head(served.server.origin + "/health")
    assert response.status_code == 200
    assert response.content == b""


# -- the factory -------------------------------------------------------------------------


def test_the_factory_reads_the_environment(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHATGPT4O_URL", served.emulator.url)
    monkeypatch.setenv("CHATGPT4O_API_KEY", "sk-from-env")
    monkeypatch.setenv("CHATGPT4O_TIMEOUT", "9")
    with ServerThread(create_app()) as server, openai.OpenAI(
        base_url=server.url, api_key="sk-from-env", max_retries=0
    ) as client:
        completion = client.chat.completions.create(model="", messages=HELLO)
        assert completion.choices[0].message.content == expected_reply(served.emulator)
    assert served.emulator.requests[0].path == "/"


def test_a_provider_class_can_be_given(served: Served) -> None:
    provider = Chatgpt4o.for_site(served.emulator.url, max_retries=0)
    provider.reset_cache()
    app = create_app(provider=provider, environ={})
    with ServerThread(app) as server, openai.OpenAI(
        base_url=server.url, api_key="sk-unused", max_retries=0
    ) as client:
        assert client.chat.completions.create(model="", messages=HELLO).choices
    assert provider._nonce is not None  # its cache was used


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"url": "ftp://example.org"}, "--url"),
        ({"proxy": "gopher://proxy"}, "--proxy"),
        ({"timeout": -1}, "timeout"),
        ({"retries": -1}, "retries"),
        ({"max_body_size": 0}, "max_body_size"),
        ({"bot_id": " "}, "bot_id"),
        ({"environ": {"CHATGPT4O_TIMEOUT": "soon"}}, "CHATGPT4O_TIMEOUT"),
    ],
)
def test_bad_settings_are_a_value_error_at_once(settings: dict[str, Any], words: str) -> None:
    settings.setdefault("environ", {})
    with pytest.raises(ValueError, match=words):
        create_app(**settings)


def test_the_app_imports_without_the_http_stack() -> None:
    code = (
        "import sys\n"
        "from chatgpt4o.server import create_app\n"
        "create_app('http://127.0.0.1:9/', environ={})\n"
        "print(sorted(m for m in ('curl_cffi', 'httpx', 'aiohttp') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
