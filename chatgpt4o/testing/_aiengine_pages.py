"""The HTML of the AI Engine emulator: the chat page and the error pages around it.

A chatbot is one empty element whose three attributes are single-quoted and hold
``htmlspecialchars(json_encode(...), ENT_QUOTES)``: PHP's default ``json_encode``
(``\\/``, ``\\uXXXX``) then ``& < > " '`` as entities. The keys and their order follow
the 3.7.2 template as a real site prints it for a guest.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass

from ._aiengine_rules import Chatbot
from ._php import php_json

__all__ = [
    "PLUGIN_PATH",
    "EnginePage",
    "container",
    "front_params",
    "front_system",
    "htmlspecialchars",
    "not_found_page",
    "render_page",
    "shortcode_text",
    "theme",
    "waf_page",
]

#: Where the plugin lives under the site URL.
PLUGIN_PATH = "/wp-content/plugins/ai-engine"
#: ``filemtime()`` of ``app/chatbot.js``, the script's cache buster.
_SCRIPT_MTIME = "1755648000"


def htmlspecialchars(text: str) -> str:
    """PHP's ``htmlspecialchars($text, ENT_QUOTES, 'UTF-8')``."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#039;")
    )


def front_params(bot: Chatbot) -> dict[str, object]:
    """``data-params``: the chatbot's display settings."""
    return {
        "aiName": "AI: ",
        "userName": "User: ",
        "guestName": "Guest:",
        "textSend": "Send",
        "textClear": "Clear",
        "imageUpload": False,
        "fileUpload": False,
        "multiUpload": False,
        "maxUploads": 1,
        "fileUploads": 0,
        "mode": "chat",
        "textInputPlaceholder": "Type your message...",
        "textInputMaxLength": bot.text_input_max_length or 0,
        "textCompliance": "",
        "startSentence": bot.start_sentence,
        "localMemory": True,
        "themeId": "chatgpt",
        "window": bool(bot.window),
        "icon": "",
        "iconText": "",
        "iconTextDelay": 1,
        "iconAlt": "AI Engine Chatbot",
        "iconPosition": "bottom-right",
        "centerOpen": False,
        "width": "",
        "openDelay": "",
        "iconBubble": False,
        "windowAnimation": "zoom",
        "fullscreen": False,
        "copyButton": False,
        "pdfButton": False,
        "headerSubtitle": "Discuss with",
        "containerType": "standard",
        "headerType": "standard",
        "messagesType": "standard",
        "inputType": "standard",
        "footerType": "standard",
    }


def front_system(
    bot: Chatbot,
    *,
    url: str,
    rest_url: str,
    session_id: str | None,
    rest_nonce: str | None,
    context_id: int | None,
    stream: bool,
    event_logs: bool,
) -> dict[str, object]:
    """``data-system``: what a client needs to talk to the chatbot."""
    custom = bool(bot.custom_id)
    return {
        "botId": None if custom else bot.bot_id,
        "customId": bot.custom_id if custom else None,
        "userData": None,
        "sessionId": session_id,
        "restNonce": rest_nonce,
        "contextId": context_id,
        "pluginUrl": url + PLUGIN_PATH,
        "restUrl": rest_url,
        "stream": stream,
        "debugMode": False,
        "eventLogs": event_logs,
        "speech_recognition": False,
        "speech_synthesis": False,
        "typewriter": False,
        "crossSite": False,
        "actions": [],
        "blocks": [],
        "shortcuts": [],
    }


def theme(url: str) -> dict[str, object]:
    """``data-theme``: the stock ChatGPT theme."""
    return {
        "type": "internal",
        "name": "ChatGPT",
        "themeId": "chatgpt",
        "settings": [],
        "style": "",
        "cssUrl": f"{url}{PLUGIN_PATH}/themes/chatgpt.css",
    }


def _attribute(value: Mapping[str, object]) -> str:
    return htmlspecialchars(php_json(value))


def container(
    params: Mapping[str, object], system: Mapping[str, object], theme: Mapping[str, object]
) -> str:
    """The chatbot element, exactly as ``chat_shortcode()`` returns it."""
    return (
        f"<div class='mwai-chatbot-container' data-params='{_attribute(params)}' "
        f"data-system='{_attribute(system)}' data-theme='{_attribute(theme)}'></div>"
    )


def shortcode_text(bot: Chatbot) -> str:
    """The shortcode as a page shows it when no plugin handles it (``wptexturize``d)."""
    inner = f"id=&#8221;{html.escape(bot.bot_id)}&#8221;"
    if bot.custom_id:
        inner += f" custom_id=&#8221;{html.escape(bot.custom_id)}&#8221;"
    return f"<p>[mwai_chatbot {inner}]</p>"


