"""The bits of PHP and WordPress behaviour the emulator reproduces.

- :func:`php_json` encodes like PHP's ``json_encode`` with no flags (what ``wp_send_json``
  sends): ``/`` escaped as ``\\/`` and every non-ASCII character as ``\\uXXXX``.
- :func:`php_json_decode` decodes like ``json_decode($text, true)``: ``None`` for anything
  PHP would not accept.
- :func:`sanitize_text_field` and :func:`sanitize_textarea_field` follow WordPress's
  ``_sanitize_text_fields``; :func:`esc_html`, :func:`addslashes` (WordPress's magic
  quotes), :func:`php_trim`, :func:`php_empty` and :func:`php_string` are their PHP
  namesakes for strings.
- :class:`PhpMessage` is a warning or notice as PHP prints it with ``display_errors`` on.
- :func:`parse_version` turns ``"1.8.91"`` into ``(1, 8, 91)`` for comparisons.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass

__all__ = [
    "PhpMessage",
    "addslashes",
    "esc_html",
    "parse_version",
    "php_empty",
    "php_json",
    "php_json_decode",
    "php_string",
    "php_trim",
    "sanitize_text_field",
    "sanitize_textarea_field",
]


def php_json(value: object) -> str:
    """Encode ``value`` as PHP's ``json_encode`` would (compact, ``\\/``, ``\\uXXXX``)."""
    return json.dumps(value, ensure_ascii=True, separators=(",", ":")).replace("/", "\\/")


def _reject_constant(name: str) -> object:
    raise ValueError(f"PHP's JSON parser has no {name}")


def php_json_decode(text: str) -> object | None:
    """``json_decode($text, true)``: objects become dicts; ``None`` when PHP fails.

    PHP refuses what Python's parser tolerates: ``NaN``/``Infinity``, invalid UTF-8 (lone
    surrogates here) and nesting deeper than 512.
    """
    if _SURROGATE.search(text):
        return None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None
    return value if _depth(value) <= 512 else None


def _depth(value: object) -> int:
    deepest, level, stack = 0, 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in item)
    return deepest


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


_PHP_TRIM = " \t\n\r\0\x0b"


def php_trim(text: str) -> str:
    """PHP's ``trim()``: strips spaces, tabs, line breaks, NUL and vertical tabs."""
    return text.strip(_PHP_TRIM)


def php_empty(text: str) -> bool:
    """PHP's ``empty()`` for a string: ``""`` and ``"0"`` are empty, ``" "`` is not."""
    return text in ("", "0")


def php_string(value: object) -> str:
    """``(string) $value`` for a JSON scalar (``true`` is ``"1"``, ``null`` is ``""``)."""
    if value is True:
        return "1"
    if value is False or value is None:
        return ""
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
            return str(int(value))
        text = f"{value:.14G}"
        mantissa, sep, exponent = text.partition("E")
        if sep and "." not in mantissa:
            mantissa += ".0"
        return mantissa + sep + exponent
    return str(value)


def addslashes(text: str) -> str:
    """WordPress's magic quotes on ``$_GET``/``$_POST``/``$_REQUEST`` (PHP ``addslashes``)."""
    return (
        text.replace("\\", "\\\\").replace("'", "\\'").replace('"', '\\"').replace("\0", "\\0")
    )


# wp_pre_kses_less_than(): a "<" that does not open a complete tag is HTML-escaped.
_LESS_THAN_FRAGMENT = re.compile(r"<[^>]*?((?=<)|>|$)")
_BARE_AMPERSAND = re.compile(r"&(?!(?:[A-Za-z][A-Za-z0-9]*|#[0-9]+|#[xX][0-9A-Fa-f]+);)")
# wp_strip_all_tags(): script and style elements go with their content, then strip_tags().
_SCRIPT_OR_STYLE = re.compile(r"<(script|style)[^>]*?>.*?</\1>", re.IGNORECASE | re.DOTALL)
_WHITESPACE_RUN = re.compile(r"[\r\n\t ]+")
_SPACE_RUN = re.compile(r" +")
_PERCENT_OCTET = re.compile(r"%[a-f0-9]{2}", re.IGNORECASE)
_SURROGATE = re.compile("[\ud800-\udfff]")


