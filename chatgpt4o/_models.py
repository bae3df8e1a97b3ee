"""`chatgpt4o models [--url URL]`: the models a provider takes, and their aliases.

    chatgpt4o models                             # Chatgpt4o's (chatgpt4o.one), no I/O
    chatgpt4o models --url https://example.org   # the provider discover() finds there
    chatgpt4o models --json

Without a site (no --url, no CHATGPT4O_URL) nothing is sent: the list is
`Chatgpt4o`'s. With one, the page is loaded once (`discover()`), and the list is that
of the provider class for the chatbot found there, with the site options and exit
codes of the chat (`_command.run_command`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from ._command import CommandParser, run_async, run_command
from ._constants import DEFAULT_SITE_URL
from ._options import add_site_options, site_options
from ._terminal import EXIT_OK, PROG, Scrubber, write

__all__ = ["build_parser", "listing", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The parser of `chatgpt4o models`."""
    parser = CommandParser(
        prog=f"{PROG} models",
        usage=f"{PROG} models [--url URL] [options]",
        description=(
            "List the models and aliases the provider takes: Chatgpt4o's, or, with --url, "
            "those of the provider for the chatbot found on that page (one page load)."
        ),
        allow_abbrev=False,
    )
    add_site_options(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logs, and tracebacks, on stderr"
    )
    return parser


def listing(provider: Any, site: str) -> dict[str, Any]:
    """What `--json` prints for `provider` (a `WordPressChat` class) at `site`."""
    from ._provider import AIEngine

    default = provider.default_model
    aliases: dict[str, str] = dict(provider.model_aliases)
    return {
        "provider": provider.__name__,
        "site": site,
        "default": default,
        "models": [
            {
                "id": model,
                "default": model == default,
                "aliases": sorted(alias for alias, target in aliases.items() if target == model),
            }
            for model in provider.get_models()
        ],
        "aliases": aliases,
        # AI Engine: the site's settings choose the model; the name is only checked.
        "chosen_by_site": issubclass(provider, AIEngine),
    }


def _text(found: dict[str, Any]) -> str:
    lines = [f"{found['provider']} at {found['site']}"]
    width = max(len(model["id"]) for model in found["models"])
    for model in found["models"]:
        notes = ["default"] if model["default"] else []
        if model["aliases"]:
            notes.append("aliases: " + ", ".join(model["aliases"]))
        lines.append(f"  {model['id']:<{width}}  {'; '.join(notes)}".rstrip())
    if found["chosen_by_site"]:
        lines.append("(the site's settings choose the model; the name is only checked)")
    return "\n".join(lines) + "\n"


def _run(args: argparse.Namespace, scrub: Scrubber) -> int:
    site = site_options(args, os.environ, scrub)
    from ._provider import Chatgpt4o

    provider: Any = Chatgpt4o
    if site.url is not None:
        from ._discover import discover

        provider = run_async(discover(site.url, **site.call_options))
    found = listing(provider, site.url or DEFAULT_SITE_URL)
    if args.json:
        write(sys.stdout, scrub(json.dumps(found, ensure_ascii=False)) + "\n")
    else:
        write(sys.stdout, scrub(_text(found)))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run `chatgpt4o models` with `argv` (the words after `models`); the exit code."""
    return run_command(list(sys.argv[2:] if argv is None else argv), build_parser(), _run)
