"""WordPress nonces, computed the way WordPress core computes them.

``wp_create_nonce($action)`` is ``substr(wp_hash("$tick|$action|$uid|$token", 'nonce'), -12, 10)``
where ``wp_hash`` is an HMAC-MD5 keyed with the site's salts and
``$tick = ceil(time() / (DAY_IN_SECONDS / 2))``. ``wp_verify_nonce`` accepts the nonce of the
current tick and of the previous one, so a nonce lives between 12 and 24 hours.
Logged-out visitors have user 0 and an empty session token.
"""

from __future__ import annotations

import hashlib
import hmac
import math

__all__ = [
    "CHAT_NONCE_ACTION",
    "IMAGE_NONCE_ACTION",
    "NONCE_TICK_SECONDS",
    "REST_NONCE_ACTION",
    "make_nonce",
    "nonce_age",
    "nonce_tick",
    "verify_nonce",
]

#: Length of one nonce tick: half a day, as in WordPress core.
NONCE_TICK_SECONDS = 43200

#: The action the AI Power chat nonce is created for.
CHAT_NONCE_ACTION = "wpaicg-chatbox"

#: The action of the image-upload nonce the page also carries (never valid for chat).
IMAGE_NONCE_ACTION = "wpaicg-image-upload"

#: The action of the REST API nonce WordPress prints for its scripts (never valid for chat).
REST_NONCE_ACTION = "wp_rest"


def nonce_tick(now: float) -> int:
    """Return the WordPress nonce tick for the Unix time ``now``."""
    return math.ceil(now / NONCE_TICK_SECONDS)


def make_nonce(
    secret: bytes,
    tick: int,
    action: str = CHAT_NONCE_ACTION,
    *,
    user_id: int = 0,
    token: str = "",
) -> str:
    """Return the 10-hex-digit nonce of ``action`` for ``tick``, keyed with ``secret``.

    >>> make_nonce(b"key", 1) == make_nonce(b"key", 1)
    True
    >>> len(make_nonce(b"key", 1))
    10
    """
    message = f"{tick}|{action}|{user_id}|{token}".encode()
    digest = hmac.new(secret, message, hashlib.md5).hexdigest()
    return digest[-12:-2]


def verify_nonce(secret: bytes, nonce: str, now: float, action: str = CHAT_NONCE_ACTION) -> int:
    """Check ``nonce`` like ``wp_verify_nonce``.

    Returns 1 if it is the nonce of the current tick, 2 if it is the nonce of the previous
    tick, and 0 if it is not valid.
    """
    tick = nonce_tick(now)
    return nonce_age(nonce, make_nonce(secret, tick, action), make_nonce(secret, tick - 1, action))


def nonce_age(nonce: str, current: str, previous: str) -> int:
    """1 if ``nonce`` is ``current``, 2 if it is ``previous``, else 0 (constant time)."""
    if not nonce:
        return 0
    given = nonce.encode("utf-8", "surrogateescape")
    if hmac.compare_digest(given, current.encode()):
        return 1
    if hmac.compare_digest(given, previous.encode()):
        return 2
    return 0
