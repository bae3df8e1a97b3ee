"""Cookies for the command line without putting them on it: a `Cookie` header's text
(`CHATGPT4O_COOKIE`) and Netscape cookies.txt files (`--cookie-file`), the format curl
(`-c`), wget and the browsers' "export cookies" extensions write.

A cookies.txt line has seven tab-separated fields:

    domain  include-subdomains  path  secure  expires  name  value

`#` starts a comment, except `#HttpOnly_`, which prefixes the domain of an HttpOnly
cookie; blank lines are skipped. `expires` is a Unix time, 0 for a session cookie.
A site gets the cookies whose domain matches its host (RFC 6265 domain matching:
the host itself, or with include-subdomains TRUE any host under the domain), that
have not expired, and, when marked secure, only over https. The path is not
checked: the library sends one set of cookies with the page and the chat request.

Errors name the file and the line, never a cookie's value: the values are secrets.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from ._config import check_cookies

__all__ = [
    "CookieFileError",
    "FileCookie",
    "cookies_for",
    "parse_cookie_file",
    "parse_cookie_header",
]

_HTTP_ONLY = "#HttpOnly_"


class CookieFileError(ValueError):
    """A cookies.txt file or a Cookie header that cannot be read; the message says
    where, never a value."""


@dataclass(frozen=True)
class FileCookie:
    """One cookie of a cookies.txt file."""

    domain: str  # lowercase, without a leading dot
    include_subdomains: bool
    secure: bool
    expires: float  # 0: a session cookie
    name: str
    value: str = field(repr=False)

    def matches(self, url: str, now: float) -> bool:
        """Whether a request to `url` at time `now` carries this cookie."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
        if self.expires and self.expires <= now:
            return False
        if self.secure and parts.scheme != "https":
            return False
        if host == self.domain:
            return True
        return self.include_subdomains and host.endswith("." + self.domain)


def _flag(text: str, where: str, what: str) -> bool:
    upper = text.strip().upper()
    if upper not in ("TRUE", "FALSE"):
        raise CookieFileError(f"{where}: the {what} field must be TRUE or FALSE")
    return upper == "TRUE"


def _cookie_line(line: str, where: str) -> FileCookie | None:
    if line.startswith(_HTTP_ONLY):
        line = line[len(_HTTP_ONLY):]
    elif not line.strip() or line.lstrip().startswith("#"):
        return None
    fields = line.split("\t")
    if len(fields) != 7:
        raise CookieFileError(
            f"{where}: expected 7 tab-separated fields (domain, include-subdomains, path, "
            f"secure, expires, name, value), got {len(fields)}"
        )
    domain, subdomains, _path, secure, expires, name, value = fields
    domain = domain.strip().lower()
    # Curl writes ".example.org" with TRUE; a leading dot means the same as TRUE.
    dotted = domain.startswith(".")
    domain = domain.lstrip(".").rstrip(".")
    if not domain:
        raise CookieFileError(f"{where}: the domain field is empty")
    include_subdomains = _flag(subdomains, where, "include-subdomains") or dotted
    try:
        expiry = float(expires.strip() or "0")
    except ValueError:
        raise CookieFileError(f"{where}: the expires field must be a Unix time") from None
    name = name.strip()
    try:
        check_cookies({name: value})
    except ValueError as err:
        raise CookieFileError(f"{where}: {err}") from None
    return FileCookie(
        domain=domain,
        include_subdomains=include_subdomains,
        secure=_flag(secure, where, "secure"),
        expires=max(expiry, 0.0),
        name=name,
        value=value,
    )


def parse_cookie_file(path: str) -> list[FileCookie]:
    """Every cookie of the cookies.txt file at `path`, in file order; CookieFileError
    for a file that cannot be read or a line that is not a cookie."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise CookieFileError(f"cannot read {path!r}: {err.strerror or err}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        bad_line = data.count(b"\n", 0, err.start) + 1
        raise CookieFileError(f"{path} line {bad_line}: not UTF-8 text") from None
    cookies = []
    for number, line in enumerate(text.splitlines(), 1):
        cookie = _cookie_line(line, f"{path} line {number}")
        if cookie is not None:
            cookies.append(cookie)
    return cookies


def cookies_for(cookies: list[FileCookie], url: str, now: float | None = None) -> dict[str, str]:
    """The cookies of a file that a request to `url` carries, name to value; of two
    with one name, the later line wins (as curl reads a file)."""
    moment = time.time() if now is None else now
    return {cookie.name: cookie.value for cookie in cookies if cookie.matches(url, moment)}


def parse_cookie_header(text: str, source: str) -> dict[str, str]:
    """`NAME=VALUE; NAME2=VALUE2`, as a Cookie header writes them; CookieFileError
    naming `source` and the item's position, never its value."""
    cookies: dict[str, str] = {}
    for number, item in enumerate(text.split(";"), 1):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise CookieFileError(f"{source}: item {number} is not NAME=VALUE")
        value = value.strip()
        try:
            check_cookies({name: value})
        except ValueError as err:
            raise CookieFileError(f"{source}: {err}") from None
        cookies[name] = value
    return cookies
