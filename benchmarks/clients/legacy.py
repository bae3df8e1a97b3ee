"""Benchmark client 3: the legacy provider, g4f 0.4.5.0's `Chatgpt4o` (not_working).

Runs in its own venv (benchmarks/.venv-legacy: g4f==0.4.5.0, curl_cffi==0.7.4). A
subclass only changes `url`; the provider's code runs untouched. For HTTPS, curl_cffi
0.7.4's default CA bundle (`curl_cffi.curl.DEFAULT_CACERT`, certifi's file) is pointed
at the throwaway CA, because the provider gives its session no `verify` of its own.

The provider has no streaming: `create_async` JSON-parses the whole body, so the
stream workload is skipped.
"""

from __future__ import annotations

from importlib.metadata import version

import curl_cffi
import curl_cffi.curl
import g4f.debug
from _harness import PROMPT, Client, main
from g4f.Provider.not_working.Chatgpt4o import Chatgpt4o

MESSAGES = [{"role": "user", "content": PROMPT}]


def setup(url: str, ca: str | None) -> Client:
    g4f.debug.version_check = False  # never ask PyPI (the provider alone does not, anyway)
    if ca:
        curl_cffi.curl.DEFAULT_CACERT = ca

    class Bench(Chatgpt4o):
        pass

    Bench.url = url

    return Client(
        call=lambda: Bench.create_async("gpt-4o-mini", MESSAGES),
        info={"g4f": version("g4f"), "curl_cffi": curl_cffi.__version__},
    )


if __name__ == "__main__":
    main(setup)
