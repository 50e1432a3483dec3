"""A per-API-key rate limit: a fixed window counted in Redis.

One INCR per request on ``webpush:ratelimit:<key id>:<window number>``, which expires with its
window. A fixed window lets a burst of up to twice the limit straddle a window boundary; that
is acceptable for a quota meant to stop a runaway client, and it costs one round trip. Redis
unreachable: the request is let through (and logged): the outbox, not the limiter, is what
must not lose notifications.
"""

from __future__ import annotations

import logging
import math
import time

from ..jobs.queues import connection

log = logging.getLogger(__name__)


def over_limit(key: str, limit: int, window_seconds: int) -> int | None:
    """Count one request for key; return the seconds to wait when over limit, else None."""
    now = time.time()
    window = int(now // window_seconds)
    name = f"webpush:ratelimit:{key}:{window}"
    try:
        with connection().pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, window_seconds + 1)
            used, _ = pipe.execute()
    except Exception:
        log.warning("rate limit unknown (Redis unreachable); letting %s through", key)
        return None
    if used <= limit:
        return None
    return max(1, math.ceil((window + 1) * window_seconds - now))
