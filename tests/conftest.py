"""Shared fixtures: a site emulator on loopback in the test's own event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from chatgpt4o import Chatgpt4o
from chatgpt4o.testing import SiteEmulator

USER_HELLO = [{"role": "user", "content": "Привет!"}]


@pytest.fixture
async def emulator() -> AsyncIterator[SiteEmulator]:
    async with SiteEmulator() as emu:
        yield emu


@pytest.fixture
def site(emulator: SiteEmulator) -> type[Chatgpt4o]:
    """A provider for the emulated site, with a cache of its own."""

    class LocalSite(Chatgpt4o):
        url = emulator.url

    return LocalSite
