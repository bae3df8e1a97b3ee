"""chatgpt4o: an async, g4f-style provider for the AI Power chat plugin (chatgpt4o.one).

    from chatgpt4o import Chatgpt4o
    reply = await Chatgpt4o.create_async(model="gpt-4o-mini", messages=[...])
"""

from ._base import AsyncGeneratorProvider, AsyncProvider, BaseProvider, ProviderModelMixin
from ._exceptions import (
    CloudflareError,
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
from ._provider import Chatgpt4o
from ._session import StreamResponse, StreamSession
from ._version import __version__

__all__ = [
    "AsyncGeneratorProvider",
    "AsyncProvider",
    "BaseProvider",
    "Chatgpt4o",
    "CloudflareError",
    "HTTPStatusError",
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
    "ResponseError",
    "ScrapeError",
    "ServiceError",
    "StreamResponse",
    "StreamSession",
    "__version__",
    "aclose",
    "format_prompt",
]


async def aclose() -> None:
    """Close the HTTP sessions chatgpt4o opened in the running event loop."""
    from ._session import aclose_shared_sessions

    await aclose_shared_sessions()
