"""HTML the emulator serves: the WordPress page with the chat, and error pages.

The page follows docs/protocol.md §2: the chat's ``div`` with its ``data-*`` attributes
(which attributes exist depends on the plugin version: ``data-ai-name`` up to 1.8.95,
``data-memory-limit`` from 1.8.80, ``data-assistant-enabled`` from 1.8.95,
``data-sidebar-enabled`` from 1.9.4), and ``wpaicgParams`` in the footer, after the chat.
Every variant carries, before the chat, two decoys a careless scraper may grab: the hidden
``#wpaicg-img-nonce`` input (image-upload nonce) and ``wpApiSettings.nonce`` (REST nonce).
Neither is ever accepted for chat.

The shortcode (``widget="shortcode"``) sits in the content; the site-wide widget
(``widget="widget"``) sits in the footer inside its ``wpaicg_chat_widget`` wrapper, and from
1.9.16 prints ``data-post-id="<N"`` as the real template does.

Variants (``page_variant``):

``standard``
    The multi-line markup exactly as the plugin prints it.
``minified``
    The whole page on one line, chat attributes unquoted.
``single_quoted``
    Like ``standard`` with single-quoted attributes.
``params_only``
    No chat attributes (an empty placeholder ``div``); only ``wpaicgParams.search_nonce``.
    The post ID is in ``<body class="... postid-N ...">``, ``<link rel='shortlink'
    href='URL/?p=N'>`` and ``<article id="post-N" ...>``.
``post_id_bug``
    ``data-post-id="<N"`` (the widget's markup bug of 1.9.16–2.2), whatever the kind.
``empty_post_id``
    ``data-post-id=""``: a page with no post (a search page, an archive, a 404).
``no_post_id``
    The chat without ``data-post-id`` and no other post ID anywhere.
``no_nonce``
    The chat without ``data-nonce`` and no ``wpaicgParams``: no chat nonce at all.
``two_widgets``
    Two chats with the same nonce and post ID: first a custom bot (``data-bot-id="5"``),
    then the default one (``data-bot-id`` = the emulator's ``bot_id``).
``reordered``
    The attributes in another order with extra attributes between them (including
    ``data-nonce-refresh``, whose name starts like ``data-nonce``).

Only ``params_only`` has post ID hints outside the chat, so every other variant tests the
chat's own markup.

Independent of the variant:

- ``params_style``: how ``wpaicgParams`` is printed: ``inline`` (WordPress 6.4+),
  ``cdata`` (older WordPress: ``type='text/javascript'`` and a ``/* <![CDATA[ */`` wrapper)
  or ``base64`` (an optimiser's ``<script defer ... src="data:text/javascript;base64,...">``).
- ``foreign_params``: a theme's own object with ``"ajax_url"`` and ``"search_nonce"`` keys in
  ``<head>``, before the chat, pointing to another URL with another nonce.
- ``padding`` bytes of theme CSS in ``<head>`` (before the chat) and ``footer_padding``
  bytes of markup between the content and the footer (before ``wpaicgParams``).
"""

from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import dataclass

from . import _aipower
from ._i18n import html_lang, translate
from ._php import parse_version

__all__ = [
    "CUSTOM_BOT_ID",
    "FOREIGN_AJAX_PATH",
    "PAGE_VARIANTS",
    "PARAMS_STYLES",
    "POST_EXCERPT",
    "POST_TITLE",
    "WELCOME",
    "WIDGET_KINDS",
    "PageSpec",
    "cloudflare_page",
    "error_page",
    "footer_markup",
    "html_answer_page",
    "not_found_page",
    "padding_css",
    "render_page",
    "wp_die_page",
]

PAGE_VARIANTS = (
    "standard",
    "minified",
    "single_quoted",
    "params_only",
    "post_id_bug",
    "empty_post_id",
    "no_post_id",
    "no_nonce",
    "two_widgets",
    "reordered",
)
WIDGET_KINDS = ("shortcode", "widget")
PARAMS_STYLES = ("inline", "cdata", "base64")

#: ``data-bot-id`` of the first chat of the ``two_widgets`` variant.
CUSTOM_BOT_ID = 5

#: The chat's welcome text, shown in the page.
WELCOME = "Hello 👋, how can I help you today?"

