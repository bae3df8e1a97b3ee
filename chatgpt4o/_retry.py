"""When to retry, and how long to wait: a small policy in openai-python's manner.

Transport errors, 408, 409, 429 and 5xx are retried; Cloudflare challenges and the
plugin's own error answers are not (the same request would get the same answer).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from ._constants import INITIAL_RETRY_DELAY, MAX_RETRY_DELAY, RETRY_JITTER

__all__ = ["RETRYABLE_STATUS_CODES", "RetryPolicy", "parse_retry_after"]

RETRYABLE_STATUS_CODES = frozenset({408, 409, 429, 500, 502, 503, 504})


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or an HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    seconds: float
    try:
        seconds = float(value)
    except ValueError:
        import email.utils  # rare, and slow to import: only for HTTP-date values

        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return float(max(0.0, seconds))


@dataclass(frozen=True)
class RetryPolicy:
    """How often to retry and how long to back off between tries."""

    max_retries: int
    initial_delay: float = INITIAL_RETRY_DELAY
    max_delay: float = MAX_RETRY_DELAY
    jitter: float = RETRY_JITTER

    def backoff(self, retry: int, *, retry_after: float | None = None) -> float:
        """Seconds to sleep before retry number `retry` (0 for the first retry).

        A server's Retry-After wins (the caller gives up when it does not fit in the
        call's deadline); otherwise exponential backoff, capped, shortened at random by
        up to `jitter` of itself.
        """
        if retry_after is not None:
            return retry_after
        delay = min(self.initial_delay * (1 << min(retry, 30)), self.max_delay)
        return delay * (1 - self.jitter * random.random())
