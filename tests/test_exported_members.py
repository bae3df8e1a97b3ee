"""The package's public names: `__all__`, the lazy-import table and the type-checking
imports of `chatgpt4o/__init__.py` say the same thing, and every name resolves."""

from __future__ import annotations

import ast
import typing
from pathlib import Path

import chatgpt4o

INIT = Path(chatgpt4o.__file__)
DEFINED_IN_INIT = {"__version__", "aclose"}


def type_checking_imports() -> set[str]:
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom)
                names.update(alias.asname or alias.name for alias in statement.names)
    return names


def test_all_is_sorted_and_unique() -> None:
    assert list(chatgpt4o.__all__) == sorted(set(chatgpt4o.__all__))


def test_lazy_table_matches_all() -> None:
    lazy = set(chatgpt4o._HOME_OF)
    assert lazy | DEFINED_IN_INIT == set(chatgpt4o.__all__)


def test_type_checking_imports_match_all() -> None:
    assert type_checking_imports() | DEFINED_IN_INIT == set(chatgpt4o.__all__)


def test_every_public_name_resolves_to_its_home() -> None:
    for name in chatgpt4o.__all__:
        value = getattr(chatgpt4o, name)
        home = chatgpt4o._HOME_OF.get(name)
        alias = typing.get_origin(value) is not None  # Messages = Sequence[...]: no class
        if home is not None and isinstance(value, type) and not alias:
            # errors show under the package name; everything else under its module
            assert value.__module__ in ("chatgpt4o", f"chatgpt4o{home}"), name


def test_private_names_are_not_exported() -> None:
    exported = [name for name in chatgpt4o.__all__ if name != "__version__"]
    assert not [name for name in exported if name.startswith("_")]


def test_dir_lists_the_public_names() -> None:
    assert set(chatgpt4o.__all__) <= set(dir(chatgpt4o))
