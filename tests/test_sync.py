"""The blocking API, for code with no event loop."""

from __future__ import annotations

import pytest

from chatgpt4o import Chatgpt4o

from .conftest import USER_HELLO, ThreadedSite, expected_reply


def test_create_completion_returns_the_reply(threaded_site: ThreadedSite) -> None:
    site, emu = threaded_site
    pieces = list(site.create_completion("gpt-4o-mini", USER_HELLO))
    expected = expected_reply(emu)
    assert "".join(pieces) == expected
    # a second call uses a new private loop and still the cached nonce
    assert list(site.create_completion("", USER_HELLO)) == pieces
    assert emu.page_loads == 1


def test_create_completion_streams(threaded_site: ThreadedSite) -> None:
    site, emu = threaded_site
    emu.stream = True
    pieces = list(site.create_completion("", USER_HELLO, stream=True))
    assert len(pieces) > 1


def test_stopping_early_closes_cleanly(threaded_site: ThreadedSite) -> None:
    site, emu = threaded_site
    emu.stream = True
    emu.chunk_delay = 0.05
    iterator = site.create_completion("", USER_HELLO, stream=True)
    assert next(iterator)
    iterator.close()  # type: ignore[attr-defined]


async def test_create_completion_inside_a_running_loop_points_to_create_async() -> None:
    with pytest.raises(RuntimeError, match="create_async"):
        Chatgpt4o.create_completion("", USER_HELLO)