#: The post the page shows: its title and its excerpt (what the plugin gives the model as
#: the page's context).
POST_TITLE = "ChatGPT 4o: free online chat"
POST_EXCERPT = (
    "Ask anything. Answers come from OpenAI\u2019s GPT-4o mini. Frequently asked questions "
    "Is it free? Yes. Do I need an account? No."
)

#: Where the foreign object of ``foreign_params`` points (under the site's URL).
FOREIGN_AJAX_PATH = "/wp-content/themes/astra/inc/ajax-search.php"

_INDENT = "     "
_WIDGET_WRAPPER_ID = 325659


@dataclass(frozen=True)
class PageSpec:
    """Everything the page depends on (also the key of the emulator's page cache)."""

    url: str
    nonce: str
    image_nonce: str
    rest_nonce: str
    post_id: int
    bot_id: int
    stream: bool
    variant: str
    widget: str
    padding: int
    plugin_version: str
    language: str = "en"
    assistant: bool = False
    memory_limit: int = 10
    params_style: str = "inline"
    foreign_params: bool = False
    foreign_nonce: str = ""
    footer_padding: int = 0
    notices: str = ""


def _post_id_value(spec: PageSpec) -> str:
    shown = "" if spec.variant == "empty_post_id" else str(spec.post_id)
    version = parse_version(spec.plugin_version)
    widget_bug = spec.widget == "widget" and _aipower.widget_post_id_bug(version)
    if spec.variant == "post_id_bug" or widget_bug:
        return "<" + shown
    return shown


def _widget_attributes(spec: PageSpec, bot_id: int) -> list[tuple[str, str, bool]]:
    """(name, value, spaced "=") in the plugin's order, minus what the variant drops."""
    version = parse_version(spec.plugin_version)
    widget = spec.widget == "widget"
    if widget:
        css_class, kind = "wpaicg-chatbox wpaicg-chat-widget-no-footer", "widget"
    else:
        css_class, kind = "wpaicg-chat-shortcode", "shortcode"
    plugin = f"{spec.url}/wp-content/plugins/gpt3-ai-content-generator/admin/images"
    attributes = [
        ("class", css_class, False),
        ("data-user-bg-color", "#444654" if widget else "#ccf5e1", False),
        ("data-color", "#ffffff" if widget else "#495057", False),
        ("data-fontsize", "13" if widget else "14", False),
    ]
    if _aipower.has_ai_name(version):
        attributes += [
            ("data-use-avatar", "0", False),
            ("data-user-avatar", f"{plugin}/default_profile.png", False),
            ("data-you", "You", False),
            ("data-ai-avatar", f"{plugin}/chatbot.png", False),
            ("data-ai-name", "AI", False),
        ]
    attributes += [
        ("data-ai-bg-color", "#343541" if widget else "#d1e8ff", False),
        ("data-nonce", spec.nonce, False),
        ("data-post-id", _post_id_value(spec), False),
        ("data-url", spec.url, False),
        ("data-bot-id", str(bot_id), False),
        ("data-width", "30%" if widget else "100%", False),
        ("data-height", "40%" if widget else "50%", False),
        ("data-footer", "false", False),
    ]
    if not widget:
        attributes.append(("data-has-bar", "false", False))
    attributes += [
        ("data-speech", "", False),
        ("data-typewriter-effect", "0", True),
        ("data-typewriter-speed", "1", False),
        ("data-openai_stream_nav", "1" if spec.stream else "0", False),
        ("data-autoload_chat_conversations", "0", False),
        ("data-copy_btn", "", False),
        ("data-feedback_btn", "", True),
    ]
    if _aipower.has_memory_limit(version):
        attributes.append(("data-memory-limit", str(spec.memory_limit), True))
    if _aipower.has_assistant(version):
        enabled = "true" if spec.assistant else "false"
        attributes.append(("data-assistant-enabled", enabled, False))
    if _aipower.has_sidebar(version) and not widget:
        attributes.append(("data-sidebar-enabled", "", False))
    attributes.append(("data-type", kind, False))
    if spec.variant == "no_post_id":
        attributes = [a for a in attributes if a[0] != "data-post-id"]
    elif spec.variant == "no_nonce":
        attributes = [a for a in attributes if a[0] != "data-nonce"]
    return attributes


