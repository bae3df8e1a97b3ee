"""HTML the emulator serves: the WordPress page with the chat widget, and error pages.

The page follows docs/protocol.md §2. Every variant carries, before the widget, two
decoys a careless scraper may grab: the hidden ``#wpaicg-img-nonce`` input (image-upload
nonce) and ``wpApiSettings.nonce`` (REST nonce). Neither is ever accepted for chat.

Variants (``page_variant``):

``standard``
    The multi-line widget exactly as the plugin prints it, plus ``wpaicgParams``.
``minified``
    The whole page on one line, widget attributes unquoted.
``single_quoted``
    Like ``standard`` with single-quoted attributes.
``params_only``
    No widget attributes (an empty placeholder ``div``); only ``wpaicgParams.search_nonce``.
    The post ID is in ``<body class="... postid-N ...">``, ``<link rel='shortlink'
    href='URL/?p=N'>`` and ``<article id="post-N" ...>``.
``post_id_bug``
    ``data-post-id="<N"`` (the plugin 1.9.16–2.2 markup bug).
``no_post_id``
    The widget without ``data-post-id`` and no other post ID anywhere.
``no_nonce``
    The widget without ``data-nonce`` and no ``wpaicgParams``: no chat nonce at all.
``two_widgets``
    Two widgets with the same nonce and post ID: first a custom bot (``data-bot-id="5"``),
    then the default one (``data-bot-id`` = the emulator's ``bot_id``).
``reordered``
    The widget attributes in another order with extra attributes between them (including
    ``data-nonce-refresh``, whose name starts like ``data-nonce``).

Only ``params_only`` has post ID hints outside the widget, so every other variant tests
the widget parsing alone.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass

__all__ = [
    "CUSTOM_BOT_ID",
    "GREETING",
    "PAGE_VARIANTS",
    "WIDGET_KINDS",
    "PageSpec",
    "cloudflare_page",
    "error_page",
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
    "no_post_id",
    "no_nonce",
    "two_widgets",
    "reordered",
)
WIDGET_KINDS = ("shortcode", "widget")

#: ``data-bot-id`` of the first widget of the ``two_widgets`` variant.
CUSTOM_BOT_ID = 5

#: The plugin's default welcome text (also sent back as ``greeting_message``).
GREETING = "Hello human, I am a GPT powered AI chat bot. Ask me anything!"

_INDENT = "     "


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


def _widget_attributes(spec: PageSpec, bot_id: int) -> list[tuple[str, str, bool]]:
    """(name, value, spaced "=") in the plugin's order, minus what the variant drops."""
    if spec.widget == "widget":
        css_class, kind = "wpaicg-chatbox wpaicg-chatbox-bottom-right", "widget"
    else:
        css_class, kind = "wpaicg-chat-shortcode", "shortcode"
    post_id = f"<{spec.post_id}" if spec.variant == "post_id_bug" else str(spec.post_id)
    attributes = [
        ("class", css_class, False),
        ("data-user-bg-color", "#ccf5e1", False),
        ("data-ai-name", "AI", False),
        ("data-nonce", spec.nonce, False),
        ("data-post-id", post_id, False),
        ("data-url", spec.url, False),
        ("data-bot-id", str(bot_id), False),
        ("data-typewriter-effect", "0", True),
        ("data-openai_stream_nav", "1" if spec.stream else "0", False),
        ("data-memory-limit", "10", True),
        ("data-type", kind, False),
    ]
    if spec.variant == "no_post_id":
        attributes = [a for a in attributes if a[0] != "data-post-id"]
    elif spec.variant == "no_nonce":
        attributes = [a for a in attributes if a[0] != "data-nonce"]
    return attributes


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
        order: list[tuple[str, str | None]] = [
            ("data-type", None),
            ("id", f"wpaicg-chat-shortcode-{bot_id}"),
            ("data-bot-id", None),
            ("style", "width: 100%; max-width: 720px"),
            ("data-url", None),
            ("data-speech", ""),
            ("class", None),
            ("data-post-id", None),
            ("data-nonce-refresh", "0"),
            ("data-font-size", "13"),
            ("data-openai_stream_nav", None),
            ("data-nonce", None),
            ("data-user-bg-color", None),
            ("data-ai-name", None),
            ("data-typewriter-effect", None),
            ("data-memory-limit", None),
        ]
        parts = []
        for name, extra in order:
            shown = extra if extra is not None else values.get(name)
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
                <span class="wpaicg-chat-message">{greeting}</span></p>
            </li>
        </ul>
    </div>
    <div class="wpaicg-chat-shortcode-type">
        <textarea type="text" class="wpaicg-chat-shortcode-typing"
                  placeholder="Type a message" aria-label="Type a message"></textarea>
        <span class="wpaicg-mic-icon" data-type="shortcode" style="display:none"></span>
        <span class="wpaicg-chat-shortcode-send" role="button" aria-label="Send"><svg
              viewBox="0 0 24 24" width="20" height="20"><path
              d="M2 21l21-9L2 3v7l15 2-15 2z"></path></svg></span>
    </div>
    <div class="wpaicg-chat-shortcode-footer">Powered by AI Power</div>
