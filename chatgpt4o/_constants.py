"""Defaults in one place: timeouts, retries, backoff, sizes and browser identity."""

from __future__ import annotations

__all__ = [
    "BODY_PREVIEW_CHARS",
    "BROWSER_HEADERS",
    "CONVERSATION_MEMORY_SIZE",
    "DEFAULT_IMPERSONATE",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_MODEL",
    "DEFAULT_SITE_URL",
    "DEFAULT_TIMEOUT",
    "ERROR_BODY_BYTES",
    "FALLBACK_USER_AGENT",
    "INITIAL_RETRY_DELAY",
    "MAX_DOWNLOAD_BYTES",
    "MAX_PAGE_BYTES",
    "MAX_PARAMS_BYTES",
    "MAX_REQUEST_TIMEOUT",
    "MAX_RESPONSE_BYTES",
    "MAX_RETRY_AFTER",
    "MAX_RETRY_DELAY",
    "MAX_TAG_BYTES",
    "MODEL_ALIASES",
    "PAGE_DRAIN_BYTES",
    "RETRY_JITTER",
]

#: The site, its model, and the model's short name.
DEFAULT_SITE_URL = "https://chatgpt4o.one"
DEFAULT_MODEL = "gpt-4o-mini-2024-07-18"
MODEL_ALIASES: dict[str, str] = {"gpt-4o-mini": DEFAULT_MODEL}

#: Seconds one whole call may take: page scrape, POST, retries and sleeps.
DEFAULT_TIMEOUT = 120.0

#: Retries after the first attempt for transport errors, 408, 409, 429 and 5xx.
DEFAULT_MAX_RETRIES = 2

#: Backoff before retry n (0-based) is min(INITIAL_RETRY_DELAY * 2**n, MAX_RETRY_DELAY) ...
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
#: A call with no deadline waits at most this long for a server's Retry-After.
MAX_RETRY_AFTER = 60.0
#: ... shortened by up to this fraction at random, so clients do not retry in lockstep.
RETRY_JITTER = 0.25

#: The page scrape stops reading after this many bytes (themes inline a lot, but the
#: widget sits in the first few megabytes; a runaway page must not eat memory).
MAX_PAGE_BYTES = 8 * 1024 * 1024
#: Once the chat widget is found, the page is still read up to this much further, so
#: a page that ends soon after leaves its keep-alive connection reusable.
PAGE_DRAIN_BYTES = 1024 * 1024
#: A chat answer (plain or streamed) larger than this is refused.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
#: An opening tag longer than this is not a chat widget (real ones are a few KB; a
#: data-config with a bot's settings stays far below).
MAX_TAG_BYTES = 256 * 1024
#: The script that holds wpaicgParams (or its base64 copy) is read up to this size.
MAX_PARAMS_BYTES = 256 * 1024
#: How much of an error answer is read to tell what it is.
ERROR_BODY_BYTES = 64 * 1024
#: Any body larger than this is refused by the transport itself (the parsers stop far
#: earlier; this guards the memory of an answer read whole).
MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024
#: The longest time handed to an HTTP library for one request (curl's millisecond timer
#: must not overflow); a later deadline is still kept by the deadline's own timer.
MAX_REQUEST_TIMEOUT = 30 * 24 * 3600.0
#: Conversations remembered per site, so that a call can continue one kept on the server
#: (least recently used forgotten first).
CONVERSATION_MEMORY_SIZE = 1024
#: How much of a server's body an error message shows.
BODY_PREVIEW_CHARS = 200

#: curl_cffi browser profile: TLS and HTTP/2 fingerprints of a current Chrome.
DEFAULT_IMPERSONATE = "chrome"

#: Headers a browser sends to the site; origin, referer and the XHR marker are added
#: per request because they depend on the site's URL. curl_cffi's impersonation adds a
#: user-agent (and sec-ch-ua headers) matching its TLS fingerprint, so the user-agent
#: below is only sent by backends that do not impersonate.
BROWSER_HEADERS: dict[str, str] = {
    "accept": "*/*",
    "accept-language": "en-US,en;q=0.9",
}
FALLBACK_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
