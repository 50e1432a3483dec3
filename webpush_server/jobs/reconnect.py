"""Waiting for a lost Redis: capped exponential backoff, logged, for workers and schedulers."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

# What a Redis that went away (or is restarting) raises; anything else is a bug, not an outage.
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)


class Backoff:
    """Delays between reconnect attempts: first, doubled each time, never above cap.

    A success (reset) starts over from first, so a Redis that flaps is retried quickly again.
    """

    def __init__(
        self,
        what: str,
        *,
        first: float = 0.5,
        cap: float = 30.0,
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self.what = what
        self.stopping = stopping
        self.first = first
        self.cap = max(cap, first)
        self.delay = first
        self.failures = 0

    def wait(self, error: BaseException) -> None:
        """Log the error and sleep the current delay, then lengthen the next one."""
        self.failures += 1
        log.warning(
            "%s: Redis unreachable (%s: %s); retry %d in %.1f s",
            self.what,
            type(error).__name__,
            error,
            self.failures,
            self.delay,
        )
        # In short steps: a stop asked meanwhile (SIGTERM) is not kept waiting a whole delay.
        until = time.monotonic() + self.delay
        while not self.stopping() and (left := until - time.monotonic()) > 0:
            time.sleep(min(left, 0.2))
        self.delay = min(self.delay * 2, self.cap)

    def reset(self) -> None:
        """Note a success: the next outage starts from the first delay, and say we are back."""
        if self.failures:
            log.warning("%s: Redis is back after %d failed attempts", self.what, self.failures)
        self.failures = 0
        self.delay = self.first
