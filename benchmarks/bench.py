"""Benchmark chatgpt4o against the raw curl_cffi floor and the legacy g4f provider.

    python benchmarks/bench.py            # the full run: 5 rounds, about 8 minutes on 2 cores
    python benchmarks/bench.py --quick    # a smoke run: small workloads, 1 round, under a minute

Run it with a Python that has chatgpt4o (with the `local` extra), trustme and
matplotlib installed; the legacy g4f venv is created on first use. See README.md.

For every round, transport (HTTP, HTTPS) and workload, each client runs in its own
process against a fresh emulator process (`python -m chatgpt4o.testing`), the clients
alternating (ours, floor, legacy, ours, floor, legacy, ...). The medians over the
rounds, their ratios and the targets go to `results/` (JSON, markdown, PNG).
Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import select
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CLIENTS_DIR = HERE / "clients"
WORK = HERE / ".work"
LEGACY_VENV = HERE / ".venv-legacy"
LEGACY_REQUIREMENTS = ("g4f==0.4.5.0", "curl_cffi==0.7.4")
RESULTS = HERE / "results"

CLIENTS = ("ours", "floor", "legacy")
CLIENT_LABELS = {
    "ours": "chatgpt4o",
    "floor": "raw curl_cffi (floor)",
    "legacy": "g4f 0.4.5.0 (legacy)",
}
TRANSPORTS = ("http", "https")
WORKLOADS = ("seq", "conc", "cold", "stream")
WORKLOAD_LABELS = {
    "seq": "sequential",
    "conc": "50 tasks",
    "cold": "cold, concurrent",
    "stream": "stream, 200 chunks",
}
REPO = HERE.parent

#: The fixed reply: 800 ASCII characters (200 stream chunks of 4).
REPLY = ("The quick brown fox jumps over the lazy dog. " * 18)[:800]
STREAM_CHUNKS = 200
#: Seconds between streamed chunks: each of the 200 events arrives on its own, as from a
#: model that is still writing (the emulator's smallest useful pause; asyncio rounds
#: sleeps up to whole milliseconds on Linux).
STREAM_CHUNK_DELAY = 0.001

# The performance targets (benchmarks/README.md).
MIN_FLOOR_RATIO = 0.9  # calls/s, ours over the floor's (higher is better)
MAX_CPU_RATIO = 1.15  # client CPU per call, ours over the floor's (lower is better)
MIN_LEGACY_RATIO = 2.0
MAX_IMPORT_MS = 25.0  # `import chatgpt4o`
MAX_IMPORT_OVER_ASYNCIO_MS = 40.0  # `from chatgpt4o import Chatgpt4o` minus `import asyncio`
MAX_RSS_RATIO = 1.3
#: Fresh processes per import statement timed (alternating), after one warm-up each.
IMPORT_REPEAT = 9

#: Set by --snapshot: a folder holding an exported copy of chatgpt4o/ at one commit, put
#: first on every child's PYTHONPATH (emulator, our client, the import timings).
CODE_PATH: Path | None = None

EMULATOR_START_TIMEOUT = 30.0
EMULATOR_STOP_TIMEOUT = 15.0


@dataclass(frozen=True)
class Sizes:
    seq: int
    conc: int
    tasks: int
    cold: int
    stream: int
    rounds: int
    client_time_limit: float

    def calls(self, workload: str) -> int:
        return int(getattr(self, workload))


FULL = Sizes(
    seq=1000, conc=2000, tasks=50, cold=500, stream=20, rounds=5, client_time_limit=240.0
)
QUICK = Sizes(seq=100, conc=200, tasks=50, cold=100, stream=5, rounds=1, client_time_limit=60.0)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def child_env() -> dict[str, str]:
    """The environment of every child: no proxies (all traffic stays on loopback)."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONUNBUFFERED"] = "1"
    if CODE_PATH is not None:
        env["PYTHONPATH"] = str(CODE_PATH)
    return env


def export_snapshot(revision: str) -> tuple[str, Path]:
    """`chatgpt4o/` as committed at `revision`, exported to .work/snapshot-<sha>/.

    The work tree may change while a run goes on (others edit it); an exported copy
    keeps the code that is measured the same from the first run to the last.
    """
    sha = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", f"{revision}^{{commit}}"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    folder = WORK / f"snapshot-{sha}"
    if not (folder / "chatgpt4o" / "__init__.py").exists():
        folder.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", sha, "chatgpt4o"],
            capture_output=True, check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return sha, folder