def esc_html(text: str) -> str:
    """WordPress's ``esc_html``: ``& < > " '`` escaped, existing entities left alone."""
    if _SURROGATE.search(text):
        return ""
    text = _BARE_AMPERSAND.sub("&amp;", text)
    return (
        text.replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;").replace("'", "&#039;")
    )


def _escape_lone_less_than(match: re.Match[str]) -> str:
    fragment = match.group()
    return fragment if ">" in fragment else esc_html(fragment)


def _strip_tags(text: str) -> str:
    """PHP's ``strip_tags`` for the cases that matter: tags (quotes inside them respected,
    an unclosed one runs to the end), comments, and a ``<`` followed by white space, which
    is not a tag and stays."""
    out: list[str] = []
    index, length = 0, len(text)
    while index < length:
        char = text[index]
        if char != "<" or (index + 1 < length and text[index + 1].isspace()):
            out.append(char)
            index += 1
            continue
        if text.startswith("<!--", index):
            end = text.find("-->", index + 4)
            index = length if end < 0 else end + 3
            continue
        index += 1
        quote, depth = "", 1
        while index < length:
            char = text[index]
            index += 1
            if quote:
                if char == quote:
                    quote = ""
            elif char in "\"'":
                quote = char
            elif char == "<":
                depth += 1
            elif char == ">":
                depth -= 1
                if not depth:
                    break
    return "".join(out)


def sanitize_text_field(text: str, *, keep_newlines: bool = False) -> str:
    """Sanitize ``text`` like WordPress's ``sanitize_text_field``.

    Invalid UTF-8 (lone surrogates, as produced by ``errors="surrogateescape"``) empties the
    text; a stray ``<`` is escaped, then tags are stripped (``<script>``/``<style>`` with
    their content); line breaks, tabs and runs of spaces become one space; the result is
    trimmed; ``%XX`` octets are removed.

    With ``keep_newlines`` (``sanitize_textarea_field``) white space is left as it is,
    apart from the trimming.
    """
    if _SURROGATE.search(text):
        return ""
    if "<" in text:
        text = _LESS_THAN_FRAGMENT.sub(_escape_lone_less_than, text)
        text = php_trim(_strip_tags(_SCRIPT_OR_STYLE.sub("", text)))
        text = text.replace("<\n", "&lt;\n")
    if not keep_newlines:
        text = _WHITESPACE_RUN.sub(" ", text)
    text = php_trim(text)
    found = False
    while _PERCENT_OCTET.search(text):
        text = _PERCENT_OCTET.sub("", text)
        found = True
    if found:
        text = php_trim(_SPACE_RUN.sub(" ", text))
    return text


def sanitize_textarea_field(text: str) -> str:
    """WordPress's ``sanitize_textarea_field``: :func:`sanitize_text_field` keeping lines."""
    return sanitize_text_field(text, keep_newlines=True)


@dataclass(frozen=True)
class PhpMessage:
    """A PHP warning, notice or deprecation, printed where it happened.

    Attributes:
        level: ``"Warning"``, ``"Notice"``, ``"Deprecated"`` or ``"Fatal error"``.
        text: the message, e.g. ``"Undefined variable $x"``.
        file: the PHP file it names. line: the line it names.
    """

    level: str
    text: str
    file: str
    line: int

    def html(self) -> str:
        """The message as PHP prints it with ``html_errors`` on (the PHP-FPM default)."""
        return (
            f"<br />\n<b>{self.level}</b>:  {self.text} in <b>{self.file}</b> "
            f"on line <b>{self.line}</b><br />\n"
        )

    def headers_already_sent(self, file: str, line: int) -> PhpMessage:
        """The warning of a ``header()`` call at ``file:line`` after this message's output."""
        text = (
            "Cannot modify header information - headers already sent by "
            f"(output started at {self.file}:{self.line})"
        )
        return PhpMessage("Warning", text, file, line)
