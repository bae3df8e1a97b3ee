"""Imports run one way: the command line -> the providers -> the engine -> the protocol
modules and the transports. Read from the source (imports inside functions included,
type-checking-only imports left out), so that a cycle or a wrong-way import fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "chatgpt4o"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imports_of(name: str) -> set[str]:
    path = MODULES[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
        for inner in ast.walk(node)
    }
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join([*base, *([node.module] if node.module else [])])
            candidates = {target} | {f"{target}.{alias.name}" for alias in node.names}
            found |= {candidate for candidate in candidates if candidate in MODULES}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in MODULES}
    found.discard(name)
    found.discard("chatgpt4o")  # the package's lazy namespace, not a layer
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def reachable(start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in GRAPH[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_there_is_no_import_cycle() -> None:
    cycles = sorted(name for name in GRAPH if name in reachable(name))
    assert cycles == []


@pytest.mark.parametrize(
    ("lower", "never"),
    [
        # the engine knows no protocol, no provider, no command line
        ("chatgpt4o._engine", ("chatgpt4o.protocols.wpaicg", "chatgpt4o._provider",
                               "chatgpt4o._cli", "chatgpt4o._chat")),
        # a protocol does no I/O: no transport but the interface, no pool, no engine
        ("chatgpt4o.protocols.wpaicg", ("chatgpt4o._engine", "chatgpt4o._pool",
                                        "chatgpt4o._transports.curl",
                                        "chatgpt4o._transports.httpx", "chatgpt4o._provider")),
        ("chatgpt4o.protocols.base", ("chatgpt4o._engine", "chatgpt4o._pool")),
        # transports know nothing above them
        ("chatgpt4o._transports.curl", ("chatgpt4o._engine", "chatgpt4o.protocols.base",
                                        "chatgpt4o._provider")),
        ("chatgpt4o._transports.httpx", ("chatgpt4o._engine", "chatgpt4o.protocols.base",
                                         "chatgpt4o._provider")),
        # the providers never reach up to the commands or the server
        ("chatgpt4o._provider", ("chatgpt4o._cli", "chatgpt4o._chat", "chatgpt4o._command",
                                 "chatgpt4o._check", "chatgpt4o.server._app",
                                 "chatgpt4o.server._command")),
        ("chatgpt4o._discover", ("chatgpt4o._cli", "chatgpt4o._command", "chatgpt4o.server")),
    ],
)
def test_imports_run_one_way(lower: str, never: tuple[str, ...]) -> None:
    assert not reachable(lower) & set(never)


def test_the_commands_and_the_server_use_the_providers_not_what_is_below_them() -> None:
    below = ("chatgpt4o._engine", "chatgpt4o._transports", "chatgpt4o.protocols.")
    above = [
        name for name in GRAPH
        if name.startswith("chatgpt4o.server")
        or name in ("chatgpt4o._cli", "chatgpt4o._chat", "chatgpt4o._command",
                    "chatgpt4o._models", "chatgpt4o._logs", "chatgpt4o._llm")
    ]
    assert "chatgpt4o.server._app" in above
    for name in above:
        assert not {target for target in GRAPH[name] if target.startswith(below)}, name


def test_the_emulator_imports_nothing_of_the_client() -> None:
    # (chatgpt4o.testing hands out MockTransport lazily, by name, not by an import)
    for name, targets in GRAPH.items():
        if name.startswith("chatgpt4o.testing"):
            outside = {target for target in targets if not target.startswith("chatgpt4o.testing")}
            assert outside == set(), name
