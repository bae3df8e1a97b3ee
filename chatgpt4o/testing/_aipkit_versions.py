"""What changed between AI Power releases 2.3 and 2.4.71 ("AIPKit"), wire-wise.

Every function takes the emulated version as a tuple (``parse_version("2.4.71")``). The
releases were read one by one; where a behaviour changed inside the 2.3 series, the
release that changed it is named.
"""

from __future__ import annotations

__all__ = [
    "FIRST",
    "NEWEST",
    "Version",
    "checks_images",
    "embed_gate_is_naive",
    "has_embed_gate",
    "has_json_action",
    "has_nonce_refresh",
    "has_preamble",
    "has_quota_notice",
    "has_status_events",
    "json_action_checks_nonce",
    "json_message_strips_tags",
    "message_is_sanitized",
    "quota_text",
    "stream_nonce_text",
]

Version = tuple[int, ...]

#: The first AIPKit release (the legacy ``wpaicg_*`` chat is gone from here on).
FIRST: Version = (2, 3)
#: The newest release the emulator was checked against.
NEWEST: Version = (2, 4, 71)

_QUOTA_OLD = "You have reached your token limit for this period."
_QUOTA_NEW = "You have reached your quota for this period."


def stream_nonce_text(version: Version) -> str:
    """The stream's ``error`` text for a bad nonce.

    2.3 to 2.3.19 checked the nonce inside the request handler ("Security check failed
    (nonce)."); 2.3.20 moved the check to the top of the stream handler with a new text.
    Either way it comes before the cache key is read, so the key survives.
    """
    if version >= (2, 3, 20):
        return "Security check failed. Please refresh the page and try again."
    return "Security check failed (nonce)."


def json_action_checks_nonce(version: Version) -> bool:
    """``aipkit_frontend_chat_message`` checks ``_ajax_nonce`` (2.3.20 and later; 2.3 to
    2.3.19 checked none on that action)."""
    return version >= (2, 3, 20)


def message_is_sanitized(version: Version) -> bool:
    """Step 1 runs ``sanitize_textarea_field`` on the message (2.3.20 to 2.3.25); before
    and after, the text is kept verbatim (from 2.3.26 minus invalid UTF-8 and NUL)."""
    return (2, 3, 20) <= version < (2, 3, 26)


def json_message_strips_tags(version: Version) -> bool:
    """The JSON action's message goes through ``wp_strip_all_tags`` (up to 2.3.25)."""
    return version < (2, 3, 26)


def has_embed_gate(version: Version) -> bool:
    """Cross-origin requests naming a bot are refused or allow-listed (2.3.31+)."""
    return version >= (2, 3, 31)


def embed_gate_is_naive(version: Version) -> bool:
    """2.3.31 only: on the free plan the stream refused every request naming a bot, and
    step 1 and the JSON action any request with an Origin header, the site's own included;
    on Pro any Origin was matched against the allow-list. 2.3.32 compared hosts first."""
    return version == (2, 3, 31)


def checks_images(version: Version) -> bool:
    """Step 1 validates ``image_inputs`` (count, type, base64, size) with its own error
    answers (2.3.71+); before, only a first ``image/`` item counted, the rest was dropped."""
    return version >= (2, 3, 71)


def has_nonce_refresh(version: Version) -> bool:
    """``aipkit_get_frontend_chat_nonce`` exists and the page names it (2.3.41+)."""
    return version >= (2, 3, 41)


def has_status_events(version: Version) -> bool:
    """The stream passes the model's progress on as ``event: status`` (2.3.69+)."""
    return version >= (2, 3, 69)


def has_preamble(version: Version) -> bool:
    """The stream starts with a 4 KiB ``:`` comment and ``Cache-Control`` carries
    ``no-transform`` (2.3.93+)."""
    return version >= (2, 3, 93)


def quota_text(version: Version) -> str:
    """The default quota message (``token_limit_message`` left empty): new text in 2.3.94."""
    return _QUOTA_NEW if version >= (2, 3, 94) else _QUOTA_OLD


def has_json_action(version: Version) -> bool:
    """``aipkit_frontend_chat_message`` and the config's ``streamEnabled`` (up to 2.4.0)."""
    return version < (2, 4, 1)


def has_quota_notice(version: Version) -> bool:
    """A quota ``error`` event carries a ``quota_notice`` object (2.4.5+)."""
    return version >= (2, 4, 5)
