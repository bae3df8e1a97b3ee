"""The OpenAI-compatible server against the library called directly, on the same emulator.

    python benchmarks/server.py            # about 2 minutes on 2 cores
    python benchmarks/server.py --quick    # a smoke run, about 30 s

Every part runs in a process of its own: the emulator (`python -m chatgpt4o.testing`),
the server (`python -m chatgpt4o serve --url <emulator>`), and the client, which is one
of two:

- **direct**: `Chatgpt4o.for_site(emulator)`, `create_async` (the library as users call
  it);
- **server**: a minimal HTTP/1.1 client on asyncio streams (keep-alive connections, the
  request bytes written by hand, `json.loads` of the answer), so that what it measures is
  the server's cost, not an SDK's.

Workloads, each after 50 warm-up calls (the page is loaded and cached by then):

- **latency**: sequential calls, one at a time; per-call wall time, p50 / p90 / p99;
  "overhead" is the server's p50 minus the direct p50 (target <= 1 ms);
- **50 clients**: calls from 50 concurrent tasks (connections, for the server);
  calls/s, server over direct (target >= 0.7x);
- **500 streams**: 500 clients at once, each a streamed completion (server-sent events)
  of a reply the emulator streams in 20 chunks 10 ms apart; all must end with
  `data: [DONE]`; the server's peak RSS (`VmHWM`) is recorded (target < 150 MB).

The latency and 50-client workloads alternate direct and server, `--rounds` times, and
report medians. Results go to `benchmarks/results/server.json` and `server.md`
(`--quick`: `benchmarks/.work/server-quick/`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import select
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
REPLY = ("The quick brown fox jumps over the lazy dog. " * 18)[:800]
PROMPT = "Hello! Please answer with the benchmark text."
TARGET_OVERHEAD_MS = 1.0
TARGET_THROUGHPUT_RATIO = 0.7
TARGET_RSS_MB = 150.0


# -- processes -----------------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATGPT4O_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


@contextlib.contextmanager
def _process(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A child that prints a URL as its first line; stopped with SIGINT at the end."""
    process = subprocess.Popen(
        [sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env=_env(), text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 60)
        if not ready:
            raise RuntimeError(f"{args[:3]} printed no URL")
        yield process, process.stdout.readline().strip()
    finally:
        if process.poll() is None:
            process.send_signal(2)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def _client(role: str, url: str, workload: str, calls: int, tasks: int) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, __file__, "--role", role, "--url", url, "--workload", workload,
         "--calls", str(calls), "--tasks", str(tasks)],
        capture_output=True, text=True, env=_env(), timeout=600, check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{role} client failed: {result.stderr[-2000:]}")
    data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


# -- the clients -------------------------------------------------------------------------


