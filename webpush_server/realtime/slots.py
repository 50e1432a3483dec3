"""Bound the live connections (WebSocket + SSE) a user holds across every web process.

Each open stream holds a slot: a member of a Redis sorted set per user whose score is when
the slot lapses. A stream refreshes its slot while it lives and frees it when it ends; a
process that crashed frees nothing, so its slots lapse by score within LIVE_SLOT_SECONDS
instead of leaking. Acquiring is one Lua script: prune the lapsed, count, add if room.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from flask import current_app
from redis.exceptions import RedisError

from ..jobs.queues import connection

log = logging.getLogger(__name__)

PREFIX = "webpush:live-slots:"

_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


def _lease() -> float:
    return float(current_app.config["LIVE_SLOT_SECONDS"])


def acquire(user_id: int, connection_id: str) -> bool:
    """Take a slot for this connection; False when the user already holds the maximum."""
    now = time.time()
    lease = _lease()
    limit = int(current_app.config["LIVE_MAX_CONNECTIONS_PER_USER"])
    try:
        taken = connection().eval(
            _ACQUIRE, 1, f"{PREFIX}{user_id}", now, now + lease, limit, connection_id,
            int(lease) + 1,
        )  # fmt: skip
    except RedisError:
        # Without Redis there is no live channel anyway; let the stream find that out itself.
        log.warning("live slots unavailable; not bounding connections", exc_info=True)
        return True
    return bool(taken)


def refresh(held: Sequence[tuple[int, str]]) -> None:
    """Keep these (user id, connection id) slots from lapsing, in one round trip."""
    if not held:
        return
    lease = _lease()
    until = time.time() + lease
    try:
        with connection().pipeline(transaction=False) as pipe:
            for user_id, connection_id in held:
                pipe.zadd(f"{PREFIX}{user_id}", {connection_id: until})
                pipe.expire(f"{PREFIX}{user_id}", int(lease) + 1)
            pipe.execute()
    except RedisError:
        log.warning("could not refresh the live slots", exc_info=True)


def release(user_id: int, connection_id: str) -> None:
    """Give the slot back."""
    try:
        connection().zrem(f"{PREFIX}{user_id}", connection_id)
    except RedisError:
        log.warning("could not release a live slot; it lapses by itself", exc_info=True)
