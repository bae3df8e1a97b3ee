"""pytest fixtures for code that talks to chatgpt4o.one (registered as a pytest11 plugin).

- ``chatgpt4o_emulator``: a fresh, running :class:`~chatgpt4o.testing.SiteEmulator` per
  test, served from a background thread (works in sync tests and under any async
  framework). Configure it with the marker
  ``@pytest.mark.chatgpt4o_emulator(stream=True, ...)`` (keywords of ``SiteEmulator``;
  ``plugin="aipkit"`` or ``plugin="aiengine"`` for the other plugins' emulators).
- ``chatgpt4o_provider``: ``Chatgpt4o.for_site(url)`` of the emulator, its cache empty.

This module is imported in every pytest run of an environment where chatgpt4o is
installed, so it imports nothing heavy: the emulator (and aiohttp) load inside the
fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from chatgpt4o import Chatgpt4o
    from chatgpt4o.testing._emulator import SiteEmulator

__all__ = ["chatgpt4o_emulator", "chatgpt4o_provider", "pytest_configure"]


def pytest_configure(config: pytest.Config) -> None:
    """Declare the ``chatgpt4o_emulator`` marker."""
    config.addinivalue_line(
        "markers",
        "chatgpt4o_emulator(**kwargs): SiteEmulator keyword arguments for the "
        "chatgpt4o_emulator fixture",
    )


@pytest.fixture
def chatgpt4o_emulator(request: pytest.FixtureRequest) -> Iterator[SiteEmulator]:
    """A running chatgpt4o.one emulator (``SiteEmulator``), stopped after the test."""
    from chatgpt4o.testing._thread import EmulatorThread

    marker = request.node.get_closest_marker("chatgpt4o_emulator")
    kwargs = dict(marker.kwargs) if marker is not None else {}
    with EmulatorThread(**kwargs) as emulator:
        yield emulator


@pytest.fixture
def chatgpt4o_provider(chatgpt4o_emulator: SiteEmulator) -> type[Chatgpt4o]:
    """``Chatgpt4o.for_site`` of ``chatgpt4o_emulator``, with an empty cache."""
    from chatgpt4o import AIEngine, Chatgpt4o

    if type(chatgpt4o_emulator).__name__ == "AIEngineEmulator":
        provider: type[Chatgpt4o] = AIEngine.for_site(chatgpt4o_emulator.url + "/")  # type: ignore[assignment]
    else:
        provider = Chatgpt4o.for_site(chatgpt4o_emulator.url)
    provider.reset_cache()  # a port may be reused by a later test's emulator
    return provider
