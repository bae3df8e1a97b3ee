"""Calls per second of this library for each plugin protocol, on its emulator.

    python benchmarks/protocols.py [--rounds 3] [--calls 500] [--tasks 50]

For each plugin (AI Power <= 2.2, AI Power 2.3+ "AIPKit", AI Engine) and each round, a
fresh emulator process (`python -m chatgpt4o.testing --plugin NAME`) serves a client
process that makes `--calls` sequential calls and then `--calls` calls from `--tasks`
concurrent tasks, the way users call the library (`discover()` once, then
`create_async`). The client reports calls/s and its CPU time per call; the emulator's
counters (page loads, chat requests) show that no call loads the page again. Medians
over the rounds go to stdout as a markdown table. Run by hand; not part of the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

PLUGINS = {
    "wpaicg": ("AI Power <= 2.2", ["--plugin", "wpaicg"]),
    "aipkit": ("AI Power 2.3+ (AIPKit, two requests per call)", ["--plugin", "aipkit"]),
    "aiengine": ("AI Engine", ["--plugin", "aiengine"]),
}
REPLY = "x" * 800

CLIENT = r"""
import asyncio, json, sys, time
import chatgpt4o

url, calls, tasks = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
messages = [{"role": "user", "content": "Hello! Please answer with the benchmark text."}]


async def main():
    site = await chatgpt4o.discover(url)
    await site.create_async("", messages)
    results = {}
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        await site.create_async("", messages)
    results["sequential"] = (calls / (time.perf_counter() - started),
                             (time.process_time() - cpu) / calls * 1000)

    async def worker(n):
        for _ in range(n):
            await site.create_async("", messages)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker(calls // tasks) for _ in range(tasks)))
    done = calls // tasks * tasks
    results["concurrent"] = (done / (time.perf_counter() - started),
                             (time.process_time() - cpu) / done * 1000)
    print(json.dumps(results))


asyncio.run(main())
"""


def one_run(plugin: str, calls: int, tasks: int) -> dict[str, object]:
    emulator = subprocess.Popen(
        [sys.executable, "-m", "chatgpt4o.testing", *PLUGINS[plugin][1], "--reply", REPLY,
         "--stats"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert emulator.stdout is not None
        url = emulator.stdout.readline().strip()
        if plugin == "aiengine":
            url += "/"
        client = subprocess.run(
            [sys.executable, "-c", CLIENT, url, str(calls), str(tasks)],
            capture_output=True, text=True, check=True, timeout=600,
        )
        results: dict[str, object] = json.loads(client.stdout)
    finally:
        emulator.send_signal(2)
        counters, _ = emulator.communicate(timeout=30)
    stats = [line for line in counters.splitlines() if line.startswith("{")]
    results["server"] = json.loads(stats[-1]) if stats else {}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--tasks", type=int, default=50)
    args = parser.parse_args()
    runs: dict[str, list[dict[str, object]]] = {plugin: [] for plugin in PLUGINS}
    for _ in range(args.rounds):
        for plugin in PLUGINS:  # alternating, so that the machine's drift is shared
            runs[plugin].append(one_run(plugin, args.calls, args.tasks))
    load = os.getloadavg()
    print(f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {args.rounds} rounds, "
          f"{args.calls} calls per workload, {args.tasks} tasks; load {load[0]:.2f}.\n")
    print(f"| plugin | sequential calls/s | CPU ms/call | {args.tasks} tasks calls/s | "
          "CPU ms/call | page loads | chat requests |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for plugin, results in runs.items():
        def median(workload: str, index: int) -> float:
            return statistics.median(r[workload][index] for r in results)  # type: ignore[index]

        server = results[-1]["server"]
        assert isinstance(server, dict)
        print(f"| {PLUGINS[plugin][0]} | {median('sequential', 0):,.0f} | "
              f"{median('sequential', 1):.2f} | {median('concurrent', 0):,.0f} | "
              f"{median('concurrent', 1):.2f} | {server.get('page_loads', '?')} | "
              f"{server.get('posts', '?')} |")


if __name__ == "__main__":
    main()
