"""`chatgpt4o check [URL]`: does the page run a chat this library speaks, and would the
site take a message? Found out without sending one.

    chatgpt4o check https://example.org/chat/
    chatgpt4o check --json --proxy socks5h://127.0.0.1:9050 https://example.org/chat/

The steps, each timed:

1. **page**: one load of the page, as `discover()` does it (every supported plugin's page
   reader gets the same bytes; the status rules of docs/protocol.md §4.7);
2. **plugin**: which chatbot the readers found, and what the page tells about it (the
   protocol's `describe`: the bot, streaming, hints at the plugin's version);
3. **session**: only where the plugin hands out its nonce by a request of its own (AI
   Engine 2.4.4 and newer: `start_session`, §9.2);
4. **nonce**: one harmless request (the protocol's `probe`): the chat request with an
   empty message, which the plugin refuses after checking the nonce and before anything
   reaches the model (docs/protocol.md §11).

It exits 0 when a supported chat is found and the site accepts its nonce; otherwise
with the chat's exit code for the error met (`_command.exit_code_for`): a page without a
supported chat, or a rejected nonce, is 5; a network failure 3; a block 4. What was
found up to the error is shown too, as text on stdout, or as the one JSON object of
`--json`; the error line goes to stderr.

Every string shown passes through the run's `Scrubber`: no nonce, cookie or proxy
password is ever printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from ._command import CommandParser, exit_code_for, run_async, run_command
from ._config import check_bot
from ._constants import DEFAULT_IMPERSONATE, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT
from ._exceptions import (
    NonceError,
    ProviderError,
    ProviderTimeoutError,
    ResponseError,
    ServiceError,
)
from ._options import add_bot_option, add_site_options, bot_option, site_options
from ._terminal import EXIT_OK, PROG, Scrubber, UsageError, describe, report, write

if TYPE_CHECKING:
    from ._transports.base import AsyncTransport

__all__ = ["CheckReport", "Step", "build_parser", "check_site", "main"]

#: What `read_probe`'s verdict is called in the report.
_VERDICTS = {True: "accepted", False: "rejected", None: "unclear"}


@dataclass
class Step:
    """One step of a check: its name, how long it took, and what came of it."""

    name: str
    seconds: float
    ok: bool
    detail: str


@dataclass
class CheckReport:
    """What a check found; `error` is the error that ended it, if any."""

    url: str
    steps: list[Step] = field(default_factory=list)
    #: The provider class that speaks the chat found ("Chatgpt4o", "AIEngine").
    provider: str | None = None
    #: What the page told about the chatbot (the protocol's `describe`).
    page: dict[str, str | int | bool | None] = field(default_factory=dict)
    #: "accepted", "rejected" or "unclear"; None when the check did not get that far.
    nonce: str | None = None
    elapsed: float = 0.0
    error: ProviderError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.nonce == "accepted"


# -- the check ---------------------------------------------------------------------------


def _discovery() -> Any:
    """`discover()`'s page reading, with the time its readers take counted apart from
    the page's transfer (imported here: the engine and the providers only now)."""
    from ._discover import SUPPORTED, _Discovery
    from .protocols.base import PageReader

    class TimedReader(PageReader[Any]):
        def __init__(self, inner: PageReader[Any], owner: TimedDiscovery) -> None:
            self._inner = inner
            self._owner = owner

        def feed(self, chunk: bytes) -> bool:
            started = time.perf_counter()
            try:
                return self._inner.feed(chunk)
            finally:
                self._owner.reading += time.perf_counter() - started
                self._owner.received += len(chunk)

        def text(self) -> str:
            return self._inner.text()

        def result(self, *, page_url: str, site_url: str) -> Any:
            started = time.perf_counter()
            self._owner.loaded = True  # the status was judged before the readers are asked
            try:
                return self._inner.result(page_url=page_url, site_url=site_url)
            finally:
                self._owner.reading += time.perf_counter() - started

    class TimedDiscovery(_Discovery):
        def __init__(self) -> None:
            super().__init__(SUPPORTED)
            self.reading = 0.0  # seconds in the readers, during the last load
            self.received = 0
            self.loaded = False

        def page_reader(self, bot: str | None = None) -> PageReader[Any]:
            self.reading, self.received, self.loaded = 0.0, 0, False
            return TimedReader(super().page_reader(bot), self)

    return TimedDiscovery()


