"""The timing harness every benchmark client shares (standard library only).

A client script builds a `Client` (one plain call, optionally one streamed call) and
hands it to `main`, which runs one workload, checks every reply, and prints one JSON
line: wall time, CPU time, peak RSS, errors and (for streams) per-call latencies.
The clock starts after the client's imports and its `setup`, so that importing the
HTTP stack is not counted (the import benchmark measures that separately).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

__all__ = ["PROMPT", "Client", "main"]

#: The one message every client sends.
PROMPT = "Hello! Please answer with the benchmark text."

WORKLOADS = ("seq", "conc", "cold", "stream")


@dataclass
class Client:
    """One way of asking the site: `call` returns the reply, `stream` yields pieces."""

    call: Callable[[], Awaitable[str]]
    stream: Callable[[], AsyncIterator[str]] | None = None
    #: Awaited once, on the clock, before the first call (the floor's page GET).
    start: Callable[[], Awaitable[None]] | None = None
    aclose: Callable[[], Awaitable[None]] | None = None
    info: dict[str, str] | None = None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True, help="the emulator's URL")
    parser.add_argument("--ca", default=None, help="CA bundle to trust (HTTPS)")
    parser.add_argument("--workload", required=True, choices=WORKLOADS)
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--tasks", type=int, default=1, help="concurrent tasks (conc)")
    parser.add_argument("--expect", required=True, help="the reply every call must get")
    parser.add_argument("--time-limit", type=float, default=240.0, help="seconds, whole run")
    return parser


class _Tally:
    def __init__(self, expect: str) -> None:
        self.expect = expect
        self.ok = 0
        self.errors: Counter[str] = Counter()
        self.first_error = ""

    def check(self, reply: str) -> None:
        if reply == self.expect:
            self.ok += 1
        else:
            self.fail(f"wrong reply: {reply[:80]!r}")

    def fail(self, text: str) -> None:
        self.errors[text.split(":")[0][:60]] += 1
        if not self.first_error:
            self.first_error = text[:300]


async def _one(client: Client, tally: _Tally) -> None:
    try:
        tally.check(await client.call())
    except Exception as err:
        tally.fail(f"{type(err).__name__}: {err}")


async def _sequential(client: Client, tally: _Tally, calls: int, stop_at: float) -> int:
    for done in range(calls):
        if time.monotonic() > stop_at:
            return done
        await _one(client, tally)
    return calls


async def _concurrent(
    client: Client, tally: _Tally, calls: int, tasks: int, stop_at: float
) -> int:
    share, extra = divmod(calls, tasks)
    started = 0

    async def worker(count: int) -> None:
        nonlocal started
        for _ in range(count):
            if time.monotonic() > stop_at:
                return
            started += 1
            await _one(client, tally)

    await asyncio.gather(*(worker(share + (i < extra)) for i in range(tasks)))
    return started


async def _streams(
    client: Client, tally: _Tally, calls: int, stop_at: float
) -> tuple[int, list[float], list[float], list[int]]:
    assert client.stream is not None
    firsts: list[float] = []
    totals: list[float] = []
    pieces: list[int] = []
    done = 0
    for done in range(1, calls + 1):
        if time.monotonic() > stop_at:
            done -= 1
            break
        start = time.perf_counter()
        first: float | None = None
        parts: list[str] = []
        try:
            async for piece in client.stream():
                if first is None:
                    first = time.perf_counter() - start
                parts.append(piece)
        except Exception as err:
            tally.fail(f"{type(err).__name__}: {err}")
            continue
        totals.append(time.perf_counter() - start)
        firsts.append(first if first is not None else totals[-1])
        pieces.append(len(parts))
        tally.check("".join(parts))
    return done, firsts, totals, pieces


async def _run(args: argparse.Namespace, setup: Callable[[str, str | None], Client]) -> dict:
    client = setup(args.url, args.ca)
    tally = _Tally(args.expect)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    stop_at = time.monotonic() + args.time_limit
    result: dict[str, object] = {}
    if client.start is not None:
        await client.start()
    if args.workload == "seq":
        attempted = await _sequential(client, tally, args.calls, stop_at)
    elif args.workload == "conc":
        attempted = await _concurrent(client, tally, args.calls, args.tasks, stop_at)
    elif args.workload == "cold":
        attempted = await _concurrent(client, tally, args.calls, args.calls, stop_at)
    else:
        if client.stream is None:
            return {"skipped": "this client cannot stream"}
        attempted, firsts, totals, pieces = await _streams(client, tally, args.calls, stop_at)
        if totals:
            result["first_piece_s"] = statistics.median(firsts)
            result["stream_total_s"] = statistics.median(totals)
            result["pieces"] = statistics.median(pieces)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    if client.aclose is not None:
        await client.aclose()
    result.update(
        {
            "calls": attempted,
            "ok": tally.ok,
            "errors": dict(tally.errors),
            "first_error": tally.first_error,
            "elapsed_s": elapsed,
            "cpu_s": (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime),
            "info": client.info or {},
        }
    )
    return result


def peak_rss_kib() -> int:
    """This process's peak resident set size, in KiB.

    Linux's VmHWM belongs to the process's own memory map. `ru_maxrss` is not used
    where VmHWM exists: across fork and exec it keeps the parent's peak, so every
    client would report at least the benchmark driver's size.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(setup: Callable[[str, str | None], Client]) -> None:
    """Parse the command line, run the workload, print the result as one JSON line."""
    args = _parser().parse_args()
    result = asyncio.run(_run(args, setup))
    # Peak RSS of the whole process, read after the loop (and its sessions) closed.
    result["max_rss_kib"] = peak_rss_kib()
    sys.stdout.write(json.dumps(result) + "\n")
