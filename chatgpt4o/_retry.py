"""When to retry, and how long to wait: one policy and one loop for a whole call.

Transport errors, 408, 409, 429 and 5xx are retried; the deadline passing, a host
name that does not exist (`HostNotFoundError`), Cloudflare challenges, a plugin that
lacks the chat action and the plugin's own error answers are not (the same request
would get the same answer). A call has one budget:
`max_retries` counts every retry it makes, page loads and chat requests together.
"""

from __future__ import annotations

import functools
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from ._constants import INITIAL_RETRY_DELAY, MAX_RETRY_AFTER, MAX_RETRY_DELAY, RETRY_JITTER
from ._deadline import Deadline
from ._exceptions import (
    HTTPStatusError,
    ProviderConnectionError,
    ProviderError,
    RateLimitError,
    StaleCredentials,
)

__all__ = [
    "RETRYABLE_STATUS_CODES",
    "RetryPolicy",
    "Retrying",
    "parse_retry_after",
    "retry_policy",
    "retryable",
]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

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


@functools.cache
def retry_policy(max_retries: int) -> RetryPolicy:
    """The policy for `max_retries` with the default delays (made once per value)."""
    return RetryPolicy(max_retries=max_retries)


def retryable(error: ProviderError) -> tuple[bool, float | None]:
    """Whether trying again may help after `error`, and the server's Retry-After."""
    if isinstance(error, ProviderConnectionError):
        # False for the deadline (nothing is left to retry in) and for a host name that
        # does not exist (it will not in half a second either); True for the rest.
        return error.retryable, None
    # Exactly these classes: a Cloudflare challenge or a missing chat action is an
    # HTTPStatusError too, and would answer the same again.
    if isinstance(error, RateLimitError) and not error.retryable:
        return False, None  # a usage limit for the period: asking again will not help
    if type(error) in (HTTPStatusError, RateLimitError):
        assert isinstance(error, HTTPStatusError)
        return error.status_code in RETRYABLE_STATUS_CODES, error.retry_after
    return False, None


class Retrying:
    """One call's retries: the decision, the budget, and the sleep before each retry."""

    __slots__ = ("_deadline", "_label", "policy", "used")

    def __init__(self, policy: RetryPolicy, deadline: Deadline, label: str) -> None:
        self.policy = policy
        self.used = 0
        self._deadline = deadline
        self._label = label

    async def allow(self, error: ProviderError) -> bool:
        """Sleep before a retry after `error` and return True; False when the call must
        give up instead (not retryable, budget spent, or the wait would pass the
        deadline)."""
        again, retry_after = retryable(error)
        if not again or self.used >= self.policy.max_retries:
            return False
        delay = self.policy.backoff(self.used, retry_after=retry_after)
        # Without a deadline, a server asking for more than a minute is not waited for.
        ceiling = MAX_RETRY_AFTER if self._deadline.timeout is None else math.inf
        if delay >= min(self._deadline.remaining(), ceiling):
            logger.info(
                "%s: not retrying (%s): waiting %.2f s would pass the deadline",
                self._label, error, delay,
            )
            return False
        self.used += 1
        logger.info(
            "%s: retry %d of %d in %.2f s after: %s",
            self._label, self.used, self.policy.max_retries, delay, error,
        )
        await self._deadline.sleep(delay)
        return True

    async def run(
        self,
        attempt: Callable[[], Awaitable[_T]],
        on_stale: Callable[[StaleCredentials], None],
    ) -> _T:
        """Await `attempt()` until it succeeds or the call must give up: the one loop.

        Rejected credentials are tried again at once, once, after `on_stale` has
        marked them (no sleep, no budget: the next attempt loads the page afresh); a
        second rejection is raised. Everything else goes by `allow`.
        """
        renewed = False
        while True:
            try:
                return await attempt()
            except StaleCredentials as err:
                if renewed:
                    raise
                renewed = True
                on_stale(err)
            except ProviderError as err:
                if not await self.allow(err):
                    raise