async def check_site(
    url: str,
    *,
    bot_id: str | int | None = None,
    proxy: str | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    cookies: dict[str, str] | None = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
    backend: str | None = None,
    transport: AsyncTransport | None = None,
) -> CheckReport:
    """Check the page at `url` (see the module docstring); `timeout` bounds the whole
    check, and each step retries as a call does. The library's errors end up in the
    report; bad arguments raise TypeError or ValueError before any I/O."""
    from ._config import check_site_url
    from ._discover import SUPPORTED
    from ._engine import Engine, SiteState

    url = check_site_url(url)
    bot = check_bot(bot_id)
    discovery = _discovery()
    engine: Engine[Any, Any] = Engine(discovery, SiteState(), url, "check", bot)
    started = time.monotonic()

    def call() -> Any:
        left = None if timeout is None else timeout - (time.monotonic() - started)
        if left is not None and left <= 0:
            raise ProviderTimeoutError(f"The check did not finish within {timeout:g} s")
        return engine.prepare(
            None, proxy=proxy, timeout=left, cookies=cookies, max_retries=max_retries,
            backend=backend, impersonate=DEFAULT_IMPERSONATE, verify=True,
            transport=transport, client=None,
        )

    report = CheckReport(url)
    first_call = call()  # the arguments are checked here, before any I/O
    step, step_started = "page", time.monotonic()
    try:
        try:
            index, credentials = await engine.read_page(first_call)
        finally:
            total = time.monotonic() - step_started
            if discovery.loaded:
                kib = discovery.received / 1024
                report.steps.append(Step("page", total - discovery.reading, True,
                                         f"loaded, {kib:.1f} KiB read"))
                step, step_started = "plugin", time.monotonic() - discovery.reading
        provider = SUPPORTED[index]
        protocol = provider.protocol
        report.provider = provider.__name__
        report.page = protocol.describe(credentials)
        found = f"{report.page.get('plugin')}, bot {report.page.get('bot')}"
        report.steps.append(Step("plugin", time.monotonic() - step_started, True, found))

        completion = protocol.complete(credentials)
        if completion is not None:
            step, step_started = "session", time.monotonic()
            completed = await engine.exchange(
                call(), completion, lambda answer: protocol.read_completion(credentials, answer)
            )
            if completed is None:
                raise ResponseError(f"{protocol.name}: the site did not hand out a nonce")
            if completed.nonce:
                said = "started: the site handed out a nonce"
            else:
                said = "the site has no session route (older than 2.4.4): no nonce sent"
                report.page["version"] = "older than 2.4.4"
            report.steps.append(Step("session", time.monotonic() - step_started, True, said))
            credentials = completed

        probe = protocol.probe(credentials)
        if probe is not None:
            step, step_started = "nonce", time.monotonic()
            verdict = await engine.exchange(
                call(), probe, lambda answer: protocol.read_probe(credentials, answer)
            )
            report.nonce = _VERDICTS[verdict.accepted]
            seconds = time.monotonic() - step_started
            if verdict.accepted is False:
                raise NonceError(verdict.said, prefix="The site rejected the chat nonce",
                                 kind="nonce")
            if verdict.accepted is None:
                raise ServiceError(
                    verdict.said,
                    prefix="Cannot tell whether the site accepts the nonce: its translated "
                    "answer has the shape of both a rejected nonce and the refusal of an "
                    "empty message (AI Power up to 1.8.90)",
                )
            report.steps.append(Step(
                "nonce", seconds, True,
                f"accepted: the empty test message was refused before the model ({verdict.said})",
            ))
    except ProviderError as error:
        report.error = error
        if not report.steps or report.steps[-1].name != step:
            seconds = time.monotonic() - step_started
            report.steps.append(Step(step, seconds, False, describe(error, Scrubber())))
    report.elapsed = time.monotonic() - started
    return report