_REORDERED: list[tuple[str, str | None]] = [
    ("data-type", None),
    ("id", "wpaicg-chat-shortcode-{bot_id}"),
    ("data-bot-id", None),
    ("style", "width: 100%; max-width: 720px"),
    ("data-url", None),
    ("data-speech", None),
    ("class", None),
    ("data-post-id", None),
    ("data-nonce-refresh", "0"),
    ("data-font-size", "13"),
    ("data-openai_stream_nav", None),
    ("data-assistant-enabled", None),
    ("data-nonce", None),
    ("data-user-bg-color", None),
    ("data-ai-name", None),
    ("data-typewriter-effect", None),
    ("data-memory-limit", None),
]


def _open_tag(spec: PageSpec, bot_id: int) -> str:
    attributes = _widget_attributes(spec, bot_id)
    if spec.variant == "minified":
        parts = []
        for name, value, _ in attributes:
            if re.search(r"[\s\"'=<>`]", value) or not value:
                parts.append(f'{name}="{html.escape(value)}"')
            else:
                parts.append(f"{name}={value}")
        return "<div " + " ".join(parts) + ">"
    if spec.variant == "reordered":
        values = {name: value for name, value, _ in attributes}
        parts = []
        for name, extra in _REORDERED:
            shown = extra.format(bot_id=bot_id) if extra is not None else values.get(name)
            if shown is not None:
                parts.append(f'{name}="{shown}"')
        return "<div " + " ".join(parts) + ">"
    quote = "'" if spec.variant == "single_quoted" else '"'
    lines = []
    for name, value, spaced in attributes:
        equals = " = " if spaced else "="
        lines.append(f"{name}{equals}{quote}{value}{quote}")
    return "<div " + f"\n{_INDENT}".join(lines) + "\n>"


_WIDGET_BODY = """
    <div class="wpaicg-chat-shortcode-content" style="height: 420px; overflow-y: auto">
        <ul class="wpaicg-chat-shortcode-messages">
            <li class="wpaicg-chat-ai-message">
                <p><strong class="wpaicg-chat-avatar">AI:</strong>
                <span class="wpaicg-chat-message">{welcome}</span></p>
            </li>
        </ul>
    </div>
    <div class="wpaicg-chat-shortcode-type">
        <textarea type="text" class="wpaicg-chat-shortcode-typing"
                  placeholder="{placeholder}" aria-label="{placeholder}"></textarea>
        <span class="wpaicg-mic-icon" data-type="shortcode" style="display:none"></span>
        <span class="wpaicg-chat-shortcode-send" role="button" aria-label="Send"><svg
              viewBox="0 0 24 24" width="20" height="20"><path
              d="M2 21l21-9L2 3v7l15 2-15 2z"></path></svg></span>
    </div>
    <div class="wpaicg-chat-shortcode-footer">Powered by AI Power</div>
</div>
"""


def _chat(spec: PageSpec) -> str:
    body = _WIDGET_BODY.format(
        welcome=html.escape(translate(WELCOME, spec.language)),
        placeholder=html.escape(translate("Type a message", spec.language)),
    )
    if spec.variant == "params_only":
        return '<div id="wpaicg-chat-root" class="wpaicg-chat-placeholder"></div>\n'
    if spec.variant == "two_widgets":
        first = _open_tag(spec, CUSTOM_BOT_ID) + body
        second = _open_tag(spec, spec.bot_id) + body
        return first + '\n<hr class="wp-block-separator">\n' + second
    chat = _open_tag(spec, spec.bot_id) + body
    if spec.widget == "widget":
        wrapper = (
            f'<div data-id="{_WIDGET_WRAPPER_ID}" id="wpaicgChat{_WIDGET_WRAPPER_ID}" '
            'class="wpaicg_chat_widget wpaicg_widget_left">\n'
        )
        chat = wrapper + chat + "</div>\n"
    return chat


_CSS_RULES = "".join(
    f".elementor-{n} .elementor-element.elementor-element-{n * 7919 % 65536:04x}"
    f"{{margin:0 auto;padding:{n % 9}px {n % 5}px;color:#{n * 2654435761 % 16777216:06x}}}\n"
    for n in range(64)
)

_FOOTER_MARKUP = "".join(
    f'<li class="wp-block-post post-{n} post type-post status-publish"><h3 '
    f'class="wp-block-post-title"><a href="/related-{n}/">Related article {n}</a></h3>'
    f'<div class="wp-block-post-excerpt"><p>Summary {n * 7919 % 997} of a related text, '
    "kept long enough to look like a real listing of posts.</p></div></li>\n"
    for n in range(64)
)