# -- set-up: the legacy venv and the throwaway CA ---------------------------------------


def legacy_python() -> Path:
    return LEGACY_VENV / "bin" / "python"


def ensure_legacy_venv() -> Path:
    """benchmarks/.venv-legacy with g4f 0.4.5.0 and curl_cffi 0.7.4 (made on first use)."""
    python = legacy_python()
    probe = [str(python), "-c", "import g4f.Provider.not_working.Chatgpt4o, curl_cffi"]
    ready = python.exists() and subprocess.run(probe, capture_output=True, env=child_env())
    if ready and ready.returncode == 0:
        return python
    log(f"creating the legacy venv {LEGACY_VENV} ({' '.join(LEGACY_REQUIREMENTS)}) ...")
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--clear", str(LEGACY_VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         *LEGACY_REQUIREMENTS],
        check=True,
        env=child_env(),
        timeout=600,
    )
    subprocess.run(probe, check=True, env=child_env())
    return python


@dataclass(frozen=True)
class Tls:
    ca: Path
    cert: Path
    key: Path


def make_tls() -> Tls:
    """A fresh CA (trustme) and a certificate for 127.0.0.1, under .work/tls."""
    import trustme

    folder = WORK / "tls"
    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    tls = Tls(ca=folder / "ca.pem", cert=folder / "server.pem", key=folder / "server.key")
    ca.cert_pem.write_to_path(str(tls.ca))
    issued.cert_chain_pems[0].write_to_path(str(tls.cert))
    for pem in issued.cert_chain_pems[1:]:
        pem.write_to_path(str(tls.cert), append=True)
    issued.private_key_pem.write_to_path(str(tls.key))
    return tls


# -- the emulator process ----------------------------------------------------------------


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (Linux /proc), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


class Emulator:
    """`python -m chatgpt4o.testing` in its own process, with counters on exit."""

    def __init__(self, *, tls: Tls | None, stream: bool) -> None:
        command = [sys.executable, "-m", "chatgpt4o.testing", "--reply", REPLY, "--stats"]
        if stream:
            command += ["--stream", "--stream-chunks", str(STREAM_CHUNKS)]
            command += ["--chunk-delay", str(STREAM_CHUNK_DELAY)]
        if tls is not None:
            command += ["--certfile", str(tls.cert), "--keyfile", str(tls.key)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(),
            cwd=WORK,  # not the repository: `-m` puts the current folder first on the path
        )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], EMULATOR_START_TIMEOUT)
        if not ready:
            self.process.kill()
            raise RuntimeError("the emulator printed no URL in time")
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith(("http://127.0.0.1:", "https://127.0.0.1:")):
            self.process.kill()
            raise RuntimeError(f"the emulator did not start: {self.process.stderr.read()}")
        self._cpu_start = _cpu_seconds(self.process.pid)

    def stop(self) -> dict[str, Any]:
        """Stop it; its counters (page_loads, posts, connections) and CPU time."""
        cpu_end = _cpu_seconds(self.process.pid)
        self.process.send_signal(signal.SIGTERM)
        try:
            out, err = self.process.communicate(timeout=EMULATOR_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
        lines = out.strip().splitlines()
        try:
            stats: dict[str, Any] = json.loads(lines[-1])
        except (IndexError, ValueError):
            stats = {"error": f"no counters from the emulator: {err[-300:]}"}
        if cpu_end is not None and self._cpu_start is not None:
            stats["server_cpu_s"] = cpu_end - self._cpu_start
        return stats


# -- one client run ------------------------------------------------------------------------


def run_client(
    client: str,
    workload: str,
    transport: str,
    *,
    sizes: Sizes,
    tls: Tls,
    legacy: Path | None,
    ours_path: Path | None = None,
) -> dict[str, Any]:
    python = legacy if client == "legacy" else Path(sys.executable)
    env = child_env()
    if client == "legacy":
        env.pop("PYTHONPATH", None)  # its own venv, nothing of ours
    if client == "ours" and ours_path is not None:
        env["PYTHONPATH"] = str(ours_path)  # a candidate copy of the package, first on the path
    assert python is not None
    emulator = Emulator(tls=tls if transport == "https" else None, stream=workload == "stream")
    command = [
        str(python), str(CLIENTS_DIR / f"{client}.py"),
        "--url", emulator.url,
        "--workload", workload,
        "--calls", str(sizes.calls(workload)),
        "--tasks", str(sizes.tasks),
        "--expect", REPLY,
        "--time-limit", str(sizes.client_time_limit),
    ]
    if transport == "https":
        command += ["--ca", str(tls.ca)]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, env=env,
            timeout=sizes.client_time_limit + 60, cwd=CLIENTS_DIR,
        )
    except subprocess.TimeoutExpired:
        result: dict[str, Any] = {"failed": "the client did not finish in time"}
    else:
        if done.returncode != 0:
            result = {"failed": f"exit {done.returncode}: {done.stderr.strip()[-500:]}"}
        else:
            result = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        server = emulator.stop()
    result["server"] = server
    return result