class _Connection:
    """One keep-alive HTTP/1.1 connection, written and read by hand."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 host: bytes) -> None:
        self.reader = reader
        self.writer = writer
        self.host = host

    @classmethod
    async def open(cls, base: str) -> _Connection:
        hostport = base.split("//", 1)[1].split("/", 1)[0]
        host, port = hostport.rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port), limit=1 << 20)
        return cls(reader, writer, hostport.encode())

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        self.writer.write(
            b"POST " + path.encode() + b" HTTP/1.1\r\nHost: " + self.host
            + b"\r\nContent-Type: application/json\r\nAuthorization: Bearer sk-bench"
            + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        if b"transfer-encoding: chunked" in lower:
            data = bytearray()
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                data += await self.reader.readexactly(size + 2)
                if size == 0:
                    return status, bytes(data)
        start = lower.index(b"content-length:") + 15
        length = int(lower[start:lower.index(b"\r\n", start)])
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


def _request(stream: bool) -> bytes:
    return json.dumps(
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}],
         "stream": stream}
    ).encode()


async def _server_calls(url: str, workload: str, calls: int, tasks: int) -> dict[str, Any]:
    body = _request(workload == "stream")
    path = url.split("//", 1)[1].split("/", 1)[1]
    path = "/" + path + "/chat/completions"
    latencies: list[float] = []
    errors = 0

    async def one(connection: _Connection) -> None:
        nonlocal errors
        started = time.perf_counter()
        status, answer = await connection.post(path, body)
        latencies.append(time.perf_counter() - started)
        if workload == "stream":
            ok = status == 200 and answer.rstrip().endswith(b"data: [DONE]")
        else:
            ok = status == 200 and json.loads(answer)["choices"][0]["message"]["content"] == REPLY
        if not ok:
            errors += 1

    warm = await _Connection.open(url)
    for _ in range(50):
        await one(warm)
    warm.close()
    latencies.clear()
    connections = [await _Connection.open(url) for _ in range(tasks)]
    per_task = calls // tasks
    cpu = time.process_time()
    started = time.perf_counter()

    async def worker(connection: _Connection) -> None:
        for _ in range(per_task):
            await one(connection)

    await asyncio.gather(*(worker(c) for c in connections))
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    for connection in connections:
        connection.close()
    return _summary(latencies, wall, errors, cpu)


async def _direct_calls(url: str, workload: str, calls: int, tasks: int) -> dict[str, Any]:
    from chatgpt4o import Chatgpt4o

    site = Chatgpt4o.for_site(url)
    messages = [{"role": "user", "content": PROMPT}]
    latencies: list[float] = []
    errors = 0

    async def one() -> None:
        nonlocal errors
        started = time.perf_counter()
        reply = await site.create_async("gpt-4o-mini", messages)
        latencies.append(time.perf_counter() - started)
        if reply != REPLY:
            errors += 1

    for _ in range(50):
        await one()
    latencies.clear()
    per_task = calls // tasks
    cpu = time.process_time()
    started = time.perf_counter()

    async def worker() -> None:
        for _ in range(per_task):
            await one()

    await asyncio.gather(*(worker() for _ in range(tasks)))
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    await site.aclose()
    return _summary(latencies, wall, errors, cpu)


def _summary(latencies: list[float], wall: float, errors: int, cpu: float) -> dict[str, Any]:
    ordered = sorted(latencies)

    def at(share: float) -> float:
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000

    return {
        "calls": len(latencies),
        "errors": errors,
        "wall_s": wall,
        "calls_per_s": len(latencies) / wall,
        "p50_ms": statistics.median(latencies) * 1000,
        "p90_ms": at(0.9),
        "p99_ms": at(0.99),
        "client_cpu_us_per_call": cpu / max(1, len(latencies)) * 1e6,
    }


def _run_client(args: argparse.Namespace) -> None:
    runner = _server_calls if args.role == "server" else _direct_calls
    result = asyncio.run(runner(args.url, args.workload, args.calls, args.tasks))
    print(json.dumps(result))


# -- the run -------------------------------------------------------------------------------


def _serve(emulator_url: str) -> contextlib.AbstractContextManager[
        tuple[subprocess.Popen[str], str]]:
    return _process("-m", "chatgpt4o", "serve", "--url", emulator_url, "--port", "0",
                    "--retries", "0", "--api-key", "sk-bench")


def _compare(rounds: int, calls: int, tasks: int) -> dict[str, Any]:
    """Direct and server, alternating, on one emulator and one server."""
    runs: dict[str, list[dict[str, Any]]] = {"direct": [], "server": []}
    server_cpu = []
    with _process("-m", "chatgpt4o.testing", "--reply", REPLY) as (_, emulator), \
            _serve(emulator) as (server, base):
        for _ in range(rounds):
            runs["direct"].append(_client("direct", emulator, "plain", calls, tasks))
            before = _cpu_seconds(server.pid)
            runs["server"].append(_client("server", base, "plain", calls, tasks))
            # (the client's 50 warm-up calls go through the server too)
            server_cpu.append((_cpu_seconds(server.pid) - before) / (calls + 50) * 1e6)
    return {"runs": runs, "server_cpu_us_per_call": statistics.median(server_cpu)}


def _streams(clients: int) -> dict[str, Any]:
    with _process("-m", "chatgpt4o.testing", "--reply", REPLY, "--stream",
                  "--stream-chunks", "20", "--chunk-delay", "0.01") as (_, emulator), \
            _serve(emulator) as (server, base):
        idle_mb = _peak_rss_mb(server.pid)
        result = _client("server", base, "stream", clients, clients)
        result["server_peak_rss_mb"] = _peak_rss_mb(server.pid)
        result["server_rss_after_start_mb"] = idle_mb
    return result


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def _report(results: dict[str, Any]) -> str:
    latency, load, streams = results["latency"], results["load"], results["streams"]
    direct_p50 = _median(latency["runs"]["direct"], "p50_ms")
    server_p50 = _median(latency["runs"]["server"], "p50_ms")
    ratios = [s["calls_per_s"] / d["calls_per_s"]
              for d, s in zip(load["runs"]["direct"], load["runs"]["server"], strict=True)]
    overhead = server_p50 - direct_p50
    ratio = statistics.median(ratios)
    rss = streams["server_peak_rss_mb"]
    done = streams["calls"] - streams["errors"]
    verdict = {
        "overhead_ms": overhead,
        "throughput_ratio": ratio,
        "streams_completed": done,
        "server_peak_rss_mb": rss,
        "overhead_ok": overhead <= TARGET_OVERHEAD_MS,
        "throughput_ok": ratio >= TARGET_THROUGHPUT_RATIO,
        "streams_ok": done == streams["calls"],
        "rss_ok": rss < TARGET_RSS_MB,
    }
    results["verdict"] = verdict

    def row(name: str, runs: list[dict[str, Any]]) -> str:
        return (f"| {name} | {_median(runs, 'p50_ms'):.2f} | {_median(runs, 'p90_ms'):.2f} | "
                f"{_median(runs, 'p99_ms'):.2f} | {_median(runs, 'calls_per_s'):.0f} |")

    ok = {True: "yes", False: "**no**"}
    lines = [
        f"Run of {results['date']} ({results['machine']}); {results['rounds']} rounds, "
        "medians.",
        "",
        f"Sequential: {latency['calls']} calls, one at a time:",
        "",
        "| client | p50 ms | p90 ms | p99 ms | calls/s |",
        "| --- | --- | --- | --- | --- |",
        row("direct (library)", latency["runs"]["direct"]),
        row("through the server", latency["runs"]["server"]),
        "",
        f"50 concurrent clients: {load['calls']} calls in all:",
        "",
        "| client | p50 ms | p90 ms | p99 ms | calls/s |",
        "| --- | --- | --- | --- | --- |",
        row("direct (library)", load["runs"]["direct"]),
        row("through the server", load["runs"]["server"]),
        "",
        "CPU per call, sequential / 50 clients: the direct client "
        f"{_median(latency['runs']['direct'], 'client_cpu_us_per_call'):.0f} / "
        f"{_median(load['runs']['direct'], 'client_cpu_us_per_call'):.0f} µs; the server "
        f"{latency['server_cpu_us_per_call']:.0f} / {load['server_cpu_us_per_call']:.0f} µs "
        "(the library's call included) and its raw HTTP client "
        f"{_median(latency['runs']['server'], 'client_cpu_us_per_call'):.0f} / "
        f"{_median(load['runs']['server'], 'client_cpu_us_per_call'):.0f} µs.",
        "",
        "| target | goal | result | met |",
        "| --- | --- | --- | --- |",
        f"| p50 latency overhead per request | <= {TARGET_OVERHEAD_MS:g} ms | "
        f"{overhead:.2f} ms | {ok[verdict['overhead_ok']]} |",
        f"| throughput at 50 clients vs direct | >= {TARGET_THROUGHPUT_RATIO:g}x | "
        f"{ratio:.2f}x ({min(ratios):.2f}-{max(ratios):.2f}) | {ok[verdict['throughput_ok']]} |",
        f"| {streams['calls']} concurrent streams complete | all | {done} "
        f"in {streams['wall_s']:.1f} s | {ok[verdict['streams_ok']]} |",
        f"| server peak RSS (500 streams) | < {TARGET_RSS_MB:g} MB | {rss:.0f} MB "
        f"({streams['server_rss_after_start_mb']:.0f} MB after start) | "
        f"{ok[verdict['rss_ok']]} |",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None)
    # (a client process)
    parser.add_argument("--role", choices=("direct", "server"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--workload", help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tasks", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        _run_client(args)
        return
    rounds = args.rounds or (1 if args.quick else 3)
    sequential, concurrent, streams = (300, 1000, 500) if args.quick else (1000, 2000, 500)
    out = args.out or (HERE / ".work" / "server-quick" if args.quick else HERE / "results")
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                   f"{platform.python_version()}, load {os.getloadavg()[0]:.1f}",
        "rounds": rounds,
    }
    print("latency ...", file=sys.stderr)
    results["latency"] = {"calls": sequential, **_compare(rounds, sequential, 1)}
    print("50 clients ...", file=sys.stderr)
    results["load"] = {"calls": concurrent, **_compare(rounds, concurrent, 50)}
    print(f"{streams} streams ...", file=sys.stderr)
    results["streams"] = _streams(streams)
    text = _report(results)
    (out / "server.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "server.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
