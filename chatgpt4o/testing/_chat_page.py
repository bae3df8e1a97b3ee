"""``chat_page()``: the HTML of a page with a chat, for tests that need no server.

A respx route, a ``MockTransport`` handler or any stub of yours answers the page GET with
it; the POSTs are yours to answer. The markup is the emulators' own (``_pages``,
``_aipkit_site``, ``_aiengine_pages``): what a client reads in it is what it reads on the
emulated site of the same plugin and release. Nothing here needs aiohttp.
"""

from __future__ import annotations

from typing import Literal

from ._aiengine_pages import EnginePage, container, front_params, front_system, theme
from ._aiengine_pages import render_page as render_engine_page
from ._aiengine_rules import Chatbot
from ._aipkit_site import DEFAULT_BOT_ID, DEFAULT_POST_ID, Bot
from ._aipkit_site import render_page as render_aipkit_page
from ._aipkit_versions import has_json_action
from ._pages import PageSpec, render_page
from ._php import parse_version

__all__ = ["DEFAULT_NONCE", "Plugin", "chat_page"]

#: The chat plugins whose page ``chat_page`` renders.
Plugin = Literal["wpaicg", "aipkit", "aiengine"]

#: The nonce a page gets when none is given: 10 hex digits, as ``wp_create_nonce`` makes.
DEFAULT_NONCE = "5e2498d71a"

# The releases the emulators play by default.
_VERSIONS: dict[str, str] = {"wpaicg": "1.8.91", "aipkit": "2.4.71", "aiengine": "3.7.2"}
_POST_IDS: dict[str, int] = {"wpaicg": 11, "aipkit": DEFAULT_POST_ID, "aiengine": 42}
# The two other nonces of the legacy page, decoys that a client must never send.
_IMAGE_NONCE = "ffffffffff"
_REST_NONCE = "0f0f0f0f0f"


def chat_page(
    plugin: Plugin = "wpaicg",
    *,
    url: str = "https://wp.example",
    nonce: str | None = DEFAULT_NONCE,
    post_id: int | None = None,
    stream: bool | None = None,
    bot_id: int | str | None = None,
    plugin_version: str | None = None,
) -> str:
    """The HTML of a WordPress page showing one chat of ``plugin``, as its emulator serves it.

    Args:
        plugin: ``"wpaicg"`` (AI Power 1.8.79-2.2, the legacy widget: what ``Chatgpt4o``
            reads), ``"aipkit"`` (AI Power 2.3+: ``Chatgpt4o`` too) or ``"aiengine"``
            (Meow Apps' AI Engine: ``AIEngine``).
        url: the site's address, without a trailing slash: the page names its
            ``admin-ajax.php`` (or REST root) under it.
        nonce: the chat's nonce, printed as given, so that a test can also hand the client
            a malformed one. AI Engine: the page's ``restNonce``; ``None`` prints none, as
            releases from 2.4.4 on do (the client then asks ``start_session`` for one).
            The legacy and AIPKit chats always carry one: ``None`` is an error there.
        post_id: the page's post ID; default: the emulator's (11, 5 or 42).
        stream: whether the chat streams; default: the plugin's default (legacy: no,
            AIPKit and AI Engine: yes). An AIPKit page says "no" only up to 2.4.0.
        bot_id: the chatbot's ID; default: the emulator's (``0``, ``4``, ``"default"``).
        plugin_version: the release whose markup to print (AI Power, either protocol);
            default: the emulator's (``"1.8.91"``, ``"2.4.71"``). AI Engine's page is
            3.7.2's.

    >>> 'data-nonce="5e2498d71a"' in chat_page()
    True
    """
    if plugin not in _VERSIONS:
        raise ValueError(f"plugin must be 'wpaicg', 'aipkit' or 'aiengine', not {plugin!r}")
    url = url.rstrip("/")
    version = plugin_version or _VERSIONS[plugin]
    post = _POST_IDS[plugin] if post_id is None else post_id
    if plugin == "aiengine":
        return _engine_page(url, nonce, post, stream, bot_id)
    if nonce is None:
        raise ValueError(f"a {plugin} chat always carries a nonce: pass one, or leave the default")
    if plugin == "aipkit":
        if stream is False and not has_json_action(parse_version(version)):
            raise ValueError(
                "an AIPKit page says a bot does not stream (streamEnabled) only up to 2.4.0: "
                "pass plugin_version='2.4.0' or older"
            )
        bot = Bot(id=DEFAULT_BOT_ID if bot_id is None else int(bot_id))
        return render_aipkit_page(
            [bot],
            url=url,
            nonce=nonce,
            post_id=post,
            provider="OpenAI",
            plugin_version=version,
            version=parse_version(version),
            stream=True if stream is None else stream,
        )
    spec = PageSpec(
        url=url,
        nonce=nonce,
        image_nonce=_IMAGE_NONCE,
        rest_nonce=_REST_NONCE,
        post_id=post,
        bot_id=0 if bot_id is None else int(bot_id),
        stream=bool(stream),
        variant="standard",
        widget="shortcode",
        padding=0,
        plugin_version=version,
        assistant=False,
    )
    return render_page(spec)


def _engine_page(
    url: str,
    nonce: str | None,
    post_id: int,
    stream: bool | None,
    bot_id: int | str | None,
) -> str:
    bot = Chatbot(bot_id="default" if bot_id is None else str(bot_id))
    rest_url = url + "/wp-json"
    system = front_system(
        bot,
        url=url,
        rest_url=rest_url,
        session_id=None,
        rest_nonce=nonce,
        context_id=post_id,
        stream=True if stream is None else stream,
        event_logs=False,
    )
    page = EnginePage(
        url=url,
        rest_index=rest_url + "/",
        post_id=post_id,
        content=container(front_params(bot), system, theme(url)),
        footer="",
        scripts=True,
    )
    return render_engine_page(page)
