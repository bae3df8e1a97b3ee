"""The call engine: one retry budget per call, the stream object, site state, `for_site`,
and the protocol seam (a toy plugin with a two-step turn runs on the unchanged engine)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import ClassVar

import pytest

from chatgpt4o import (
    Chatgpt4o,
    HTTPStatusError,
    NonceError,
    ProviderConnectionError,
    ResponseError,
    ScrapeError,
)
from chatgpt4o._exceptions import StaleCredentials
from chatgpt4o._memory import ConversationMemory
from chatgpt4o._messages import Turn as MessageTurn
from chatgpt4o._streaming import ReplyStream
from chatgpt4o._transports.base import AsyncTransport, Request, Response
from chatgpt4o.protocols.base import (
    Answer,
    ChatProtocol,
    Conversation,
    PageReader,
    ReplyReader,
    Turn,
)
from chatgpt4o.testing import Fault, SiteEmulator

from .conftest import USER_HELLO, Site

# -- one budget per call ------------------------------------------------------------------


async def test_page_loads_and_posts_share_one_retry_budget(
    site: Site, emulator: SiteEmulator, sleeps: list[float]
) -> None:
    emulator.fail_next(Fault.server_error(500, target="page"), times=2)
    emulator.fail_next(Fault.server_error(502))
    with pytest.raises(HTTPStatusError) as caught:
        await site.create_async("", USER_HELLO, max_retries=2)
    assert caught.value.status_code == 502
    # the first try and two retries in all: two of them spent on the page
    assert (emulator.page_loads, emulator.posts) == (3, 1)
    assert len(sleeps) == 2


async def test_a_budget_big_enough_for_both_succeeds(
    site: Site, emulator: SiteEmulator, sleeps: list[float]
) -> None:
    emulator.fail_next(Fault.server_error(503, target="page"))
    emulator.fail_next(Fault.server_error(503))
    assert await site.create_async("", USER_HELLO, max_retries=2)
    assert (emulator.page_loads, emulator.posts) == (2, 2)
    assert len(sleeps) == 2


async def test_the_stale_nonce_reload_costs_no_retry(
    site: Site, emulator: SiteEmulator, sleeps: list[float]
) -> None:
    await site.create_async("", USER_HELLO)
    emulator.fail_next(Fault.stale_nonce())
    assert await site.create_async("", USER_HELLO, max_retries=0)
    assert sleeps == []


async def test_no_retries_at_all_with_zero(
    site: Site, emulator: SiteEmulator, sleeps: list[float]
) -> None:
    emulator.fail_next(Fault.server_error(500, target="page"))
    with pytest.raises(HTTPStatusError):
        await site.create_async("", USER_HELLO, max_retries=0)
    assert emulator.page_loads == 1
    assert sleeps == []


# -- the stream object ----------------------------------------------------------------------


async def test_stream_object_yields_the_reply_in_pieces(
    site: Site, emulator: SiteEmulator
) -> None:
    emulator.stream = True
    whole = await site.create_async("", USER_HELLO)
    async with await site.stream("", USER_HELLO) as reply:
        assert isinstance(reply, ReplyStream)
        assert reply.response.status_code == 200
        pieces = [piece async for piece in reply]
    assert len(pieces) > 1
    assert "".join(pieces) == whole
    assert "closed" in repr(reply)


async def test_stream_of_a_plain_answer_is_one_piece(site: Site, emulator: SiteEmulator) -> None:
    async with await site.stream("", USER_HELLO) as reply:
        pieces = [piece async for piece in reply]
    assert pieces == [await site.create_async("", USER_HELLO)]


async def test_closing_a_stream_early_ends_it(site: Site, emulator: SiteEmulator) -> None:
    emulator.stream = True
    reply = await site.stream("", USER_HELLO)
    first = await reply.__anext__()
    assert first
    await reply.aclose()
    await reply.aclose()  # idempotent
    with pytest.raises(StopAsyncIteration):
        await reply.__anext__()


async def test_stream_errors_end_the_stream_after_its_pieces(
    site: Site, emulator: SiteEmulator
) -> None:
    emulator.stream = True
    emulator.fail_next(Fault.stream_no_done())
    got: list[str] = []

    async def read_all() -> None:
        async with await site.stream("", USER_HELLO) as reply:
            async for piece in reply:
                got.append(piece)

    with pytest.raises(ResponseError, match=r"\[DONE\]"):
        await read_all()
    assert got  # the pieces before the bad ending still came


# -- site state -----------------------------------------------------------------------------


async def test_reset_cache_forgets_everything_about_the_site(
    site: Site, emulator: SiteEmulator
) -> None:
    emulator.page_cookies = {"pll_language": "en"}
    await site.create_async("", USER_HELLO)
    state = site._site
    assert state.credentials is not None
    assert state.cookies == {"pll_language": "en"}
    assert state.visitor is not None
    site.reset_cache()
    assert site._site is not state
    assert (site._post_id, site._nonce) == (None, None)
    assert site._site.cookies == {}
    assert site._site.visitor is None
    await site.create_async("", USER_HELLO)
    assert emulator.page_loads == 2


async def test_post_id_and_nonce_set_by_hand_are_used(site: Site, emulator: SiteEmulator) -> None:
    site._post_id = "11"
    assert site._nonce is None  # half the credentials: not enough to skip the page
    site._nonce = emulator.current_nonce()
    assert await site.create_async("", USER_HELLO)
    assert emulator.page_loads == 0
    form = emulator.requests[-1].form
    assert (form["post_id"], form["_wpnonce"]) == ("11", emulator.current_nonce())


async def test_classes_keep_their_own_state(site: Site, emulator: SiteEmulator) -> None:
    await site.create_async("", USER_HELLO)
    assert site._nonce == emulator.current_nonce()
    assert Chatgpt4o._nonce is None
    assert Chatgpt4o._site is not site._site

    class Child(site):  # type: ignore[valid-type,misc]
        pass

    assert Child._nonce is None  # a subclass starts afresh


def test_for_site_binds_one_class_per_site() -> None:
    bound = Chatgpt4o.for_site("https://chat.example.org/ai/")
    assert issubclass(bound, Chatgpt4o)
    assert bound is Chatgpt4o.for_site("https://chat.example.org/ai/")
    assert bound is not Chatgpt4o.for_site("https://other.example.org")
    assert bound.url == "https://chat.example.org/ai/"
    assert bound.working is True
    assert bound.label == "chat.example.org"
    assert bound.__name__.startswith("Chatgpt4o_")
    assert bound._site is not Chatgpt4o._site


def test_for_site_takes_class_settings() -> None:
    careful = Chatgpt4o.for_site("https://chat.example.org", max_retries=5, verify=False)
    assert (careful.max_retries, careful.verify) == (5, False)
    assert careful is Chatgpt4o.for_site("https://chat.example.org", verify=False, max_retries=5)
    assert careful is not Chatgpt4o.for_site("https://chat.example.org")
    with pytest.raises(TypeError, match="unknown settings colour"):
        Chatgpt4o.for_site("https://chat.example.org", colour="red")


@pytest.mark.parametrize("url", ["ftp://example.org", "example.org", "https://", ""])
def test_for_site_refuses_what_is_not_a_site(url: str) -> None:
    with pytest.raises(ValueError, match="http"):
        Chatgpt4o.for_site(url)


def test_for_site_refuses_a_non_string() -> None:
    with pytest.raises(TypeError):
        Chatgpt4o.for_site(42)  # type: ignore[arg-type]


# -- the seam: a toy plugin on the unchanged engine ----------------------------------------
# The toy site's page says `token=T1`. A turn first posts the message to /cache (which
# answers a key and the server's conversation id), then GETs /reply?key=... for the
# reply, one word per line. A request with an old token is answered 403 "stale"; the page
# then says `token=T2`. A /cache request may name the conversation it continues.


class ToyReader(PageReader[str]):
    def __init__(self) -> None:
        self.page = b""

    def feed(self, chunk: bytes) -> bool:
        self.page += chunk
        return False

    def text(self) -> str:
        return self.page.decode()

    def result(self, *, page_url: str, site_url: str) -> str | None:
        text = self.text()
        return text.split("token=", 1)[1].split("<", 1)[0] if "token=" in text else None


class ToyReplies(ReplyReader):
    def __init__(self) -> None:
        self.buffer = b""
        self.pieces: list[str] = []

    def feed(self, chunk: bytes) -> list[str]:
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        pieces = [line.decode() for line in lines if line]
        self.pieces += pieces
        return pieces

    def close(self) -> str:
        if self.buffer != b"END":
            raise ResponseError("no END", body=self.buffer.decode())
        return "".join(self.pieces)


class ToyProtocol(ChatProtocol[str, str]):
    name: ClassVar[str] = "toy"
    missing: ClassVar[str] = "no toy token on the page"

    def prepare(self, turns: Sequence[MessageTurn]) -> str:
        return turns[-1][1]

    def page_reader(self, bot: str | None = None) -> PageReader[str]:
        return ToyReader()

    def turn(
        self, credentials: str, conversation: Conversation[str], *, visitor: str, stream: bool
    ) -> Turn:
        continued = conversation.recalled or ""
        answer: Answer = yield Request(
            "POST",
            "http://toy.test/cache",
            content=f"{credentials}|{continued}|{conversation.prepared}".encode(),
        )
        self.check_answer(answer.status_code, answer.headers, answer.body.decode())
        key, conversation.state = answer.body.decode().split("|")
        return Request("GET", f"http://toy.test/reply?key={key}")

    def reply_reader(self, credentials: str, conversation: Conversation[str]) -> ReplyReader:
        return ToyReplies()

    def check_answer(
        self,
        status: int,
        headers: Mapping[str, str],
        body: str,
        *,
        page: bool = False,
        credentials: object | None = None,
    ) -> None:
        if status == 403 and body == "stale":
            raise StaleCredentials(body)
        if status != 200:
            raise HTTPStatusError("toy error", status_code=status, body=body)

    def new_visitor_id(self) -> str:
        return "toy-visitor"


class ToySite(AsyncTransport):
    def __init__(self) -> None:
        self.token = "T1"
        self.seen: list[str] = []
        self.cached: dict[str, str] = {}
        self.conversations: list[str] = []  # the conversation of each /cache request

    async def send(self, request: Request) -> Response:
        path = request.url.split("toy.test", 1)[1]
        self.seen.append(f"{request.method} {path.split('?')[0]}")
        if path.startswith("/?") or path == "/":
            return Response(200, content=f"<p>token={self.token}</p>", url=request.url)
        if path == "/cache":
            token, continued, message = (request.content or b"").decode().split("|", 2)
            if token != self.token:
                return Response(403, content="stale")
            conversation = continued or f"c{len(self.conversations) + 1}"
            self.conversations.append(conversation)
            self.cached["k1"] = message
            return Response(200, content=f"k1|{conversation}")
        words = self.cached.pop(path.split("key=")[1]).split()
        return Response(200, content="".join(f"{w}\n" for w in words) + "END")


@pytest.fixture
def toy() -> tuple[type[Chatgpt4o], ToySite]:
    site = ToySite()

    class Toy(Chatgpt4o):
        url = "http://toy.test"
        protocol = ToyProtocol()
        transport = site

    return Toy, site


async def test_a_two_step_protocol_runs_on_the_engine(toy: tuple[type[Chatgpt4o], ToySite]) -> None:
    provider, site = toy
    message = [{"role": "user", "content": "one two three"}]
    assert await provider.create_async("", message) == "onetwothree"
    pieces = [piece async for piece in provider.create_async_generator("", message)]
    assert pieces == ["one", "two", "three"]
    assert site.seen == ["GET /", "POST /cache", "GET /reply", "POST /cache", "GET /reply"]


async def test_the_engine_renews_stale_credentials_of_any_protocol(
    toy: tuple[type[Chatgpt4o], ToySite],
) -> None:
    provider, site = toy
    message = [{"role": "user", "content": "hi"}]
    await provider.create_async("", message)
    site.token = "T2"
    assert await provider.create_async("", message) == "hi"
    assert site.seen[3:] == ["POST /cache", "GET /", "POST /cache", "GET /reply"]
    site.token = "T3"
    site.seen.clear()

    async def always_stale(request: Request) -> Response:
        return Response(403, content="stale") if "cache" in request.url else await real(request)

    real, site.send = site.send, always_stale  # type: ignore[method-assign]
    with pytest.raises(NonceError):
        await provider.create_async("", message)
    assert provider._site.credentials is None  # dead credentials are forgotten


async def test_a_page_without_the_plugin_is_a_scrape_error(
    toy: tuple[type[Chatgpt4o], ToySite],
) -> None:
    provider, site = toy

    async def no_token(request: Request) -> Response:
        return Response(200, content="<p>nothing here</p>")

    site.send = no_token  # type: ignore[method-assign]
    with pytest.raises(ScrapeError, match="no toy token"):
        await provider.create_async("", [{"role": "user", "content": "hi"}])


async def test_a_transport_error_is_retried_within_the_budget(
    toy: tuple[type[Chatgpt4o], ToySite], sleeps: list[float]
) -> None:
    provider, site = toy
    real = site.send
    failures = iter([True, True])

    async def flaky(request: Request) -> Response:
        if "cache" in request.url and next(failures, False):
            raise ProviderConnectionError("reset")
        return await real(request)

    site.send = flaky  # type: ignore[method-assign]
    message = [{"role": "user", "content": "hi"}]
    assert await provider.create_async("", message, max_retries=2) == "hi"
    assert len(sleeps) == 2


async def test_a_bad_transport_argument_fails_before_io() -> None:
    with pytest.raises(TypeError, match="AsyncTransport"):
        await Chatgpt4o.create_async("", USER_HELLO, transport=object())


async def test_many_cold_calls_load_the_page_once(toy: tuple[type[Chatgpt4o], ToySite]) -> None:
    provider, site = toy
    message = [{"role": "user", "content": "hi"}]
    await asyncio.gather(*(provider.create_async("", message) for _ in range(20)))
    assert site.seen.count("GET /") == 1


# -- conversation continuity ----------------------------------------------------------------


async def test_a_call_that_continues_a_conversation_continues_its_server_state(
    toy: tuple[type[Chatgpt4o], ToySite],
) -> None:
    provider, site = toy
    first = [{"role": "user", "content": "hello there"}]
    reply = await provider.create_async("", first)
    assert reply == "hellothere"
    second = [*first, {"role": "assistant", "content": reply}, {"role": "user", "content": "and"}]
    reply2 = await provider.create_async("", second)
    third = [*second, {"role": "assistant", "content": reply2}, {"role": "user", "content": "so"}]
    pieces = [piece async for piece in provider.create_async_generator("", third)]
    assert pieces == ["so"]
    # a different history (an edited reply) is a new conversation
    edited = [*first, {"role": "assistant", "content": "something else"},
              {"role": "user", "content": "and"}]
    await provider.create_async("", edited)
    assert site.conversations == ["c1", "c1", "c1", "c4"]


async def test_a_streamed_reply_is_remembered_once_it_has_ended(
    toy: tuple[type[Chatgpt4o], ToySite],
) -> None:
    provider, site = toy
    first = [{"role": "user", "content": "a b"}]
    reply = "".join([piece async for piece in provider.create_async_generator("", first)])
    second = [*first, {"role": "assistant", "content": reply}, {"role": "user", "content": "c"}]
    await provider.create_async("", second)
    assert site.conversations == ["c1", "c1"]


async def test_conversations_are_not_shared_between_sites(
    toy: tuple[type[Chatgpt4o], ToySite],
) -> None:
    provider, site = toy
    first = [{"role": "user", "content": "hi"}]
    reply = await provider.create_async("", first)

    class OtherSite(provider):  # type: ignore[valid-type,misc]
        url = "http://toy.test"

    second = [*first, {"role": "assistant", "content": reply}, {"role": "user", "content": "x"}]
    await OtherSite.create_async("", second)
    assert site.conversations == ["c1", "c2"]  # the other class's memory knew nothing


def test_memory_forgets_the_least_recently_used_first() -> None:
    memory = ConversationMemory(size=2)
    a, b, c = ([("user", name)] for name in "abc")
    memory.remember(a, "ra", "A")
    memory.remember(b, "rb", "B")
    assert memory.recall([*a, ("assistant", "ra"), ("user", "more")]) == "A"  # a is fresh now
    memory.remember(c, "rc", "C")  # b goes
    assert len(memory) == 2
    assert memory.recall([*b, ("assistant", "rb"), ("user", "more")]) is None
    assert memory.recall([*a, ("assistant", "ra"), ("user", "more")]) == "A"
    assert memory.recall([("user", "a")]) is None  # a single turn continues nothing
    assert "a" not in repr(memory).replace("ConversationMemory", "")
