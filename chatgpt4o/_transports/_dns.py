"""A failed name lookup: does the name not exist, or could the resolver not answer?

The difference decides whether a call retries (docs/protocol.md §5.5): a name that does
not exist will not exist half a second later, so retrying it only delays the error
(`HostNotFoundError`, not retried); a resolver that timed out or failed may answer the
next time (a plain `ProviderConnectionError`, retried as before).

* **httpx** (httpcore) raises `ConnectError` with the `socket.gaierror` of the system's
  `getaddrinfo` behind it: `EAI_NONAME` (and, where the platform has it, `EAI_NODATA`:
  the name has no address) mean no such name; `EAI_AGAIN` and every other code are
  taken as temporary.
* **curl** answers both cases with `CURLE_COULDNT_RESOLVE_HOST` (6). curl_cffi's builds
  resolve with c-ares, and curl then adds c-ares's reason to the message, `Could not
  resolve host: NAME (Domain name not found)`: "Domain name not found", "DNS server
  returned answer with no data" and "Misformatted domain name" mean no such name, any
  other reason (a timeout, a server failure, a refused query) is temporary. A build whose
  message gives no reason (curl's threaded resolver, which is the system's `getaddrinfo`)
  is asked about the name once more, on that error path only, through the system
  resolver, within `SYSTEM_CHECK_SECONDS` (`system_says_no_such_name`).

When in doubt the answer is "temporary", the behaviour from before this distinction.
"""

from __future__ import annotations

import asyncio
import re
import socket

__all__ = [
    "SYSTEM_CHECK_SECONDS",
    "curl_resolve_failure",
    "gaierror_says_no_such_name",
    "system_says_no_such_name",
]

#: The longest the system resolver is given to confirm that a name does not exist.
SYSTEM_CHECK_SECONDS = 2.0

#: getaddrinfo's codes for "there is no such name" (or no address for it).
_NO_SUCH_NAME_CODES = frozenset(
    code
    for code in (getattr(socket, "EAI_NONAME", None), getattr(socket, "EAI_NODATA", None))
    if code is not None
)

# curl's message for CURLE_COULDNT_RESOLVE_HOST, with c-ares's reason when it gives one.
_CURL_RESOLVE_FAILURE = re.compile(
    r"Could not resolve host: (?P<host>[^\s()'\"]+)(?:\s*\((?P<reason>[^)]{1,200})\))?"
)
# c-ares's words (ares_strerror) for an answer that the name, or an address, does not exist.
_CARES_NO_SUCH_NAME = (
    "domain name not found",
    "dns server returned answer with no data",
    "misformatted domain name",
)


def gaierror_says_no_such_name(err: BaseException) -> bool:
    """Whether `err` comes from a `socket.gaierror` (anywhere in its chain of causes)
    that says the name does not exist."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, socket.gaierror):
            return current.errno in _NO_SUCH_NAME_CODES
        current = current.__cause__ or current.__context__
    return False


def curl_resolve_failure(message: str) -> tuple[str, bool | None] | None:
    """For curl's "Could not resolve host" message: the host, and True when c-ares said
    the name does not exist, False when it said the lookup failed otherwise, None when
    the message gives no reason. None for any other message."""
    found = _CURL_RESOLVE_FAILURE.search(message)
    if found is None:
        return None
    # (a message ends its sentence after the name: "... host: example.org. See ...")
    host, reason = found.group("host").rstrip("."), found.group("reason")
    if reason is None:
        return host, None
    return host, reason.strip().lower() in _CARES_NO_SUCH_NAME


async def system_says_no_such_name(host: str, *, timeout: float = SYSTEM_CHECK_SECONDS) -> bool:
    """Whether the system resolver answers, within `timeout`, that `host` does not exist.

    False when it resolves the name (it exists after all), fails otherwise, or is slow.
    """
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(loop.getaddrinfo(host, None), max(timeout, 0.0))
    except socket.gaierror as err:
        return err.errno in _NO_SUCH_NAME_CODES
    except (OSError, asyncio.TimeoutError, UnicodeError, ValueError):
        return False
    return False