# -- import time ----------------------------------------------------------------------------


def _import_us(python: Path, module: str, pythonpath: Path | None = None) -> int:
    """Microseconds `python -X importtime -c "import module"` reports for `module`: the
    cumulative times of the top-level entries of its package (for a dotted name, the
    package and each parent are top-level entries of their own)."""
    env = child_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure with bytecode caches, as users run
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    done = subprocess.run(
        [str(python), "-X", "importtime", "-c", f"import {module}"],
        capture_output=True, text=True, env=env, check=True, cwd=WORK,
    )
    root = module.split(".")[0]
    total = 0
    found = False
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or parts[2].startswith("  "):
            continue  # not an entry, or a nested one (counted in its parent)
        name = parts[2].strip()
        if name == root or name.startswith(root + "."):
            total += int(parts[1].strip())
            found = True
    if not found:
        raise RuntimeError(f"no import time for {module}: {done.stderr[-300:]}")
    return total


def _statement_ms(python: Path, statement: str, pythonpath: Path | None = None) -> float:
    """Milliseconds one fresh process spends in `statement` (perf_counter around it, so
    the interpreter's own start-up and shutdown are left out), bytecode caches used."""
    env = child_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    code = (
        "import time; _t = time.perf_counter(); "
        f"{statement}; print(1000 * (time.perf_counter() - _t))"
    )
    done = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, env=env, check=True, cwd=WORK
    )
    return float(done.stdout.strip().splitlines()[-1])


def _wall_ms(command: list[str]) -> float:
    env = child_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    start = time.perf_counter()
    subprocess.run(command, capture_output=True, env=env, check=True, cwd=WORK)
    return (time.perf_counter() - start) * 1000


def measure_imports(
    legacy: Path | None, ours_path: Path | None = None, repeat: int = 5
) -> dict[str, Any]:
    python = Path(sys.executable)
    _import_us(python, "chatgpt4o", ours_path)  # warm-up: writes the bytecode caches
    ours = [_import_us(python, "chatgpt4o", ours_path) / 1000 for _ in range(repeat)]
    result: dict[str, Any] = {
        "import_chatgpt4o_ms": statistics.median(ours),
        "import_chatgpt4o_runs_ms": ours,
    }
    # What the provider class costs a program that already uses asyncio: fresh
    # processes, the two statements alternating, after one warm-up run of each.
    statements = {"asyncio": "import asyncio", "provider": "from chatgpt4o import Chatgpt4o"}
    for statement in statements.values():
        _statement_ms(python, statement, ours_path)
    timed: dict[str, list[float]] = {key: [] for key in statements}
    for _ in range(IMPORT_REPEAT):
        for key, statement in statements.items():
            timed[key].append(_statement_ms(python, statement, ours_path))
    result.update(
        import_asyncio_ms=statistics.median(timed["asyncio"]),
        import_asyncio_runs_ms=timed["asyncio"],
        import_provider_ms=statistics.median(timed["provider"]),
        import_provider_runs_ms=timed["provider"],
        # the median of the per-pair differences (each pair seconds apart)
        import_provider_over_asyncio_ms=statistics.median(
            p - a for p, a in zip(timed["provider"], timed["asyncio"], strict=True)
        ),
    )
    cli = shutil.which("chatgpt4o", path=str(python.parent))
    if cli:
        _wall_ms([cli, "--help"])
        result["chatgpt4o_help_wall_ms"] = statistics.median(
            _wall_ms([cli, "--help"]) for _ in range(repeat)
        )
        result["python_startup_wall_ms"] = statistics.median(
            _wall_ms([str(python), "-c", "pass"]) for _ in range(repeat)
        )
    if legacy is not None:
        module = "g4f.Provider.not_working.Chatgpt4o"
        _import_us(legacy, module)
        result["import_legacy_ms"] = statistics.median(
            _import_us(legacy, module) / 1000 for _ in range(repeat)
        )
    return result