def padding_css(size: int) -> str:
    """Exactly ``size`` bytes (ASCII) of theme CSS, to pad the page before the chat."""
    if size <= 0:
        return ""
    repeat = size // len(_CSS_RULES) + 1
    return (_CSS_RULES * repeat)[:size]


def footer_markup(size: int) -> str:
    """About ``size`` bytes (ASCII, whole elements) of listing markup for the footer."""
    if size <= 0:
        return ""
    repeat = size // len(_FOOTER_MARKUP) + 1
    text = (_FOOTER_MARKUP * repeat)[:size]
    return text[: text.rfind("\n") + 1] or _FOOTER_MARKUP.splitlines(keepends=True)[0]


def _php_js(value: object) -> str:
    return json.dumps(value, separators=(",", ":")).replace("/", "\\/")


def _stylesheet(handle: str, href: str) -> str:
    return f"<link rel='stylesheet' id='{handle}-css' href='{href}' media='all' />"


def _script(handle: str, src: str) -> str:
    return f"<script src='{src}' id='{handle}-js'></script>"


def _localized(handle: str, statement: str, style: str) -> list[str]:
    """A ``wp_localize_script`` block (``var name = {...};``) in ``style``."""
    if style == "base64":
        encoded = base64.b64encode(statement.encode()).decode()
        return [f'<script defer id="{handle}-js-extra" src="data:text/javascript;base64,{encoded}">'
                "</script>"]  # fmt: skip
    if style == "cdata":
        return [
            f"<script type='text/javascript' id='{handle}-js-extra'>",
            "/* <![CDATA[ */",
            statement,
            "/* ]]> */",
            "</script>",
        ]
    return [f'<script id="{handle}-js-extra">', statement, "</script>"]


def _params(spec: PageSpec) -> list[str]:
    if spec.variant == "no_nonce":
        return []
    version = parse_version(spec.plugin_version)
    params: dict[str, object] = {
        "ajax_url": f"{spec.url}/wp-admin/admin-ajax.php",
        "search_nonce": spec.nonce,
        "logged_in": "0",
        "languages": {
            "source": translate("Sources", spec.language),
            "no_result": translate("No result found", spec.language),
            "wrong": translate("Something went wrong", spec.language),
        },
    }
    if _aipower.has_katex(version):
        params["katex_enabled"] = "0"
    return _localized("wpaicg-init", f"var wpaicgParams = {_php_js(params)};", spec.params_style)


