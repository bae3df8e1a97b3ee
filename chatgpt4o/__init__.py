"""chatgpt4o: an async, g4f-style provider for the AI Power chat plugin (chatgpt4o.one).

    from chatgpt4o import Chatgpt4o
    reply = await Chatgpt4o.create_async(model="gpt-4o-mini", messages=[...])

The public names below load on first use, so `import chatgpt4o` (and `chatgpt4o --help`)
costs next to nothing; curl_cffi itself loads with the first request.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from ._base import AsyncGeneratorProvider, AsyncProvider, BaseProvider, ProviderModelMixin
    from ._discover import discover
    from ._exceptions import (
        CloudflareError,
        HostNotFoundError,
        HTTPStatusError,
        ModelNotSupportedError,
        NonceError,
        PluginUnavailableError,
        ProviderConnectionError,
        ProviderError,
        ProviderTimeoutError,
        RateLimitError,
        ResponseError,
        ScrapeError,
        ServiceError,
    )
    from ._messages import Message, Messages, format_prompt
    from ._pool import SessionScope
    from ._provider import AIEngine, Chatgpt4o, WordPressChat
    from ._session import StreamResponse, StreamSession
    from ._streaming import ReplyStream
    from ._transports.base import AsyncTransport, Request, Response
    from ._transports.curl import CurlTransport
    from ._transports.httpx import HttpxTransport

__all__ = [
    "AIEngine",
    "AsyncGeneratorProvider",
    "AsyncProvider",
    "AsyncTransport",
    "BaseProvider",
    "Chatgpt4o",
    "CloudflareError",
    "CurlTransport",
    "HTTPStatusError",
    "HostNotFoundError",
    "HttpxTransport",
    "Message",
    "Messages",
    "ModelNotSupportedError",
    "NonceError",
    "PluginUnavailableError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderModelMixin",
    "ProviderTimeoutError",
    "RateLimitError",
    "ReplyStream",
    "Request",
    "Response",
    "ResponseError",
    "ScrapeError",
    "ServiceError",
    "SessionScope",
    "StreamResponse",
    "StreamSession",
    "WordPressChat",
    "__version__",
    "aclose",
    "discover",
    "format_prompt",
]

_HOMES = {
    "._base": ("AsyncGeneratorProvider", "AsyncProvider", "BaseProvider", "ProviderModelMixin"),
    "._exceptions": (
        "CloudflareError",
        "HTTPStatusError",
        "HostNotFoundError",
        "ModelNotSupportedError",
        "NonceError",
        "PluginUnavailableError",
        "ProviderConnectionError",
        "ProviderError",
        "ProviderTimeoutError",
        "RateLimitError",
        "ResponseError",
        "ScrapeError",
        "ServiceError",
    ),
    "._messages": ("Message", "Messages", "format_prompt"),
    "._provider": ("AIEngine", "Chatgpt4o", "WordPressChat"),
    "._discover": ("discover",),
    "._pool": ("SessionScope",),
    "._session": ("StreamResponse", "StreamSession"),
    "._streaming": ("ReplyStream",),
    "._transports.base": ("AsyncTransport", "Request", "Response"),
    "._transports.curl": ("CurlTransport",),
    "._transports.httpx": ("HttpxTransport",),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _HOME_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


async def aclose() -> None:
    """Close the HTTP sessions chatgpt4o opened in the running event loop."""
    from ._session import aclose_shared_sessions

    await aclose_shared_sessions()