# -- summary --------------------------------------------------------------------------------


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians per transport, workload and client."""
    cells: dict[str, Any] = {}
    for transport in TRANSPORTS:
        for workload in WORKLOADS:
            for client in CLIENTS:
                mine = [
                    r for r in runs
                    if (r["transport"], r["workload"], r["client"]) == (transport, workload, client)
                ]
                if not mine:
                    continue
                good = [r for r in mine if "elapsed_s" in r and not r.get("errors")]
                key = f"{transport}/{workload}/{client}"
                cell: dict[str, Any] = {
                    "runs": len(mine),
                    "good_runs": len(good),
                    "skipped": next((r["skipped"] for r in mine if "skipped" in r), None),
                    "failures": [
                        r.get("failed") or r.get("first_error")
                        for r in mine
                        if r.get("failed") or r.get("errors")
                    ],
                }
                if good:
                    cell.update(
                        calls_per_s=_median([r["ok"] / r["elapsed_s"] for r in good]),
                        elapsed_s=_median([r["elapsed_s"] for r in good]),
                        cpu_ms_per_call=_median([1000 * r["cpu_s"] / r["ok"] for r in good]),
                        max_rss_mib=_median([r["max_rss_kib"] / 1024 for r in good]),
                        page_gets=max(r["server"].get("page_loads", -1) for r in good),
                        page_gets_min=min(r["server"].get("page_loads", -1) for r in good),
                        connections=_median(
                            [r["server"].get("connections", -1) for r in good]
                        ),
                        server_cpu_share=_median(
                            [
                                r["server"]["server_cpu_s"] / r["elapsed_s"]
                                for r in good
                                if "server_cpu_s" in r["server"]
                            ]
                        ),
                    )
                    if workload == "stream":
                        cell.update(
                            first_piece_ms=_median([1000 * r["first_piece_s"] for r in good]),
                            stream_total_ms=_median([1000 * r["stream_total_s"] for r in good]),
                            pieces=_median([r["pieces"] for r in good]),
                        )
                cells[key] = cell
    return cells


def _run_metric(run: dict[str, Any], metric: str) -> float | None:
    """One run's calls/s, peak RSS (MiB) or first-piece time (ms); None if unusable."""
    if "elapsed_s" not in run or run.get("errors") or not run.get("ok"):
        return None
    if metric == "calls_per_s":
        return float(run["ok"]) / float(run["elapsed_s"])
    if metric == "max_rss_mib":
        return float(run["max_rss_kib"]) / 1024
    if metric == "cpu_ms_per_call":
        return 1000 * float(run["cpu_s"]) / float(run["ok"])
    if metric == "first_piece_ms":
        value = run.get("first_piece_s")
        return None if value is None else 1000 * float(value)
    raise ValueError(metric)


def _paired_ratio(
    runs: list[dict[str, Any]], transport: str, workload: str, a: str, b: str, metric: str
) -> tuple[float | None, list[float]]:
    """The median over rounds of a/b, each round's two runs taken minutes apart at most.

    Pairing runs of the same round cancels most of the drift of a shared machine (other
    work starting or stopping), which a ratio of two medians would keep.
    """
    by_round: dict[tuple[int, str], float] = {}
    for run in runs:
        if (run["transport"], run["workload"]) != (transport, workload):
            continue
        value = _run_metric(run, metric)
        if value is not None:
            by_round[(run["round"], run["client"])] = value
    per_round = [
        by_round[(number, a)] / by_round[(number, b)]
        for number in sorted({number for number, _ in by_round})
        if (number, a) in by_round and by_round.get((number, b))
    ]
    return (statistics.median(per_round) if per_round else None), per_round