def render_page(spec: PageSpec, padding: str = "", footer: str = "") -> str:
    """Return the page HTML for ``spec``; ``padding`` (CSS) goes in an inline style block
    in ``<head>``, ``footer`` (markup) between the content and the footer scripts."""
    url = spec.url
    ver = html.escape(spec.plugin_version)
    esc_url = html.escape(url)
    plugin = f"{esc_url}/wp-content/plugins/gpt3-ai-content-generator"
    theme = f"{esc_url}/wp-content/themes/astra"
    has_hints = spec.variant == "params_only"
    search_page = spec.variant == "empty_post_id"
    api_settings = {"root": f"{url}/wp-json/", "nonce": spec.rest_nonce, "versionString": "wp/v2/"}
    title = "Search results" if search_page else "ChatGPT 4o &#8211; Free ChatGPT Online, No Login"
    head = [
        "<!DOCTYPE html>",
        f'<html lang="{html_lang(spec.language)}">',
        "<head>",
        '<meta charset="UTF-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{title}</title>",
        "<meta name='robots' content='index, follow, max-image-preview:large' />",
        '<link rel="alternate" type="application/rss+xml" title="ChatGPT 4o &raquo; Feed" '
        f'href="{esc_url}/feed/" />',
        _stylesheet(
            "wp-block-library",
            f"{esc_url}/wp-includes/css/dist/block-library/style.min.css?ver=6.6.2",
        ),
        _stylesheet(
            "wpaicg-chat-shortcode", f"{plugin}/public/css/wpaicg-chat-shortcode.css?ver={ver}"
        ),
        _stylesheet("astra-theme-css", f"{theme}/assets/css/minified/main.min.css?ver=4.8.3"),
    ]
    if padding:
        head.append('<style id="astra-theme-css-inline-css">')
        head.append(padding)
        head.append("</style>")
    head += [
        _script("jquery-core", f"{esc_url}/wp-includes/js/jquery/jquery.min.js?ver=3.7.1"),
        '<script id="wp-api-request-js-extra">',
        f"var wpApiSettings = {_php_js(api_settings)};",
        "</script>",
    ]
    if spec.foreign_params:
        site_vars = {"ajax_url": url + FOREIGN_AJAX_PATH, "search_nonce": spec.foreign_nonce}
        head += _localized("site-vars", f"var site_vars = {_php_js(site_vars)};", "inline")
    head += [
        f'<link rel="https://api.w.org/" href="{esc_url}/wp-json/" />',
        '<meta name="generator" content="WordPress 6.6.2" />',
        f'<link rel="canonical" href="{esc_url}/" />',
    ]
    if has_hints:
        head.append(f"<link rel='shortlink' href='{esc_url}/?p={spec.post_id}' />")
    head.append("</head>")
    if has_hints:
        body_class = (
            f"post-template-default single single-post postid-{spec.post_id} "
            "single-format-standard wp-custom-logo ast-desktop ast-plain-container"
        )
        article_open = (
            f'<article id="post-{spec.post_id}" class="post-{spec.post_id} post type-post '
            'status-publish format-standard hentry category-ai ast-article-single">'
        )
    elif search_page:
        body_class = "search search-results wp-custom-logo ast-plain-container"
        article_open = '<article class="page type-page status-publish hentry ast-article-single">'
    else:
        body_class = "home page-template-default page wp-custom-logo ast-plain-container"
        article_open = '<article class="page type-page status-publish hentry ast-article-single">'
    body = [
        f'<body class="{body_class}">',
        '<a class="skip-link screen-reader-text" href="#content">Skip to content</a>',
        '<div class="hfeed site" id="page">',
        '<header class="site-header" id="masthead">',
        f'    <div class="site-branding"><a href="{esc_url}/" rel="home">ChatGPT 4o</a></div>',
        '    <nav class="main-navigation"><ul class="main-header-menu">'
        f'<li class="menu-item"><a href="{esc_url}/">Home</a></li>'
        f'<li class="menu-item"><a href="{esc_url}/privacy-policy/">Privacy Policy</a></li>'
        "</ul></nav>",
        "</header>",
        '<div id="content" class="site-content">',
        '<main id="main" class="site-main">',
        article_open,
        '<header class="entry-header">',
        f'<h1 class="entry-title">{POST_TITLE}</h1>',
        "</header>",
        '<div class="entry-content clear">',
        '<input type="hidden" id="wpaicg-img-nonce" name="wpaicg-img-nonce" '
        f'value="{spec.image_nonce}">',
        "<p>Ask anything. Answers come from OpenAI&#8217;s GPT-4o mini.</p>",
    ]
    content_end = [
        "<h2>Frequently asked questions</h2>",
        "<p>Is it free? Yes. Do I need an account? No.</p>",
        "</div>",
        "</article>",
        "</main>",
        "</div>",
    ]
    footer_lines = []
    if footer:
        footer_lines = ['<ul class="wp-block-post-template related-posts">', footer + "</ul>"]
    footer_lines += [
        '<footer class="site-footer">',
        '<div class="ast-small-footer">Copyright &copy; 2024 ChatGPT 4o</div>',
        "</footer>",
        "</div>",
    ]
    scripts = [
        *_params(spec),
        _script("wpaicg-chat-script", f"{plugin}/public/js/wpaicg-chat.js?ver={ver}"),
        _script("wp-embed", f"{esc_url}/wp-includes/js/wp-embed.min.js?ver=6.6.2"),
        "</body>",
        "</html>",
        "",
    ]
    chat = _chat(spec)
    in_content, in_footer = ("", chat) if spec.widget == "widget" else (chat, "")
    if spec.variant == "minified":

        def squash(lines: list[str]) -> str:
            return "".join(line.strip() for line in lines)

        page = (
            squash(head)
            + squash(body)
            + squash(in_content.splitlines())
            + squash(content_end)
            + squash(footer_lines)
            + squash(in_footer.splitlines())
            + squash(scripts)
        )
    else:
        page = (
            "\n".join(head)
            + "\n"
            + "\n".join(body)
            + "\n"
            + in_content
            + "\n".join(content_end)
            + "\n"
            + "\n".join(footer_lines)
            + "\n"
            + in_footer
            + "\n".join(scripts)
        )
    return spec.notices + page


