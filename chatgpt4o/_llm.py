"""The `llm` plugin: `llm -m chatgpt4o "..."` and `llm chat -m chatgpt4o` through this library.

`llm` finds this module by its entry point (group `llm`, in pyproject.toml) and calls
`register_models`. The model `chatgpt4o` asks the site given by the option `url` (else
`$CHATGPT4O_URL`, else chatgpt4o.one itself): a page of any site with a supported chatbot,
whose plugin `discover` finds with one page load per process. Replies stream as the site
streams them. The conversation so far (llm keeps it) goes with every turn, system prompt
included, the way the site's own chat sends history.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import llm
from pydantic import Field

from ._base import iterate_blocking
from ._discover import discover
from ._provider import Chatgpt4o, WordPressChat

__all__ = ["AsyncChatgpt4oModel", "Chatgpt4oModel", "register_models"]

MODEL_ID = "chatgpt4o"
URL_VARIABLE = "CHATGPT4O_URL"
PROXY_VARIABLE = "CHATGPT4O_PROXY"

# The provider class of each (url, bot) this process has discovered: one page load each.
_sites: dict[tuple[str, str | None], type[WordPressChat]] = {}


class _Options(llm.Options):
    url: str | None = Field(
        default=None,
        description=(
            f"A page of the site with the chat (default: ${URL_VARIABLE}, else chatgpt4o.one)"
        ),
    )
    bot: str | None = Field(
        default=None, description="The chatbot's ID, when the page has several"
    )
    proxy: str | None = Field(
        default=None, description=f"http(s):// or socks5:// proxy (default: ${PROXY_VARIABLE})"
    )
    timeout: float | None = Field(default=None, description="Seconds for a whole reply")


def _text_of(message: Any) -> str:
    """The text parts of one of llm's messages (reasoning and tool parts left out)."""
    from llm.parts import TextPart

    return "".join(part.text for part in message.parts if type(part) is TextPart)


def _earlier_reply(response: Any) -> str:
    text_or_raise = getattr(response, "text_or_raise", None)
    return str(text_or_raise() if text_or_raise is not None else response.text())


def conversation_messages(prompt: Any, responses: Sequence[Any]) -> list[dict[str, str]]:
    """The whole conversation as chat messages: llm's own chain of this turn where it
    keeps one (`prompt.messages`, llm 0.32 and newer), else the earlier `responses` of the
    conversation and this prompt. The system prompt, given on the first turn of a chat,
    goes first."""
    chain = getattr(type(prompt), "messages", None)
    if chain is not None:
        messages = [
            {"role": message.role, "content": _text_of(message)}
            for message in prompt.messages
            if message.role in ("system", "user", "assistant")
        ]
        return [message for message in messages if message["content"]]
    system = prompt.system or ""
    turns: list[dict[str, str]] = []
    for earlier in responses:
        system = system or earlier.prompt.system or ""
        turns.append({"role": "user", "content": earlier.prompt.prompt})
        turns.append({"role": "assistant", "content": _earlier_reply(earlier)})
    turns.append({"role": "user", "content": prompt.prompt})
    return [{"role": "system", "content": system}, *turns] if system else turns


async def _site(options: _Options) -> type[WordPressChat]:
    url = options.url or os.environ.get(URL_VARIABLE) or ""
    if not url:
        return Chatgpt4o
    key = (url, options.bot)
    if key not in _sites:
        _sites[key] = await discover(url, bot_id=options.bot)
    return _sites[key]


async def _reply(
    prompt: Any, responses: Sequence[Any], stream: bool
) -> AsyncIterator[str]:
    options: _Options = prompt.options
    messages = conversation_messages(prompt, responses)
    settings: dict[str, Any] = {"proxy": options.proxy or os.environ.get(PROXY_VARIABLE)}
    if options.timeout is not None:
        settings["timeout"] = options.timeout
    site = await _site(options)
    if not stream:
        yield await site.create_async("", messages, **settings)
        return
    async for piece in site.create_async_generator("", messages, **settings):
        yield piece


class Chatgpt4oModel(llm.Model):
    """The site's chat, for blocking callers (`llm -m chatgpt4o`, `llm chat`)."""

    model_id = MODEL_ID
    can_stream = True
    Options = _Options  # type: ignore[assignment]

    def execute(
        self,
        prompt: llm.Prompt,
        stream: bool,
        response: llm.Response,
        conversation: llm.Conversation | None,
    ) -> Iterator[str]:
        responses = conversation.responses if conversation is not None else []
        yield from iterate_blocking(_reply(prompt, responses, stream))


class AsyncChatgpt4oModel(llm.AsyncModel):
    """The site's chat, for async callers (`llm.get_async_model("chatgpt4o")`)."""

    model_id = MODEL_ID
    can_stream = True
    Options = _Options  # type: ignore[assignment]

    async def execute(  # type: ignore[override]
        self,
        prompt: llm.Prompt,
        stream: bool,
        response: llm.AsyncResponse,
        conversation: llm.AsyncConversation | None,
    ) -> AsyncIterator[str]:
        responses = conversation.responses if conversation is not None else []
        async for piece in _reply(prompt, responses, stream):
            yield piece


@llm.hookimpl
def register_models(register: Any) -> None:
    """llm's hook: the `chatgpt4o` model, blocking and async."""
    register(Chatgpt4oModel(), AsyncChatgpt4oModel())