</div>
"""


def _widget(spec: PageSpec) -> str:
    body = _WIDGET_BODY.format(greeting=html.escape(GREETING))
    if spec.variant == "params_only":
        return '<div id="wpaicg-chat-root" class="wpaicg-chat-placeholder"></div>\n'
    if spec.variant == "two_widgets":
        first = _open_tag(spec, CUSTOM_BOT_ID) + body
        second = _open_tag(spec, spec.bot_id) + body
        return first + '\n<hr class="wp-block-separator">\n' + second
    return _open_tag(spec, spec.bot_id) + body


_CSS_RULES = "".join(
    f".elementor-{n} .elementor-element.elementor-element-{n * 7919 % 65536:04x}"
    f"{{margin:0 auto;padding:{n % 9}px {n % 5}px;color:#{n * 2654435761 % 16777216:06x}}}\n"
    for n in range(64)
)


def padding_css(size: int) -> str:
    """Exactly ``size`` bytes (ASCII) of theme CSS, to pad the page before the widget."""
    if size <= 0:
        return ""
    repeat = size // len(_CSS_RULES) + 1
    return (_CSS_RULES * repeat)[:size]


def _php_js(value: object) -> str:
    return json.dumps(value, separators=(",", ":")).replace("/", "\\/")


def _stylesheet(handle: str, href: str) -> str:
    return f"<link rel='stylesheet' id='{handle}-css' href='{href}' media='all' />"


def _script(handle: str, src: str) -> str:
    return f"<script src='{src}' id='{handle}-js'></script>"


def render_page(spec: PageSpec, padding: str = "") -> str:
    """Return the page HTML for ``spec``; ``padding`` (CSS) goes in an inline style block."""
    url = spec.url
    ver = html.escape(spec.plugin_version)
    esc_url = html.escape(url)
    plugin = f"{esc_url}/wp-content/plugins/gpt3-ai-content-generator"
    theme = f"{esc_url}/wp-content/themes/astra"
    has_hints = spec.variant == "params_only"
    params = {
        "ajax_url": f"{url}/wp-admin/admin-ajax.php",
        "search_nonce": spec.nonce,
        "logged_in": 0,
        "languages": {"source": "Sources", "no_result": "No result found"},
    }
    api_settings = {"root": f"{url}/wp-json/", "nonce": spec.rest_nonce, "versionString": "wp/v2/"}
    head = [
        "<!DOCTYPE html>",
        '<html lang="en-US">',
        "<head>",
        '<meta charset="UTF-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>ChatGPT 4o &#8211; Free ChatGPT Online, No Login</title>",
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
    if spec.variant != "no_nonce":
        head += [
            '<script id="wpaicg-init-js-extra">',
            f"var wpaicgParams = {_php_js(params)};",
            "</script>",
        ]
    head += [
        _script("wpaicg-chat-script", f"{plugin}/public/js/wpaicg-chat.js?ver={ver}"),
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
        '<h1 class="entry-title">ChatGPT 4o: free online chat</h1>',
        "</header>",
        '<div class="entry-content clear">',
        '<input type="hidden" id="wpaicg-img-nonce" name="wpaicg-img-nonce" '
        f'value="{spec.image_nonce}">',
        "<p>Ask anything. Answers come from OpenAI&#8217;s GPT-4o mini.</p>",
    ]
    tail = [
        "<h2>Frequently asked questions</h2>",
        "<p>Is it free? Yes. Do I need an account? No.</p>",
        "</div>",
        "</article>",
        "</main>",
        "</div>",
        '<footer class="site-footer">',
        '<div class="ast-small-footer">Copyright &copy; 2024 ChatGPT 4o</div>',
        "</footer>",
        "</div>",
        _script("wp-embed", f"{esc_url}/wp-includes/js/wp-embed.min.js?ver=6.6.2"),
        "</body>",
        "</html>",
        "",
    ]
    widget = _widget(spec)
    if spec.variant == "minified":

        def squash(lines: list[str]) -> str:
            return "".join(line.strip() for line in lines)

        widget_text = squash(widget.splitlines())
        return squash(head) + squash(body) + widget_text + squash(tail)
    return "\n".join(head) + "\n" + "\n".join(body) + "\n" + widget + "\n".join(tail)


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