# -- showing the report ------------------------------------------------------------------


def _clean(value: Any, scrub: Scrubber) -> Any:
    """`value` with every string scrubbed of secrets."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {key: _clean(item, scrub) for key, item in value.items()}
    if isinstance(value, list):
        return [_clean(item, scrub) for item in value]
    return value


def report_json(report: CheckReport) -> dict[str, Any]:
    """The report as the JSON object `--json` prints (before scrubbing)."""
    error = report.error
    return {
        "url": report.url,
        "ok": report.ok,
        "plugin": report.page.get("plugin"),
        "provider": report.provider,
        "nonce_check": report.nonce,
        "page": report.page,
        "steps": [
            {"step": s.name, "seconds": round(s.seconds, 3), "ok": s.ok, "detail": s.detail}
            for s in report.steps
        ],
        "elapsed": round(report.elapsed, 3),
        "error": None if error is None else {
            "type": type(error).__name__,
            # The line the command prints on stderr, before this module's own scrubbing.
            "message": describe(error, Scrubber()),
            "exit_code": exit_code_for(error),
        },
    }


def _shown(value: str | int | bool | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def report_text(report: CheckReport) -> str:
    """The report as the text `chatgpt4o check` prints (before scrubbing)."""
    lines = [f"{PROG} check {report.url}"]
    for step in report.steps:
        state = "" if step.ok else "failed: "
        lines.append(f"  {step.name:<8} {step.seconds:7.3f} s  {state}{step.detail}")
    if report.page:
        lines.append("the page tells:")
        width = max(len(name) for name in report.page)
        lines += [f"  {name:<{width}}  {_shown(value)}" for name, value in report.page.items()]
    if report.ok:
        lines.append(
            f"ok: {report.provider} speaks this chat, and the site accepts its nonce "
            f"({report.elapsed:.3f} s)"
        )
    return "\n".join(lines) + "\n"


def show(report: CheckReport, *, as_json: bool, out: IO[str], scrub: Scrubber) -> None:
    """Print the report on `out`: one JSON object, or text; secrets scrubbed."""
    if as_json:
        text = json.dumps(_clean(report_json(report), scrub), ensure_ascii=False)
        write(out, text + "\n")
    else:
        write(out, "\n".join(scrub(line) for line in report_text(report).split("\n")))


# -- the command -------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The parser of `chatgpt4o check`."""
    parser = CommandParser(
        prog=f"{PROG} check",
        usage=f"{PROG} check [options] [URL]",
        description=(
            "Tell whether the page at URL runs a chat this library speaks (AI Power of any "
            "version, or AI Engine), which one, what the page tells about it, and whether "
            "the site accepts its nonce, with the time each step took. No chat message is "
            "sent: at most one request with an empty message, which the plugin refuses "
            "before the model."
        ),
        epilog=(
            "exit codes: 0 a supported chat, nonce accepted; 3 network failure or "
            "timeout; 4 blocked or rate-limited; 5 no supported chat, nonce rejected, or "
            "another bad answer; 2 usage (as for the chat: see chatgpt4o --help)"
        ),
        allow_abbrev=False,
    )
    parser.add_argument(
        "page", nargs="?", metavar="URL",
        help="the page with the chatbot (or --url, or the environment's default)",
    )
    add_site_options(parser)
    add_bot_option(parser, doing="check")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logs, and tracebacks, on stderr"
    )
    return parser


def _run(args: argparse.Namespace, scrub: Scrubber) -> int:
    if args.page is not None:
        if args.url is not None:
            raise UsageError("give the page as URL or as --url, not both")
        args.url = args.page
    site = site_options(args, os.environ, scrub)
    bot = bot_option(args)

    result = run_async(check_site(site.site_url, bot_id=bot, **site.call_options))
    show(result, as_json=args.json, out=sys.stdout, scrub=scrub)
    if result.error is not None:
        report(result.error, sys.stderr, scrub, verbose=args.verbose)
        return exit_code_for(result.error)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run `chatgpt4o check` with `argv` (the words after `check`); the exit code."""
    return run_command(list(sys.argv[2:] if argv is None else argv), build_parser(), _run)
