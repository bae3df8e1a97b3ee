"""The one copy of each shared fixture: a site emulator on loopback in the test's own event
loop, a provider bound to it (`Chatgpt4o.for_site`), the shipped emulator on a thread with
its provider, retry sleeps that are recorded instead of slept, and each HTTP backend; and
of the helpers the test files share: the greeting they send, the reply the emulator gives,
the least chat form and the headers a request carried."""

from __future__ import annotations

import itertools
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatgpt4o import Chatgpt4o
from chatgpt4o import _deadline as deadline_module
from chatgpt4o._pool import Backend
from chatgpt4o.testing import SiteEmulator

#: The HTTP stacks a transport or session can run on.
BACKENDS: list[Backend] = ["curl_cffi", "httpx"]

#: A provider class, as the tests pass them around.
Site = type[Chatgpt4o]

#: A provider and its emulator on a thread, from the shipped pytest plugin.
ThreadedSite = tuple[Site, SiteEmulator]

USER_HELLO = [{"role": "user", "content": "Привет!"}]


def pytest_configure(config: pytest.Config) -> None:
    """SIGINT is Python's own KeyboardInterrupt here, whatever the runner inherited.

    A shell starts a background job with SIGINT ignored, and exec keeps an ignored signal:
    the tests that send SIGINT to this process or to a child (the command, the emulator)
    would then depend on how the suite was started. A handled signal is reset to the
    default by exec, so with Python's handler installed here, every child starts with the
    default disposition and installs its own handler, as it does from a terminal. (Before
    collection: test modules read the handler when they are imported.)
    """
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def expected_reply(emulator: SiteEmulator, message: str = "Привет!") -> str:
    """What the emulator answers to `message` (its reply is a text or a function)."""
    reply = emulator.reply(message) if callable(emulator.reply) else emulator.reply
    assert isinstance(reply, str)
    return reply


def chat_fields(emulator: SiteEmulator, message: str = "hi") -> dict[str, str]:
    """The least form the emulator's admin-ajax.php answers with a chat reply."""
    return {
        "action": "wpaicg_chat_shortcode_message",
        "_wpnonce": emulator.current_nonce(),
        "post_id": "11",
        "message": message,
    }


def sent_headers(emulator: SiteEmulator, name: str) -> list[str]:
    """Every value of header `name` in the last request the emulator saw."""
    return list(emulator.requests[-1].headers.getall(name))  # type: ignore[attr-defined]


_log_numbers = itertools.count()


@pytest.fixture(scope="session")
def _logs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chatgpt4o-logs")


@pytest.fixture(autouse=True)
def _conversation_log_in_tmp(_logs_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test's `chatgpt4o` runs (in-process or in a subprocess that inherits the
    environment) log into a file of its own under the session's tmp directory, never
    into the user's data directory. Nothing is created until a run logs."""
    path = _logs_root / f"test-{next(_log_numbers)}" / "logs.db"
    monkeypatch.setenv("CHATGPT4O_LOGS_PATH", str(path))
    monkeypatch.setenv("XDG_DATA_HOME", str(path.parent / "xdg"))  # in case a test drops it
    monkeypatch.delenv("CHATGPT4O_NO_LOG", raising=False)
    return path


@pytest.fixture
def logs_db(_conversation_log_in_tmp: Path) -> Path:
    """The conversation log file of this test's `chatgpt4o` runs."""
    return _conversation_log_in_tmp


@pytest.fixture
async def emulator() -> AsyncIterator[SiteEmulator]:
    async with SiteEmulator() as emu:
        yield emu


@pytest.fixture
def site(emulator: SiteEmulator) -> Site:
    """`Chatgpt4o.for_site` of the emulator, its cache emptied (ports get reused)."""
    provider = Chatgpt4o.for_site(emulator.url)
    provider.reset_cache()
    return provider


@pytest.fixture
def threaded_site(chatgpt4o_provider: Site, chatgpt4o_emulator: SiteEmulator) -> ThreadedSite:
    """The shipped fixtures: an emulator on a thread and a provider for it, for blocking
    APIs, which run event loops of their own."""
    return chatgpt4o_provider, chatgpt4o_emulator


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retry sleeps are recorded and skipped; the deadline's clock is left alone."""
    recorded: list[float] = []

    async def record(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr(deadline_module, "_sleep", record)
    return recorded


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    """Each HTTP stack in turn."""
    return request.param  # type: ignore[no-any-return]