def ratios(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Ours against the floor and the legacy provider, as medians of per-round ratios."""
    out: dict[str, Any] = {}

    def put(key: str, transport: str, workload: str, b: str, metric: str) -> None:
        value, per_round = _paired_ratio(runs, transport, workload, "ours", b, metric)
        out[key] = value
        out[key + "/rounds"] = per_round

    for transport in TRANSPORTS:
        for workload in WORKLOADS:
            base = f"{transport}/{workload}"
            put(f"{base}/ours_vs_floor", transport, workload, "floor", "calls_per_s")
            put(f"{base}/ours_vs_legacy", transport, workload, "legacy", "calls_per_s")
            put(f"{base}/cpu_ours_vs_floor", transport, workload, "floor", "cpu_ms_per_call")
        put(f"{transport}/conc/rss_ours_vs_floor", transport, "conc", "floor", "max_rss_mib")
        put(
            f"{transport}/stream/first_piece_ours_vs_floor",
            transport, "stream", "floor", "first_piece_ms",
        )
    return out


def targets(cells: dict[str, Any], rat: dict[str, Any], imports: dict[str, Any]) -> list[dict]:
    checks: list[dict[str, Any]] = []

    def check(name: str, value: float | None, ok: bool | None, goal: str) -> None:
        checks.append(
            {"target": name, "value": value, "goal": goal, "pass": None if ok is None else ok}
        )

    for transport in TRANSPORTS:
        for workload in ("seq", "conc"):
            value = rat.get(f"{transport}/{workload}/ours_vs_floor")
            check(
                f"{WORKLOAD_LABELS[workload]} throughput vs floor, {transport.upper()}",
                value, None if value is None else value >= MIN_FLOOR_RATIO,
                f">= {MIN_FLOOR_RATIO}x",
            )
    for transport in TRANSPORTS:
        for workload in ("seq", "conc"):
            value = rat.get(f"{transport}/{workload}/cpu_ours_vs_floor")
            check(
                f"{WORKLOAD_LABELS[workload]} client CPU per call vs floor, {transport.upper()}",
                value, None if value is None else value <= MAX_CPU_RATIO,
                f"<= {MAX_CPU_RATIO}x",
            )
    value = rat.get("https/seq/ours_vs_legacy")
    check(
        "sequential throughput vs legacy g4f, HTTPS",
        value, None if value is None else value >= MIN_LEGACY_RATIO, f">= {MIN_LEGACY_RATIO}x",
    )
    for transport in TRANSPORTS:
        cell = cells.get(f"{transport}/cold/ours", {})
        gets = cell.get("page_gets")
        check(
            f"cold cache, {transport.upper()}: page GETs (worst round)",
            gets, None if gets is None else gets == 1 and cell.get("page_gets_min") == 1, "== 1",
        )
    value = imports.get("import_chatgpt4o_ms")
    check(
        "import chatgpt4o (median of 5)",
        value, None if value is None else value < MAX_IMPORT_MS, f"< {MAX_IMPORT_MS:g} ms",
    )
    value = imports.get("import_provider_over_asyncio_ms")
    check(
        f"from chatgpt4o import Chatgpt4o, over import asyncio (median of {IMPORT_REPEAT})",
        value, None if value is None else value <= MAX_IMPORT_OVER_ASYNCIO_MS,
        f"<= {MAX_IMPORT_OVER_ASYNCIO_MS:g} ms",
    )
    for transport in TRANSPORTS:
        value = rat.get(f"{transport}/conc/rss_ours_vs_floor")
        check(
            f"peak RSS of the 50-task run vs floor, {transport.upper()}",
            value, None if value is None else value <= MAX_RSS_RATIO, f"<= {MAX_RSS_RATIO}x",
        )
    return checks


# -- reports --------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 0, suffix: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}{suffix}"
    return f"{value}{suffix}"


THROUGHPUT_WORKLOADS = ("seq", "conc", "cold")


def _spread(value: float | None, rounds: list[float] | None) -> str:
    if value is None:
        return "n/a"
    if not rounds or len(rounds) < 2:
        return f"{value:.2f}x"
    return f"{value:.2f}x ({min(rounds):.2f}-{max(rounds):.2f})"


def markdown(report: dict[str, Any]) -> str:
    env, cells, rat, imports = report["env"], report["cells"], report["ratios"], report["imports"]
    sizes = report["sizes"]
    lines = [
        f"Run {env['date']} on {env['machine']}, {env['nproc']} cores ({env['cpu']}), "
        f"Python {env['python']}, {env['system']}; {env['versions']}; code at {env['git']}. "
        f"{sizes['rounds']} rounds, clients alternating. calls/s and the other columns: "
        "medians over the rounds; vs floor and vs legacy: the median of the per-round "
        "ratios (ours over theirs: higher is better for calls/s, lower for CPU), lowest "
        "and highest round in brackets. Load average "
        f"{env['load_before']} before, {env['load_after']} after (the machine is shared: "
        f"compare ratios, not absolute numbers).",
        "",
        "| transport | workload | client | calls/s | vs floor | vs legacy | client CPU "
        "ms/call | CPU vs floor | server CPU | peak RSS MiB | page GETs | TCP conns |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for transport in TRANSPORTS:
        for workload in THROUGHPUT_WORKLOADS:
            calls = sizes[workload]
            label = f"{WORKLOAD_LABELS[workload]} ({calls} calls"
            label += f", {sizes['tasks']} tasks)" if workload == "conc" else ")"
            for client in CLIENTS:
                cell = cells.get(f"{transport}/{workload}/{client}")
                if cell is None:
                    continue
                if "calls_per_s" not in cell:
                    why = cell.get("skipped") or "; ".join(map(str, cell["failures"]))[:80]
                    lines.append(
                        f"| {transport.upper()} | {label} | {CLIENT_LABELS[client]} | "
                        f"n/a: {why} | | | | | | | | |"
                    )
                    continue
                ours = client == "ours"
                base = f"{transport}/{workload}"
                vs_floor = rat.get(f"{transport}/{workload}/ours_vs_floor") if ours else None
                vs_legacy = rat.get(f"{transport}/{workload}/ours_vs_legacy") if ours else None
                cpu_vs = rat.get(f"{transport}/{workload}/cpu_ours_vs_floor") if ours else None
                flag = (
                    "" if cell["good_runs"] == cell["runs"]
                    else f" ({cell['good_runs']}/{cell['runs']} runs clean)"
                )
                share = cell.get("server_cpu_share")
                lines.append(
                    f"| {transport.upper()} | {label} | {CLIENT_LABELS[client]}{flag} | "
                    f"{_fmt(cell['calls_per_s'])} | "
                    f"{_spread(vs_floor, rat.get(f'{base}/ours_vs_floor/rounds'))} | "
                    f"{_spread(vs_legacy, rat.get(f'{base}/ours_vs_legacy/rounds'))} | "
                    f"{_fmt(cell['cpu_ms_per_call'], 2)} | "
                    f"{_spread(cpu_vs, rat.get(f'{base}/cpu_ours_vs_floor/rounds'))} | "
                    f"{_fmt(None if share is None else 100 * share, 0, ' %')} | "
                    f"{_fmt(cell['max_rss_mib'], 1)} | {_fmt(cell['page_gets'])} | "
                    f"{_fmt(cell['connections'], 0)} |"
                )
    lines += [
        "",
        f"Streaming: {sizes['stream']} sequential calls per run, a {sizes['stream_chunks']}-chunk "
        f"reply, one chunk every {sizes['stream_chunk_delay'] * 1000:g} ms (medians of the "
        "per-run medians):",
        "",
        "| transport | client | first piece ms | whole stream ms | client CPU ms/stream | "
        "pieces |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for transport in TRANSPORTS:
        for client in CLIENTS:
            cell = cells.get(f"{transport}/stream/{client}", {})
            if "first_piece_ms" in cell:
                lines.append(
                    f"| {transport.upper()} | {CLIENT_LABELS[client]} | "
                    f"{_fmt(cell['first_piece_ms'], 2)} | {_fmt(cell['stream_total_ms'], 1)} | "
                    f"{_fmt(cell['cpu_ms_per_call'], 1)} | {_fmt(cell['pieces'], 0)} |"
                )
            elif cell:
                why = cell.get("skipped") or "; ".join(map(str, cell["failures"]))[:80]
                lines.append(
                    f"| {transport.upper()} | {CLIENT_LABELS[client]} | n/a: {why} | | | |"
                )
    lines += [
        "",
        f"Import: `python -X importtime -c \"import chatgpt4o\"`, median of 5: "
        f"{_fmt(imports.get('import_chatgpt4o_ms'), 1, ' ms')}; in a fresh process, "
        f"median of {IMPORT_REPEAT} alternated: `from chatgpt4o import Chatgpt4o` "
        f"{_fmt(imports.get('import_provider_ms'), 1, ' ms')}, `import asyncio` "
        f"{_fmt(imports.get('import_asyncio_ms'), 1, ' ms')}, the difference (median of the "
        f"pairs) {_fmt(imports.get('import_provider_over_asyncio_ms'), 1, ' ms')}; "
        f"`chatgpt4o --help` wall "
        f"{_fmt(imports.get('chatgpt4o_help_wall_ms'), 0, ' ms')} (bare `python -c pass`: "
        f"{_fmt(imports.get('python_startup_wall_ms'), 0, ' ms')}); legacy `import "
        f"g4f.Provider.not_working.Chatgpt4o`: {_fmt(imports.get('import_legacy_ms'), 0, ' ms')}.",
        "",
        "| target | measured | goal | result |",
        "| --- | ---: | --- | --- |",
    ]
    for item in report["targets"]:
        value = item["value"]
        # ratios to three places: 1.15 shown for 1.153 next to "<= 1.15x" would mislead
        digits = 3 if item["goal"].endswith("x") else 2
        shown = _fmt(value, digits) if isinstance(value, float) else _fmt(value)
        verdict = {True: "pass", False: "**FAIL**", None: "not measured"}[item["pass"]]
        lines.append(f"| {item['target']} | {shown} | {item['goal']} | {verdict} |")
    return "\n".join(lines) + "\n"


def chart(report: dict[str, Any], path: Path) -> None:
    """Calls per second per client and workload; beside it, the stream's first piece."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = report["cells"]
    env = report["env"]
    colors = {"ours": "#2b7bb9", "floor": "#9a9a9a", "legacy": "#d9822b"}
    width = 0.27
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(10, 4), dpi=100, gridspec_kw={"width_ratios": [3, 1]}
    )
    groups = [(t, w) for t in TRANSPORTS for w in THROUGHPUT_WORKLOADS]
    for index, client in enumerate(CLIENTS):
        xs, ys = [], []
        for position, (transport, workload) in enumerate(groups):
            value = cells.get(f"{transport}/{workload}/{client}", {}).get("calls_per_s")
            if value is not None:
                xs.append(position + (index - 1) * width)
                ys.append(value)
        left.bar(xs, ys, width, label=CLIENT_LABELS[client], color=colors[client])
    left.set_xticks(range(len(groups)))
    left.set_xticklabels([f"{WORKLOAD_LABELS[w]}\n{t.upper()}" for t, w in groups], fontsize=8)
    left.set_ylabel("calls per second (median)")
    left.legend(fontsize=8)
    left.grid(axis="y", alpha=0.3)
    left.set_title(
        f"chatgpt4o vs raw curl_cffi vs g4f 0.4.5.0 ({env['date'][:10]}, "
        f"{env['nproc']} cores, {env['machine']})",
        fontsize=9,
    )
    for index, client in enumerate(("ours", "floor")):
        xs, ys = [], []
        for position, transport in enumerate(TRANSPORTS):
            value = cells.get(f"{transport}/stream/{client}", {}).get("first_piece_ms")
            if value is not None:
                xs.append(position + (index - 0.5) * width)
                ys.append(value)
        right.bar(xs, ys, width, color=colors[client], label=CLIENT_LABELS[client])
    right.set_xticks(range(len(TRANSPORTS)))
    right.set_xticklabels([t.upper() for t in TRANSPORTS], fontsize=8)
    right.set_ylabel("ms to the first piece (median)")
    right.set_title("stream, 200 chunks", fontsize=9)
    right.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _git_state() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "chatgpt4o"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown commit"
    return f"commit {head}" + (" with uncommitted changes in chatgpt4o/" if dirty else "")


