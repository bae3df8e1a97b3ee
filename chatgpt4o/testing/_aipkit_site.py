"""The emulated site's bots and the page that shows them (AI Power 2.3+, "AIPKit").

Each bot renders one element carrying its configuration in a single-quoted ``data-config``
attribute: ``wp_json_encode`` with ``JSON_UNESCAPED_UNICODE`` and the four ``JSON_HEX_*``
flags, then ``esc_attr``, so the structural quotes come out as ``&quot;``. Inline bots put
it on ``div#aipkit_chat_container_N``; popup bots (the plugin's default) on
``div#aipkit_popup_wrapper_N``, with the chat container inside. Bots with ``sitewide`` are
printed from the footer, after the content, as the plugin's site-wide bot is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ._aipkit_php import wp_json_hex
from ._aipkit_versions import Version, has_json_action, has_nonce_refresh
from ._php import esc_html, php_json

__all__ = [
    "DEFAULT_BOT_ID",
    "DEFAULT_INSTRUCTIONS",
    "DEFAULT_POST_ID",
    "PLUGIN_PATH",
    "Bot",
    "data_config",
    "render_page",
]

#: The chatbot post ID of the emulator's default bot.
DEFAULT_BOT_ID = 4
#: The page's own post ID (``postId`` in the configuration).
DEFAULT_POST_ID = 5
#: The plugin's default system instructions for a new bot (``[date]`` is replaced by the
#: site's date, e.g. "November 30, 2026").
DEFAULT_INSTRUCTIONS = "You are a helpful AI Assistant. Please be friendly. Today's date is [date]."
#: Where the plugin's files are served from.
PLUGIN_PATH = "/wp-content/plugins/gpt3-ai-content-generator"

_THEME_SETTINGS = {
    "primary_color": "#0B5FFF",
    "secondary_color": "#F1F5FF",
    "accent_color": "#111111",
    "font_family": "inherit",
    "bubble_border_radius": 16,
    "container_max_width": 896,
    "popup_width": 380,
    "container_height": 620,
}
_TEXTS = {
    "sendMessage": "Send Message",
    "sending": "Sending...",
    "stopResponse": "Stop Response",
    "typeMessage": "Type your message...",
    "thinking": "Thinking",
    "streaming": "Streaming...",
    "errorPrefix": "Error:",
    "userPrefix": "User",
    "clearChat": "Clear Chat",
    "streamError": "Stream error. Please try again.",
    "connError": "Connection error. Please try again.",
    "initialGreeting": "Hello there!",
    "initialSubgreeting": "How can I help you today?",
    "newChat": "New Chat",
    "historyGuests": "History unavailable for guests.",
    "historySidebarEmpty": "No conversations yet — start one to see it here.",
    "fileUploading": "Uploading %s",
    "consentMessage": (
        "Before starting the conversation, please agree to our Terms of Service and Privacy Policy."
    ),
}
_GLOBAL_TEXTS = {
    "fullscreenError": "Error: Fullscreen functionality is unavailable.",
    "copySuccess": "Copied!",
    "copyFail": "Failed to copy",
    "newChat": "New Chat",
}


@dataclass(frozen=True)
class Bot:
    """One chatbot (a published ``aipkit_chatbot`` post) of the emulated site.

    Attributes:
        id: the chatbot's post ID (``botId`` / ``bot_id``).
        name: the header name shown in the chat (``headerName``).
        instructions: the system instructions given to the model (``[date]`` becomes the
            site's date, as the plugin does).
        popup: render as a popup (``aipkit_popup_wrapper_N``, the plugin's default for new
            bots) rather than inline (``aipkit_chat_container_N``).
        theme: ``"custom"`` (the default bot's, which adds ``data-custom-theme``),
            ``"light"`` or ``"dark"``.
        published: a draft bot is not shown, and the stream refuses it ("Invalid chatbot
            specified."); its settings still load.
        sitewide: printed from the footer, as the plugin's site-wide bot.
        max_messages: how many earlier entries of the conversation the model is given
            (the plugin's default is 15; 0 means all of them on the stream).
        starters: the conversation starters shown.
        quota_message: the bot's quota text; empty: the plugin's default for the release.
        allowed_domains: the Pro embed allow-list (origins such as
            ``"https://partner.example"``); empty: any origin is allowed on Pro.
    """

    id: int
    name: str = "Customer Support"
    instructions: str = DEFAULT_INSTRUCTIONS
    popup: bool = True
    theme: str = "custom"
    published: bool = True
    sitewide: bool = False
    max_messages: int = 15
    starters: tuple[str, ...] = ("What can you do?", "Tell me a fun fact")
    quota_message: str = ""
    allowed_domains: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.id, bool) or not isinstance(self.id, int) or self.id <= 0:
            raise ValueError(f"a bot's id must be a positive int, not {self.id!r}")
        if self.theme not in ("custom", "light", "dark"):
            raise ValueError(f"theme must be 'custom', 'light' or 'dark', not {self.theme!r}")
        if self.max_messages < 0:
            raise ValueError(f"max_messages must be >= 0, not {self.max_messages!r}")


def data_config(
    bot: Bot,
    *,
    ajax_url: str,
    nonce: str,
    post_id: int,
    provider: str,
    version: Version,
    stream: bool = True,
) -> dict[str, object]:
    """The bot's configuration object, in the plugin's key order (the keys a client needs
    first, then a representative part of the rest); ``stream=False`` is a bot with
    streaming off (``streamEnabled: false``, from the release with the JSON action)."""
    config: dict[str, object] = {
        "botId": bot.id,
        "ajaxUrl": ajax_url,
        "nonce": nonce,
        "postId": post_id,
        "theme": bot.theme,
        "popupEnabled": bot.popup,
        "popupPosition": "bottom-right",
        "popupDelay": 0,
        "popupIconType": "default",
        "popupIconStyle": "circle",
        "popupIconValue": "chat-bubble",
        "popupIconSize": "medium",
    }
    if bot.theme == "custom":
        config["customThemePresetKey"] = "ocean"
    if has_json_action(version):
        config["streamEnabled"] = stream
    config.update(
        {
            "footerText": "",
            "headerOnlineText": "Online",
            "enableFullscreen": True,
            "enableDownload": False,
            "enableCopyButton": True,
            "enableFeedback": True,
            "enableSidebar": False,
            "headerName": bot.name,
            "enableStarters": bool(bot.starters),
            "starters": list(bot.starters),
            "requireConsentCompliance": False,
            "ttsEnabled": False,
            "enableVoiceInputUI": False,
            "fileUploadEnabledUI": False,
            "imageUploadEnabledUI": False,
            "provider": provider,
            "enableOpenAIConversationState": False,
            "allowWebSearchTool": False,
            "allowGoogleSearchGrounding": False,
        }
    )
    if bot.theme == "custom":
        config["customThemeSettings"] = dict(_THEME_SETTINGS)
    config["text"] = dict(_TEXTS)
    config["customTypingText"] = ""
    return config


def _attribute_json(value: object) -> str:
    """``esc_attr(wp_json_encode($value, UNESCAPED_UNICODE | HEX_*))``."""
    return esc_html(wp_json_hex(value))


_SEND_ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24" viewBox="0 0 24 24" '
    'fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" '
    'stroke-linejoin="round" class="aipkit_send_icon"><path d="M12 5l0 14" />'
    '<path d="M18 11l-6 -6" /><path d="M6 11l6 -6" /></svg>'
)


def _chat_body(bot: Bot) -> str:
    starters = "".join(
        f'<button type="button" class="aipkit_starter_btn">{esc_html(text)}</button>'
        for text in bot.starters
    )
    return f"""
            <div class="aipkit_chat_body">
                <div class="aipkit_chat_main">
                    <div class="aipkit_chat_header">
                        <div class="aipkit_header_info">
                            <div class="aipkit_header_name">{esc_html(bot.name)}</div>
                            <div class="aipkit_header_status"><span class="aipkit_header_status_text">Online</span></div>
                        </div>
                    </div>
                    <div class="aipkit_chat_messages"></div>
                    <div class="aipkit_conversation_starters">{starters}</div>
                    <div class="aipkit_chat_input">
                        <div class="aipkit_chat_input_wrapper">
                            <textarea
                                id="aipkit_chat_input_field_{bot.id}"
                                name="aipkit_chat_message_{bot.id}"
                                class="aipkit_chat_input_field"
                                placeholder="Type your message..."
                                aria-label="Chat message input"
                                rows="1"
                            ></textarea>
                            <button type="button" class="aipkit_input_action_btn aipkit_chat_action_btn aipkit_send_btn" aria-label="Send Message">{_SEND_ICON}</button>
                        </div>
                    </div>
                </div>
            </div>"""  # noqa: E501


def _bot_markup(bot: Bot, config: dict[str, object]) -> str:
    attribute = _attribute_json(config)
    bot_id = bot.id
    if not bot.popup:
        return (
            f'    <div class="aipkit_chat_container aipkit-theme-{bot.theme}   '
            f'aipkit-sidebar-state-closed   " id="aipkit_chat_container_{bot_id}" '
            f"data-bot-id=\"{bot_id}\" data-config='{attribute}'  >{_chat_body(bot)}\n"
            "    </div>\n"
        )
    custom = ""
    if bot.theme == "custom":
        custom = f" data-custom-theme='{_attribute_json(_THEME_SETTINGS)}'"
    return (
        f'    <div class="aipkit_popup_wrapper aipkit-popup-theme-{bot.theme} '
        f'aipkit-popup-standard" id="aipkit_popup_wrapper_{bot_id}" '
        f'data-config=\'{attribute}\' data-bot-id="{bot_id}" data-icon-size="medium" >\n'
        f'        <button type="button" class="aipkit_popup_trigger '
        f'aipkit_popup_position-bottom-right aipkit_popup_trigger--size-medium" '
        f'id="aipkit_popup_trigger_{bot_id}" aria-label="Open Chat" title="Open Chat" '
        f'aria-haspopup="dialog" aria-controls="aipkit_chat_container_{bot_id}" '
        f'aria-expanded="false"  data-icon-style="circle" data-icon-type="default">\n'
        '            <span class="aipkit_popup_icon aipkit_popup_icon--open"></span>\n'
        "        </button>\n"
        f'        <div class="aipkit_chat_container aipkit_popup_content '
        f"aipkit-theme-{bot.theme}  aipkit_popup_position-bottom-right "
        f'aipkit-sidebar-state-closed   " id="aipkit_chat_container_{bot_id}" '
        f'aria-hidden="true" inert{custom}>{_chat_body(bot)}\n'
        "        </div>\n"
        "    </div>\n"
    )


_REFRESH_WRAPPER = """<script type='text/javascript' id='aipkit-public-main-js-after'>
(function(){
  function refreshNonce(cfg){
    var fd = new FormData();
    fd.append('action', window.aipkit_getChatNonceAction || 'aipkit_get_frontend_chat_nonce');
    if (cfg && cfg.botId) { fd.append('bot_id', cfg.botId); }
    return fetch(cfg.ajaxUrl, {method: 'POST', body: fd, credentials: 'same-origin'})
      .then(function(r){ return r.json(); })
      .then(function(j){
        if (j && j.success && j.data && j.data.nonce) { cfg.nonce = j.data.nonce; }
      });
  }
  if (typeof window.aipkit_chatUI_cacheSseMessage === 'function') {
    var original = window.aipkit_chatUI_cacheSseMessage;
    window.aipkit_chatUI_cacheSseMessage = function(text, cfg){
      var args = arguments;
      return original.apply(this, args).catch(function(){
        return refreshNonce(cfg).then(function(){ return original.apply(this, args); });
      });
    };
  }
})();
</script>
"""


def render_page(
    bots: Sequence[Bot],
    *,
    url: str,
    nonce: str,
    post_id: int,
    provider: str,
    plugin_version: str,
    version: Version,
    legacy_shortcode: bool = False,
    stream: bool = True,
) -> str:
    """The chat page: the published bots (content first, site-wide ones in the footer) and
    the plugin's scripts; ``legacy_shortcode`` leaves ``[wpaicg_chatgpt]`` in the content,
    as an upgraded site whose page still names the old shortcode does; ``stream`` is each
    bot's ``streamEnabled``."""
    ajax_url = url + "/wp-admin/admin-ajax.php"
    content: list[str] = []
    footer: list[str] = []
    for bot in bots:
        if not bot.published:
            continue
        config = data_config(
            bot,
            ajax_url=ajax_url,
            nonce=nonce,
            post_id=post_id,
            provider=provider,
            version=version,
            stream=stream,
        )
        (footer if bot.sitewide else content).append(_bot_markup(bot, config))
    legacy = "<p>[wpaicg_chatgpt]</p>\n" if legacy_shortcode else ""
    assets = f"{url}{PLUGIN_PATH}/dist"
    before = (
        "<script type='text/javascript' id='aipkit-public-main-js-before'>\n"
        'window.aipkit_getChatNonceAction = "aipkit_get_frontend_chat_nonce";\n'
        "</script>\n"
        if has_nonce_refresh(version)
        else ""
    )
    after = _REFRESH_WRAPPER if has_nonce_refresh(version) else ""
    global_config = php_json({"text": _GLOBAL_TEXTS})
    return f"""<!DOCTYPE html>
<html lang="en-US">
<head>
<meta charset="UTF-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Chat &#8211; AIPKit emulator</title>
<link rel='stylesheet' id='aipkit-public-main-css-css' href='{assets}/css/public-main.bundle.css?ver={plugin_version}' type='text/css' media='all' />
<link rel="https://api.w.org/" href="{url}/wp-json/" />
</head>
<body class="page-template-default page page-id-{post_id}">
<main id="main">
<article id="post-{post_id}" class="post-{post_id} page type-page status-publish hentry">
<h1 class="entry-title">Chat</h1>
<div class="entry-content">
<p>Ask me anything.</p>
{legacy}{"".join(content)}</div>
</article>
</main>
{"".join(footer)}<script type='text/javascript' id='aipkit-public-main-js-extra'>
var aipkit_chat_config_global = {global_config};
</script>
{before}<script type='text/javascript' src='{assets}/js/public-main.bundle.js?ver={plugin_version}' id='aipkit-public-main-js'></script>
{after}</body>
</html>
"""  # noqa: E501
