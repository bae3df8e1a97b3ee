"""An OpenAI-compatible HTTP server in front of a site's chatbot: `chatgpt4o serve`.

    from chatgpt4o.server import create_app
    app = create_app("https://example.org/chat/", api_key="sk-local")

`create_app` returns an ASGI application (Starlette) for any ASGI server; the command
runs it under uvicorn, and `uvicorn --factory chatgpt4o.server:create_app` (with
`--workers N`, or gunicorn's uvicorn workers) reads its settings from the environment.
Both need the `server` extra (`pip install ".[server]"` in a clone). The command also sends
a response's head with its body in one send (`_uvicorn.HTTP_PROTOCOL`) and tunes the
garbage collector while it serves (`_command`); under `uvicorn --factory` both are
uvicorn's and Python's defaults, which cost some CPU per request.

Inside: `_app` (the application and its endpoints), `_openai` (the request and answer
shapes), `_errors` (OpenAI-shaped errors, and which status each library error gets),
`_access` (the access log), `_settings` (the configuration) and `_command` (`chatgpt4o
serve`). Starlette is imported by `create_app`, not by this package.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ._settings import DEFAULT_MAX_BODY_SIZE, ENV_API_KEY, server_config

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from .._provider import WordPressChat

__all__ = ["DEFAULT_MAX_BODY_SIZE", "ENV_API_KEY", "create_app"]


def create_app(
    url: str | None = None,
    *,
    api_key: str | None = None,
    proxy: str | None = None,
    timeout: float | None = None,
    retries: int | None = None,
    cookies: Mapping[str, str] | None = None,
    bot_id: str | None = None,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    provider: type[WordPressChat] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Starlette:
    """The server's ASGI application, for the site at `url`.

    What is left as None comes from the environment (`environ`, default `os.environ`),
    as for the command: `CHATGPT4O_URL`, `CHATGPT4O_API_KEY`, `CHATGPT4O_PROXY`,
    `CHATGPT4O_TIMEOUT`; then the defaults (chatgpt4o.one, no key, no proxy, 120 s,
    2 retries). `api_key=""` and `timeout=0` turn the key and the time limit off. The
    provider for `url` is found on its page by `chatgpt4o.discover` at the first
    request; `provider` gives one to use instead (a `Chatgpt4o.for_site(...)` class,
    say), and then `url` is not used. Raises ValueError for a setting that cannot work,
    before any I/O.
    """
    config = server_config(
        url=url,
        api_key=api_key,
        proxy=proxy,
        timeout=timeout,
        retries=retries,
        cookies=cookies,
        bot_id=bot_id,
        max_body_size=max_body_size,
        provider=provider,
        environ=os.environ if environ is None else environ,
    )
    from ._app import build_app

    return build_app(config)
