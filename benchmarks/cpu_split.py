"""Where a call's CPU goes: chatgpt4o against the floor, in one process.

    python benchmarks/cpu_split.py URL [--ca CA] [--layers]

URL is a running emulator (`python -m chatgpt4o.testing --reply ...`; pin it and this
script to different cores with `taskset` for steadier numbers). Both clients of
`clients/` make sequential calls in batches that alternate (ours, floor, floor, ours...),
so that the drift of a shared machine hits both alike, and the thread CPU time of each
batch is split at curl_cffi's `AsyncSession.request`: outside it is the client's own
code (chatgpt4o's layers, or the floor's few lines), inside it curl_cffi's request
set-up (`set_curl_options`), the loop turns and curl's own work, and the response
object (`_parse_response`). Sequential calls only: a coroutine's CPU time from its start
to its end is then its own call's.

`--layers` also times chatgpt4o's layers (inclusive; each timer costs about 2 us here, which
the outer layers include) over sequential calls of ours alone.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import inspect
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent / "clients"))

import curl_cffi.requests.session as curl_session
import floor
import ours

REPLY = ("The quick brown fox jumps over the lazy dog. " * 18)[:800]
spent: collections.defaultdict[tuple[str, str], float] = collections.defaultdict(float)
counted: collections.Counter[tuple[str, str]] = collections.Counter()
current = ["warm-up"]


def timed(owner: Any, name: str, label: str | None = None) -> None:
    """Replace owner.name with a wrapper that adds its thread CPU time to `spent`."""
    label = label or f"{owner.__name__}.{name}"
    raw = inspect.getattr_static(owner, name)  # maybe inherited
    is_classmethod = isinstance(raw, classmethod)
    function = raw.__func__ if is_classmethod else raw

    if inspect.iscoroutinefunction(function):

        @functools.wraps(function)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.thread_time()
            try:
                return await function(*args, **kwargs)
            finally:
                spent[current[0], label] += time.thread_time() - start
                counted[current[0], label] += 1

    else:

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent[current[0], label] += time.thread_time() - start
                counted[current[0], label] += 1

    setattr(owner, name, classmethod(wrapper) if is_classmethod else wrapper)


async def split(url: str, ca: str | None, batch: int, rounds: int) -> None:
    timed(curl_session.AsyncSession, "request", "request")
    timed(curl_session, "set_curl_options", "set_curl_options")
    timed(curl_session.AsyncSession, "_parse_response", "_parse_response")
    clients = {"ours": ours.setup(url, ca), "floor": floor.setup(url, ca)}
    for client in clients.values():
        if client.start is not None:
            await client.start()
        for _ in range(2 * batch):  # warm: connections, caches, lazy imports
            await client.call()
    spent.clear()
    totals: dict[str, list[float]] = {name: [] for name in clients}
    for number in range(rounds):
        for name in ("ours", "floor") if number % 2 == 0 else ("floor", "ours"):
            current[0] = name
            start = time.thread_time()
            for _ in range(batch):
                assert await clients[name].call() == REPLY
            totals[name].append((time.thread_time() - start) / batch * 1e6)
    calls = batch * rounds
    print(f"{url}: {rounds} batches of {batch} sequential calls each, alternating")
    for name in clients:
        total = sum(totals[name]) / rounds
        inside = spent[name, "request"] / calls * 1e6
        setup = spent[name, "set_curl_options"] / calls * 1e6
        parse = spent[name, "_parse_response"] / calls * 1e6
        print(
            f"  {name:5}  {total:6.1f} us/call: "
            f"outside AsyncSession.request {total - inside:6.1f}; "
            f"inside {inside:6.1f} (set_curl_options {setup:5.1f}, _parse_response "
            f"{parse:5.1f}, loop turns and curl's work {inside - setup - parse:6.1f})"
        )
    ratios = [a / b for a, b in zip(totals["ours"], totals["floor"], strict=True)]
    print(f"  ours/floor: median of the per-batch ratios {statistics.median(ratios):.3f}")


async def layers(url: str, ca: str | None, calls: int) -> None:
    from chatgpt4o import _engine, _provider
    from chatgpt4o._transports import base, curl
    from chatgpt4o.protocols import aipower, wpaicg

    for name in (
        "reply",
        "prepare",
        "_begin",
        "_attempt",
        "_credentials",
        "_ask",
        "_start_turn",
        "_send",
    ):
        timed(_engine.Engine, name)
    timed(_provider.WordPressChat, "_prepare")
    timed(_engine.TransportSettings, "open")
    timed(curl.CurlTransport, "send")
    timed(base.Response, "__init__", "Response.__init__")
    timed(base.Request, "__init__", "Request.__init__")
    for cls in (aipower.AIPowerProtocol, aipower._Legacy, wpaicg.WpaicgProtocol):
        for name in ("prepare", "read_reply", "usable"):
            if name in cls.__dict__:
                timed(cls, name)
    timed(wpaicg, "encode_form", "wpaicg.encode_form")
    client = ours.setup(url, ca)
    for _ in range(300):
        await client.call()
    spent.clear()
    counted.clear()
    current[0] = "layers"
    start = time.thread_time()
    for _ in range(calls):
        assert await client.call() == REPLY
    total = (time.thread_time() - start) / calls * 1e6
    print(f"chatgpt4o's layers, {calls} sequential calls, {total:.1f} us/call with the timers:")
    for (_, label), seconds in sorted(spent.items(), key=lambda item: -item[1]):
        share = counted["layers", label] / calls
        print(f"  {seconds / calls * 1e6:7.1f} us  {share:4.2f} per call  {label}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--ca", default=None)
    parser.add_argument("--batch", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--layers", action="store_true")
    args = parser.parse_args()
    if args.layers:
        asyncio.run(layers(args.url, args.ca, args.batch * args.rounds // 2))
    else:
        asyncio.run(split(args.url, args.ca, args.batch, args.rounds))


if __name__ == "__main__":
    main()
