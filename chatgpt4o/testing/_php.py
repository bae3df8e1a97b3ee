"""The bits of PHP and WordPress behaviour the emulator reproduces.

- :func:`php_json` encodes like PHP's ``json_encode`` with no flags (what ``wp_send_json``
  sends): ``/`` escaped as ``\\/`` and every non-ASCII character as ``\\uXXXX``.
- :func:`sanitize_text_field` follows WordPress's ``_sanitize_text_fields``.
- :func:`parse_version` turns ``"1.8.91"`` into ``(1, 8, 91)`` for comparisons.
"""

from __future__ import annotations

import functools
import json
import re

__all__ = ["parse_version", "php_json", "sanitize_text_field"]


def php_json(value: object) -> str:
    """Encode ``value`` as PHP's ``json_encode`` would (compact, ``\\/``, ``\\uXXXX``)."""
    return json.dumps(value, ensure_ascii=True, separators=(",", ":")).replace("/", "\\/")


@functools.lru_cache(maxsize=64)
def parse_version(version: str) -> tuple[int, ...]:
    """Return the numeric parts of a dotted version string.

    Each part contributes its leading digits (``"2.3.0-beta"`` gives ``(2, 3, 0)``).

    >>> parse_version("1.8.91")
    (1, 8, 91)
    """
    parts: list[int] = []
    for piece in version.strip().split("."):
        match = re.match(r"\d+", piece)
        if match is None:
            break
        parts.append(int(match.group()))
    if not parts:
        raise ValueError(f"not a plugin version: {version!r}")
    return tuple(parts)


# wp_pre_kses_less_than(): a "<" that does not open a complete tag is HTML-escaped.
_LESS_THAN_FRAGMENT = re.compile(r"<[^>]*?((?=<)|>|$)")
_BARE_AMPERSAND = re.compile(r"&(?!(?:[A-Za-z][A-Za-z0-9]*|#[0-9]+|#[xX][0-9A-Fa-f]+);)")
# wp_strip_all_tags(): script and style elements go with their content, then strip_tags().
_SCRIPT_OR_STYLE = re.compile(r"<(script|style)[^>]*?>.*?</\1>", re.IGNORECASE | re.DOTALL)
_TAG_OR_COMMENT = re.compile(r"<!--.*?(?:-->|$)|<[^>]*>", re.DOTALL)
_WHITESPACE_RUN = re.compile(r"[\r\n\t ]+")
_BLANK_RUN = re.compile(r"[\t ]+")
_SPACE_RUN = re.compile(r" +")
_PERCENT_OCTET = re.compile(r"%[a-f0-9]{2}", re.IGNORECASE)
_SURROGATE = re.compile("[\ud800-\udfff]")
_PHP_TRIM = " \t\n\r\0\x0b"


def _esc_html(text: str) -> str:
    text = _BARE_AMPERSAND.sub("&amp;", text)
    return (
        text.replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;").replace("'", "&#039;")
    )


def _escape_lone_less_than(match: re.Match[str]) -> str:
    fragment = match.group()
    return fragment if ">" in fragment else _esc_html(fragment)


def sanitize_text_field(text: str, *, keep_newlines: bool = False) -> str:
    """Sanitize ``text`` like WordPress's ``sanitize_text_field``.

    Invalid UTF-8 (lone surrogates, as produced by ``errors="surrogateescape"``) empties the
    text; tags are stripped (``<script>``/``<style>`` with their content) and a stray ``<``
    is escaped; line breaks and tabs become spaces and runs of them collapse; the result is
    trimmed; ``%XX`` octets are removed.

    With ``keep_newlines`` (AI Power 1.8.91 and newer) line breaks are kept; tabs and runs
    of spaces still collapse to one space.
    """
    if _SURROGATE.search(text):
        return ""
    if "<" in text:
        text = _LESS_THAN_FRAGMENT.sub(_escape_lone_less_than, text)
        text = _SCRIPT_OR_STYLE.sub("", text)
        text = _TAG_OR_COMMENT.sub("", text)
        text = text.replace("<", "&lt;")
    text = (_BLANK_RUN if keep_newlines else _WHITESPACE_RUN).sub(" ", text)
    text = text.strip(_PHP_TRIM)
    found = False
    while _PERCENT_OCTET.search(text):
        text = _PERCENT_OCTET.sub("", text)
        found = True
    if found:
        text = _SPACE_RUN.sub(" ", text).strip(_PHP_TRIM)
    return text