@dataclass(frozen=True)
class EnginePage:
    """What the chat page shows.

    Attributes:
        url: the site URL (no trailing slash). rest_index: the REST API's index URL.
        post_id: the page's post ID (``None``: a non-singular page).
        content: the chatbots (or their shortcodes) inside the post's content.
        footer: what ``wp_footer`` prints (the site-wide chatbot).
        scripts: whether the chatbot's script and theme are enqueued.
    """

    url: str
    rest_index: str
    post_id: int | None
    content: str
    footer: str
    scripts: bool


def render_page(page: EnginePage) -> str:
    """The chat page's HTML."""
    url = html.escape(page.url)
    plugin = url + PLUGIN_PATH
    body_class = "home page-template-default page"
    article = '<article class="page type-page status-publish hentry">'
    if page.post_id is not None:
        body_class += f" page-id-{page.post_id}"
        article = (
            f'<article id="post-{page.post_id}" class="post-{page.post_id} page type-page '
            'status-publish hentry">'
        )
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en-US">',
        "<head>",
        '<meta charset="UTF-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Chat &#8211; AI Engine Demo</title>",
        "<meta name='robots' content='max-image-preview:large' />",
    ]
    if page.scripts:
        lines.append(
            "<link rel='stylesheet' id='mwai_chatbot_theme_chatgpt-css' "
            f"href='{plugin}/themes/chatgpt.css?ver={_SCRIPT_MTIME}' media='all' />"
        )
    lines += [
        f'<link rel="https://api.w.org/" href="{html.escape(page.rest_index)}" />',
        '<meta name="generator" content="WordPress 6.6.2" />',
        f'<link rel="canonical" href="{url}/" />',
        "</head>",
        f'<body class="{body_class}">',
        '<div id="page" class="site">',
        '<header class="site-header"><p class="site-title">'
        f'<a href="{url}/" rel="home">AI Engine Demo</a></p></header>',
        '<main id="main" class="site-main">',
        article,
        '<header class="entry-header"><h1 class="entry-title">Chat</h1></header>',
        '<div class="entry-content">',
        "<p>Ask me anything.</p>",
        page.content,
        "</div>",
        "</article>",
        "</main>",
        '<footer class="site-footer"><p>Proudly powered by WordPress</p></footer>',
        "</div>",
    ]
    if page.scripts:
        wp = f"{url}/wp-includes/js/dist"
        lines += [
            f"<script src='{wp}/vendor/react.min.js?ver=18.3.1' id='react-js'></script>",
            f"<script src='{wp}/vendor/react-dom.min.js?ver=18.3.1' id='react-dom-js'></script>",
            f"<script src='{wp}/element.min.js?ver=6.6.2' id='wp-element-js'></script>",
            f"<script src='{plugin}/app/chatbot.js?ver={_SCRIPT_MTIME}' "
            "id='mwai_chatbot-js'></script>",
        ]
    if page.footer:
        lines.append(page.footer)
    lines += ["</body>", "</html>", ""]
    return "\n".join(line for line in lines if line)


def not_found_page(url: str) -> str:
    """The theme's 404 page."""
    home = html.escape(url)
    return (
        '<!DOCTYPE html>\n<html lang="en-US">\n<head>\n<meta charset="UTF-8">\n'
        "<title>Page not found &#8211; AI Engine Demo</title>\n</head>\n"
        '<body class="error404">\n<main id="main" class="site-main">\n'
        '<section class="error-404 not-found"><h1 class="page-title">'
        "Oops! That page can&rsquo;t be found.</h1>\n"
        f'<p><a href="{home}/">Back home</a></p></section>\n</main>\n</body>\n</html>\n'
    )


def waf_page(host: str, block_id: str) -> str:
    """A web application firewall's block page (HTTP 403, ``text/html``)."""
    host = html.escape(host)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        "<title>403 Forbidden - Access Denied</title>\n</head>\n<body>\n"
        '<div id="main-container"><h1>Access Denied - Web Application Firewall</h1>\n'
        "<p>Your request was blocked by the firewall protecting this site.</p>\n"
        f"<p>Host: {host}<br>Block ID: {html.escape(block_id)}<br>"
        "Reason: a rule for automated requests matched.</p>\n"
        "<p>If you think this is a mistake, contact the site owner with the block ID.</p>\n"
        "</div>\n</body>\n</html>\n"
    )