def environment() -> dict[str, Any]:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import curl_cffi

    import chatgpt4o

    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": platform.machine(),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "git": _git_state(),
        "versions": f"chatgpt4o {chatgpt4o.__version__} on curl_cffi {curl_cffi.__version__}; "
        f"legacy g4f 0.4.5.0 on curl_cffi 0.7.4",
    }


def update_readme(table: str) -> None:
    readme = HERE / "README.md"
    if not readme.exists():
        return
    text = readme.read_text()
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    if start not in text or end not in text:
        return
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{start}\n{table}{end}{tail}")


# -- main -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small workloads, one round")
    parser.add_argument("--rounds", type=int, help="rounds (default 5; --quick: 1)")
    parser.add_argument("--clients", default=",".join(CLIENTS), help="ours,floor,legacy")
    parser.add_argument("--transports", default=",".join(TRANSPORTS), help="http,https")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="seq,conc,cold,stream")
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    parser.add_argument("--no-imports", action="store_true", help="skip the import timing")
    parser.add_argument(
        "--ours-pythonpath",
        type=Path,
        metavar="DIR",
        help="run the 'ours' client with DIR first on PYTHONPATH (a candidate copy of the "
        "chatgpt4o package, to measure a change before making it); results go to .work/",
    )
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="run nothing: write results.md, the chart and (for results/) this README's "
        "results section again from a results.json, with the targets as they are now",
    )
    parser.add_argument(
        "--snapshot",
        metavar="REV",
        help="measure chatgpt4o/ as committed at REV (e.g. HEAD), exported to .work/, "
        "not the work tree: for a work tree that others edit during the run",
    )
    return parser.parse_args(argv)


