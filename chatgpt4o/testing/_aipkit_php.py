"""PHP and WordPress functions the AIPKit emulator needs besides those of ``_php``.

- :func:`sanitize_key`, :func:`absint` and :func:`stripslashes` are WordPress's and PHP's
  namesakes for strings (``$_GET``/``$_POST`` values).
- :func:`json_unicode` is ``json_encode($value, JSON_UNESCAPED_UNICODE)``: what the plugin
  puts after ``data:`` in its event stream (UTF-8 raw, ``/`` escaped).
- :func:`wp_json_hex` is ``wp_json_encode($value, JSON_UNESCAPED_UNICODE | JSON_HEX_TAG |
  JSON_HEX_APOS | JSON_HEX_AMP | JSON_HEX_QUOT)``: how the chat's ``data-config`` is encoded
  before ``esc_attr``.
- :func:`uniqid` and :func:`wp_generate_password` make the plugin's IDs and cache keys.
"""

from __future__ import annotations

import math
import re
import secrets

__all__ = [
    "absint",
    "json_unicode",
    "php_intval",
    "sanitize_key",
    "stripslashes",
    "uniqid",
    "wp_generate_password",
    "wp_json_hex",
]

_KEY_REJECTED = re.compile(r"[^a-z0-9_\-]")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
# PHP's numeric prefix of a string, as (int) reads it: white space, a sign, digits, a
# fraction and an exponent.
_NUMERIC_PREFIX = re.compile(r"[ \t\n\r\v\f]*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)")
_INT_MAX = 2**63 - 1
_INT_MIN = -(2**63)
_PASSWORD_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_SURROGATE = re.compile("[\ud800-\udfff]")


def sanitize_key(key: str) -> str:
    """WordPress's ``sanitize_key``: ASCII-lowercased, only ``a-z 0-9 _ -`` kept.

    >>> sanitize_key("0B0C-Uuid_1!")
    '0b0c-uuid_1'
    """
    return _KEY_REJECTED.sub("", key.translate(_ASCII_LOWER))


def php_intval(text: str) -> int:
    """``(int) $text`` in PHP 8: the leading number (``"4abc"`` -> 4, ``"1e2"`` -> 100,
    ``"abc"`` -> 0), saturated to 64 bits."""
    match = _NUMERIC_PREFIX.match(text)
    if match is None:
        return 0
    number = match.group(1)
    if any(mark in number for mark in ".eE"):
        value = float(number)
        if not math.isfinite(value):
            return 0
        return max(_INT_MIN, min(_INT_MAX, int(value)))
    return max(_INT_MIN, min(_INT_MAX, int(number)))


def absint(text: str) -> int:
    """WordPress's ``absint`` of a request string: ``abs((int) $text)`` (``"-4"`` -> 4)."""
    return min(_INT_MAX, abs(php_intval(text)))


def stripslashes(text: str) -> str:
    """PHP's ``stripslashes``: a backslash takes the next character literally (``\\0``
    gives NUL) and a trailing one goes."""
    if "\\" not in text:
        return text
    out: list[str] = []
    chars = iter(text)
    for char in chars:
        if char != "\\":
            out.append(char)
            continue
        following = next(chars, "")
        out.append("\0" if following == "0" else following)
    return "".join(out)


def _escape(text: str, *, hex_flags: bool) -> str:
    out: list[str] = ['"']
    for char in text:
        code = ord(char)
        if char == '"':
            out.append("\\u0022" if hex_flags else '\\"')
        elif char == "\\":
            out.append("\\\\")
        elif char == "/":
            out.append("\\/")
        elif code < 0x20:
            out.append(_CONTROL.get(char) or f"\\u{code:04x}")
        elif hex_flags and char in _HEX:
            out.append(_HEX[char])
        elif code in (0x2028, 0x2029):
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


_CONTROL = {"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_HEX = {"<": "\\u003C", ">": "\\u003E", "&": "\\u0026", "'": "\\u0027"}


def _encode(value: object, *, hex_flags: bool) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _escape(value, hex_flags=hex_flags)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("PHP's json_encode cannot encode NaN or infinity")
        return repr(value)
    if isinstance(value, dict):
        items = (
            f"{_escape(str(key), hex_flags=hex_flags)}:{_encode(item, hex_flags=hex_flags)}"
            for key, item in value.items()
        )
        return "{" + ",".join(items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_encode(item, hex_flags=hex_flags) for item in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__} as PHP JSON")


def json_unicode(value: object) -> str:
    """``json_encode($value, JSON_UNESCAPED_UNICODE)``; ``""`` where PHP returns ``false``
    (a string that is not valid UTF-8, kept here as lone surrogates).

    >>> json_unicode({"delta": "Grüße/ok"})
    '{"delta":"Grüße\\\\/ok"}'
    """
    text = _encode(value, hex_flags=False)
    return "" if _SURROGATE.search(text) else text


def wp_json_hex(value: object) -> str:
    """``wp_json_encode`` with ``JSON_UNESCAPED_UNICODE`` and the four ``JSON_HEX_*`` flags:
    ``< > ' & "`` inside strings become ``\\u003C \\u003E \\u0027 \\u0026 \\u0022``."""
    return _encode(value, hex_flags=True)


def uniqid(now: float, *, more_entropy: bool = False) -> str:
    """PHP's ``uniqid('', $more_entropy)`` at the Unix time ``now``: 8 hex digits of
    seconds, 5 of microseconds, then (``more_entropy``) a random ``D.DDDDDDDD``."""
    seconds = int(now)
    micros = round((now - seconds) * 1_000_000) % 1_000_000
    text = f"{seconds:08x}{micros:05x}"
    if more_entropy:
        text += f"{secrets.randbelow(1_000_000_000) / 100_000_000:.8f}"
    return text


def wp_generate_password(length: int) -> str:
    """``wp_generate_password($length, false, false)``: letters and digits only."""
    return "".join(secrets.choice(_PASSWORD_CHARS) for _ in range(length))
