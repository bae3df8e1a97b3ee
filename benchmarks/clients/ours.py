"""Benchmark client 1: this library, `Chatgpt4o.for_site` of the emulator.

Every call is a plain `create_async` (streams: `create_async_generator`), exactly as a
user writes it; the library keeps its own shared session, cache and connections.
"""

from __future__ import annotations

import os

import curl_cffi
import curl_cffi.requests
from _harness import PROMPT, Client, main

import chatgpt4o
from chatgpt4o import Chatgpt4o

MESSAGES = [{"role": "user", "content": PROMPT}]


def setup(url: str, ca: str | None) -> Client:
    Bench = Chatgpt4o.for_site(url, verify=ca if ca else True)

    def stream():
        return Bench.create_async_generator("gpt-4o-mini", MESSAGES, stream=True)

    return Client(
        call=lambda: Bench.create_async("gpt-4o-mini", MESSAGES),
        stream=stream,
        info={
            "chatgpt4o": chatgpt4o.__version__,
            "chatgpt4o_from": os.path.dirname(chatgpt4o.__file__),  # the work tree or a snapshot
            "curl_cffi": curl_cffi.__version__,
        },
    )


if __name__ == "__main__":
    main(setup)