def _pick(value: str, allowed: tuple[str, ...]) -> list[str]:
    picked = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in picked if v not in allowed]
    if bad:
        raise SystemExit(f"unknown: {', '.join(bad)} (choose from {', '.join(allowed)})")
    return [v for v in allowed if v in picked]


def render(path: Path) -> int:
    """Write the reports of a recorded run again (after a change of format or targets)."""
    report = json.loads(path.read_text())
    report["targets"] = targets(report["cells"], report["ratios"], report["imports"])
    out = path.parent
    table = markdown(report)
    (out / "results.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "results.md").write_text(table)
    chart(report, out / "throughput.png")
    if out.resolve() == RESULTS.resolve():
        update_readme(table)
    print(table)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render is not None:
        return render(args.render)
    sizes = QUICK if args.quick else FULL
    if args.rounds:
        sizes = Sizes(**{**sizes.__dict__, "rounds": args.rounds})
    clients = _pick(args.clients, CLIENTS)
    transports = _pick(args.transports, TRANSPORTS)
    workloads = _pick(args.workloads, WORKLOADS)
    ours_path = args.ours_pythonpath.resolve() if args.ours_pythonpath else None
    if ours_path is not None and not (ours_path / "chatgpt4o" / "__init__.py").exists():
        raise SystemExit(f"--ours-pythonpath: no chatgpt4o package in {ours_path}")
    default_out = RESULTS
    if args.quick:
        default_out = WORK / "quick"
    elif ours_path is not None:
        default_out = WORK / "candidate"
    out = args.out or default_out
    out.mkdir(parents=True, exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)

    global CODE_PATH
    snapshot = None
    if args.snapshot:
        snapshot, CODE_PATH = export_snapshot(args.snapshot)
        log(f"measuring chatgpt4o/ of commit {snapshot}, exported to {CODE_PATH}")
    began = time.monotonic()
    env = environment()
    if snapshot is not None:
        env["git"] = (
            f"commit {snapshot} (its chatgpt4o/ exported with git archive and run from "
            "there, so that edits to the work tree during the run do not count)"
        )
    if ours_path is not None:
        env["git"] = f"a candidate package from {ours_path}"
    legacy = None
    if "legacy" in clients:
        try:
            legacy = ensure_legacy_venv()
        except (OSError, subprocess.SubprocessError) as err:
            log(f"no legacy venv ({err}); the legacy client is left out of this run")
            clients.remove("legacy")
    tls = make_tls()
    imports = {} if args.no_imports else measure_imports(legacy, ours_path)
    if imports:
        log(f"import chatgpt4o: {imports['import_chatgpt4o_ms']:.1f} ms (median)")

    runs: list[dict[str, Any]] = []
    for round_number in range(1, sizes.rounds + 1):
        for transport in transports:
            for workload in workloads:
                for client in clients:
                    started = time.monotonic()
                    result = run_client(
                        client, workload, transport,
                        sizes=sizes, tls=tls, legacy=legacy, ours_path=ours_path,
                    )
                    result.update(
                        round=round_number, transport=transport, workload=workload, client=client
                    )
                    runs.append(result)
                    if "elapsed_s" in result:
                        summary = (
                            f"{result['ok']}/{result['calls']} ok in {result['elapsed_s']:.2f} s, "
                            f"page GETs {result['server'].get('page_loads')}, "
                            f"conns {result['server'].get('connections')}"
                        )
                        if result.get("first_error"):
                            summary += f"; first error: {result['first_error'][:120]}"
                    else:
                        summary = result.get("skipped") or result.get("failed", "?")
                    log(
                        f"round {round_number} {transport:5} {workload:6} {client:6} "
                        f"{summary} [{time.monotonic() - started:.1f} s]"
                    )

    env["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    env["total_s"] = round(time.monotonic() - began, 1)
    cells = summarize(runs)
    rat = ratios(runs)
    report = {
        "env": env,
        "sizes": {
            **sizes.__dict__,
            "reply_chars": len(REPLY),
            "stream_chunks": STREAM_CHUNKS,
            "stream_chunk_delay": STREAM_CHUNK_DELAY,
        },
        "imports": imports,
        "cells": cells,
        "ratios": rat,
        "targets": targets(cells, rat, imports),
        "runs": runs,
    }
    table = markdown(report)
    (out / "results.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "results.md").write_text(table)
    chart(report, out / "throughput.png")
    if out == RESULTS and not args.quick and ours_path is None:
        update_readme(table)
    print(table)
    log(f"wrote {out}/results.json, results.md, throughput.png in {env['total_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
