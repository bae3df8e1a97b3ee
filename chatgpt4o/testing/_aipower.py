"""What changed between AI Power releases, as far as the chat's wire behaviour goes.

Every function takes the emulated version as a tuple (``parse_version("1.8.91")``). The
tables of source lines are where the plugin's PHP prints the warnings of docs/protocol.md
(they differ between releases because the file grew); the emulator names them in the
warnings it prints, as a real debug-display site does.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ABSPATH",
    "ASSISTANT_FILE",
    "ASSISTANT_HEADER_LINES",
    "CHAT_FILE",
    "Version",
    "empty_message_warning_line",
    "flag_echo_line",
    "has_action",
    "has_ai_name",
    "has_assistant",
    "has_empty_stream_on_failure",
    "has_katex",
    "has_memory_limit",
    "has_sidebar",
    "history_trim_line",
    "history_warning_line",
    "json_after_stream",
    "message_processing",
    "reads_request",
    "stale_nonce_is_403",
    "stream_header_lines",
    "widget_post_id_bug",
]

Version = tuple[int, ...]

#: Where WordPress is installed on the emulated server.
ABSPATH = "/var/www/html/"
_PLUGIN_DIR = ABSPATH + "wp-content/plugins/gpt3-ai-content-generator/"
#: The chat handler's file.
CHAT_FILE = _PLUGIN_DIR + "classes/wpaicg_chat.php"
#: The Assistant handler's file.
ASSISTANT_FILE = _PLUGIN_DIR + "classes/wpaicg_assistants.php"
#: The four ``header()`` calls that start an Assistant stream (1.8.95 to 2.2).
ASSISTANT_HEADER_LINES = (278, 279, 280, 281)


def _line_at(version: Version, table: Sequence[tuple[Version, int]]) -> int | None:
    """The value of the last row of ``table`` (oldest first) whose version <= ``version``."""
    found = None
    for since, line in table:
        if version >= since:
            found = line
    return found


def has_action(version: Version) -> bool:
    """The legacy chat actions exist (1.8.79 up to 2.2; 2.3 removed them)."""
    return version < (2, 3)


def reads_request(version: Version) -> bool:
    """The handler reads its fields from ``$_REQUEST`` (query and body), not only ``$_POST``."""
    return version < (1, 8, 91)


def stale_nonce_is_403(version: Version) -> bool:
    """``check_admin_referer``: a bad nonce is WordPress's bare 403, not the plugin's JSON."""
    return version >= (1, 8, 91)


def message_processing(version: Version) -> str:
    """How ``message`` is cleaned: ``"slashed"`` (``sanitize_text_field`` of the
    magic-quoted value), ``"sanitized"`` (``sanitize_text_field(wp_unslash())``) or
    ``"raw"`` (``wp_unslash`` only)."""
    if version < (1, 8, 91):
        return "slashed"
    if version < (1, 8, 96):
        return "sanitized"
    return "raw"


def json_after_stream(version: Version) -> bool:
    """The full JSON answer follows the stream (1.8.79 to 1.8.84)."""
    return version < (1, 8, 85)


def has_empty_stream_on_failure(version: Version) -> bool:
    """A failed call to the model leaves the stream empty instead of sending the JSON."""
    return not json_after_stream(version)


def has_memory_limit(version: Version) -> bool:
    """The chat markup carries ``data-memory-limit`` (from 1.8.80)."""
    return version >= (1, 8, 80)


def has_ai_name(version: Version) -> bool:
    """The chat markup carries ``data-ai-name`` (up to 1.8.95)."""
    return version < (1, 8, 96)


def has_assistant(version: Version) -> bool:
    """Assistant mode and ``data-assistant-enabled`` exist (from 1.8.95)."""
    return version >= (1, 8, 95)


def has_sidebar(version: Version) -> bool:
    """The chat markup carries ``data-sidebar-enabled`` (from 1.9.4)."""
    return version >= (1, 9, 4)


def has_katex(version: Version) -> bool:
    """``wpaicgParams`` carries ``katex_enabled`` (from 1.9.11)."""
    return version >= (1, 9, 11)


def widget_post_id_bug(version: Version) -> bool:
    """The site-wide widget prints ``data-post-id="<N"`` (1.9.16 to 2.2)."""
    return version >= (1, 9, 16)


_HISTORY_WARNING = (((1, 8, 91), 942), ((1, 8, 95), 944), ((1, 8, 96), 945), ((1, 9, 4), 946))
_EMPTY_MESSAGE_WARNING = (
    ((1, 8, 86), 1186),
    ((1, 8, 87), 1283),
    ((1, 8, 90), 1282),
    ((1, 8, 91), 1289),
    ((1, 8, 95), 1480),
    ((1, 8, 96), 1481),
    ((1, 9, 3), 1498),
    ((1, 9, 4), 1499),
    ((1, 9, 9), 1500),
)
_STREAM_HEADERS = (
    ((1, 8, 91), 1162),
    ((1, 8, 95), 1353),
    ((1, 8, 96), 1354),
    ((1, 9, 3), 1357),
    ((1, 9, 4), 1358),
)
_HISTORY_TRIM = (
    ((1, 8, 79), 1529),
    ((1, 8, 80), 1537),
    ((1, 8, 82), 1520),
    ((1, 8, 86), 998),
    ((1, 8, 87), 1095),
    ((1, 8, 91), 1107),
    ((1, 8, 95), 1139),
    ((1, 8, 96), 1140),
    ((1, 9, 3), 1143),
    ((1, 9, 4), 1144),
)


def history_warning_line(version: Version) -> int | None:
    """Where ``$wpaicg_chat_history`` is read undefined when the field is missing
    (1.8.91 to 2.2; older releases guard it with ``isset``)."""
    return _line_at(version, _HISTORY_WARNING) if has_action(version) else None


def empty_message_warning_line(version: Version) -> int | None:
    """Where ``$stream_nav_setting`` is read undefined after an empty message (1.8.86+)."""
    return _line_at(version, _EMPTY_MESSAGE_WARNING) if has_action(version) else None


def stream_header_lines(version: Version) -> tuple[int, int, int]:
    """The three ``header()`` calls that start a chat stream (older releases: 1.8.91's)."""
    first = _line_at(version, _STREAM_HEADERS) or _STREAM_HEADERS[0][1]
    return (first, first + 1, first + 2)


def history_trim_line(version: Version) -> int:
    """Where each history entry goes through ``trim()``."""
    return _line_at(version, _HISTORY_TRIM) or _HISTORY_TRIM[0][1]


# Where the flag events are echoed: (banned IP, banned words, token limit).
_FLAG_ECHO = (
    ((1, 8, 79), (2182, 2221, 1163)),
    ((1, 8, 80), (2190, 2229, 1171)),
    ((1, 8, 82), (2173, 2212, 1154)),
    ((1, 8, 85), (2176, 2215, 1154)),
    ((1, 8, 86), (1657, 1696, 632)),
    ((1, 8, 87), (1754, 1793, 729)),
    ((1, 8, 88), (1874, 1913, 729)),
    ((1, 8, 90), (1802, 1841, 729)),
    ((1, 8, 91), (1846, 1885, 713)),
    ((1, 8, 95), (2045, 2084, 715)),
    ((1, 8, 96), (2046, 2085, 712)),
    ((1, 9, 3), (2063, 2102, 712)),
    ((1, 9, 4), (2064, 2103, 713)),
    ((1, 9, 9), (2065, 2104, 713)),
    ((1, 9, 16), (2102, 2141, 713)),
)
_FLAG_INDEX = {"ipBanned": 0, "messageFlagged": 1, "tokenLimitReached": 2}


def flag_echo_line(version: Version, flag: str) -> int:
    """Where the plugin echoes the flag event ``flag`` (the token limit's line for the
    flags of the Pro moderation and the vector database, which live elsewhere)."""
    found = _FLAG_ECHO[0][1]
    for since, lines in _FLAG_ECHO:
        if version >= since:
            found = lines
    return found[_FLAG_INDEX.get(flag, 2)]