def wp_die_page(message_html: str, title: str = "Something went wrong.") -> str:
    """A WordPress ``wp_die()`` error page; ``message_html`` is inserted as is."""
    return f"""<!DOCTYPE html>
<html lang="en-US">
<head>
	<meta http-equiv="Content-Type" content="text/html; charset=utf-8" />
	<meta name="viewport" content="width=device-width, initial-scale=1.0">
	<meta name='robots' content='max-image-preview:large, noindex, follow' />
	<title>{html.escape(title)}</title>
	<style type="text/css">
		html {{ background: #f1f1f1; }}
		body {{ background: #fff; border: 1px solid #ccd0d4; color: #444; margin: 2em auto;
			padding: 1em 2em; max-width: 700px; font-family: sans-serif; }}
		#error-page {{ margin-top: 50px; }}
		#error-page .wp-die-message, #error-page p {{ font-size: 14px; line-height: 1.5; margin: 25px 0 20px; }}
	</style>
</head>
<body id="error-page">
	<div class="wp-die-message">{message_html}</div></body>
</html>
"""  # noqa: E501


def cloudflare_page(host: str, ray: str) -> str:
    """A Cloudflare managed-challenge ("Just a moment...") page."""
    host = html.escape(host)
    return f"""<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title><meta http-equiv="Content-Type" content="text/html; charset=UTF-8"><meta http-equiv="X-UA-Compatible" content="IE=Edge"><meta name="robots" content="noindex,nofollow"><meta name="viewport" content="width=device-width,initial-scale=1"><style>*{{box-sizing:border-box;margin:0;padding:0}}html{{line-height:1.15;font-family:system-ui,-apple-system,sans-serif}}body{{display:flex;flex-direction:column;height:100vh;min-height:100vh}}.main-content{{margin:8rem auto;max-width:60rem;padding-left:1.5rem}}</style></head><body><div class="main-wrapper" role="main"><div class="main-content"><noscript><div class="h2"><span id="challenge-error-text">Enable JavaScript and cookies to continue</span></div></noscript><h1 class="zone-name-title h1">{host}</h1><p>Verifying you are human. This may take a few seconds.</p></div></div><script>(function(){{window._cf_chl_opt={{cvId: '3',cZone: "{host}",cType: 'managed',cRay: '{ray}',cH: 'emulated',md: 'emulated'}};}}());</script><div class="footer" role="contentinfo"><div class="footer-inner"><div class="clearfix diagnostic-wrapper"><div class="ray-id">Ray ID: <code>{ray}</code></div></div><div class="text-center" id="footer-text">Performance &amp; security by Cloudflare</div></div></div></body></html>"""  # noqa: E501


_REASONS = {
    417: "Expectation Failed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}


def error_page(code: int) -> str:
    """An error page for ``code``: WordPress's critical-error page for 500, else nginx's."""
    if code == 500:
        return wp_die_page(
            "<p>There has been a critical error on this website.</p>"
            '<p><a href="https://wordpress.org/documentation/article/faq-troubleshooting/">'
            "Learn more about troubleshooting WordPress.</a></p>",
            title="WordPress &rsaquo; Error",
        )
    reason = _REASONS.get(code, "Error")
    return (
        f"<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n"
        f"<center><h1>{code} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    )


def not_found_page(url: str) -> str:
    """WordPress's 404 page, short."""
    return (
        '<!DOCTYPE html>\n<html lang="en-US">\n<head>\n<meta charset="UTF-8">\n'
        "<title>Page not found &#8211; ChatGPT 4o</title>\n</head>\n"
        '<body class="error404 wp-custom-logo">\n<main id="main" class="site-main">\n'
        '<section class="error-404 not-found"><h1 class="page-title">'
        "This page doesn't seem to exist.</h1>\n"
        f'<p>It looks like the link pointing here was faulty. <a href="{html.escape(url)}/">'
        "Go home</a></p></section>\n</main>\n</body>\n</html>\n"
    )


def html_answer_page(url: str) -> str:
    """An HTML page answered with status 200 where JSON was expected (e.g. a cache plugin
    serving the home page, or a maintenance-mode page)."""
    return wp_die_page(
        "<h1>Briefly unavailable for scheduled maintenance.</h1>"
        f'<p>Check back in a minute. <a href="{html.escape(url)}/">ChatGPT 4o</a></p>',
        title="Maintenance",
    )
