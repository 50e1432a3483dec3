"""Redis pub/sub between the processes that record notifications and the web processes.

Users are spread over SHARDS channels (channel()); a web process subscribes to the shards of
the users whose tabs it holds (realtime.hub), so a process with few tabs receives little.
Presence (which users have a visible, connected tab) lives in Redis too, so a worker deciding
whether to push can see every web process's tabs.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from json.encoder import encode_basestring_ascii

from flask import current_app
from redis.client import Pipeline
from redis.commands.core import Script

from ..jobs.queues import connection
from ..util import chunked
from .slots import PREFIX as SLOTS_PREFIX

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "webpush:live:"
PRESENCE_PREFIX = "webpush:presence:"
# Live channels. Each carries batches (a JSON array per PUBLISH), so a fan-out to 10,000 tabs
# is a few hundred pub/sub messages, not 10,000: reading one costs a web process ~50 µs.
SHARDS = 256
# Messages per PUBLISH.
PUBLISH_BATCH = 500


def shard_of(user_id: int) -> int:
    """Return the live shard a user's messages go to."""
    return user_id % SHARDS


def channel(shard: int) -> str:
    """Return a shard's live channel; the braces are a Redis Cluster hash tag (one slot)."""
    return f"{CHANNEL_PREFIX}{{{shard}}}"


def publish(messages: Sequence[dict], pipe: Pipeline | None = None) -> None:
    """Publish live messages ({"user_id", ...}) to their users' shards, in batches.

    pipe: a pipeline to add the PUBLISHes to (the caller executes it); else one of our own.
    """
    if pipe is None:
        with connection().pipeline(transaction=False) as own:
            publish(messages, own)
            own.execute()
        return
    # Each message is encoded once; a shard's batch is those strings joined into an array.
    by_shard: dict[int, list[str]] = {}
    for message in messages:
        by_shard.setdefault(shard_of(message["user_id"]), []).append(wire(message))
    # At most one PUBLISH per shard and 500 messages: a 10,000-tab fan-out is 256 commands
    # in one round trip (packing them is ~2 ms; a script taking them as one JSON argument
    # cost more, escaping every message a second time).
    for shard, parts in by_shard.items():
        name = channel(shard)
        for start in range(0, len(parts), PUBLISH_BATCH):
            pipe.publish(name, "[" + ",".join(parts[start : start + PUBLISH_BATCH]) + "]")


def wire(message: dict) -> str:
    """Return a live message as web processes read it: [user id, notification id, frames...].

    The frames are the tabs' WebSocket texts, encoded here once for all of a user's tabs in
    every web process (to_client), so a web process only routes and writes them. The
    notification id is 0 when there is none; when there is, the first frame is its own.
    """
    note = message.get("notification")
    head = f"[{int(message['user_id'])},{int(note['id']) if note is not None else 0}"
    # The frames are JSON strings inside the array: quoted, not encoded a second time.
    return ",".join([head, *(_quote(_encode(out)) for out in to_client(message))]) + "]"


_encode = json.JSONEncoder(separators=(",", ":")).encode
_quote = encode_basestring_ascii


def _script(source: str) -> Script:
    """Return this process's Script for source.

    It keeps the SHA; callers pass their own client, and a pipeline loads the script where
    Redis lacks it.
    """
    script = _SCRIPTS.get(source)
    if script is None:
        script = _SCRIPTS[source] = connection().register_script(source)
    return script


_SCRIPTS: dict[str, Script] = {}


# ---------------------------------------------------------------------------------------------
# Presence: a sorted set per user, member = connection id, score = when it stops counting.


def set_visible(user_id: int, connection_id: str, visible: bool) -> None:
    """Record whether this connection shows a visible tab; it lapses unless refreshed."""
    if visible:
        keep_visible([(user_id, connection_id)])
    else:
        connection().zrem(f"{PRESENCE_PREFIX}{user_id}", connection_id)


def keep_visible(tabs: Sequence[tuple[int, str]]) -> None:
    """Record (or refresh) these (user id, connection id) as visible tabs, in one round trip."""
    if not tabs:
        return
    ttl = current_app.config["LIVE_PRESENCE_SECONDS"]
    now = time.time()
    with connection().pipeline(transaction=False) as pipe:
        for user_id, connection_id in tabs:
            key = f"{PRESENCE_PREFIX}{user_id}"
            pipe.zadd(key, {connection_id: now + ttl})
            # Members of a process that died lapse by score; the key itself by expiry.
            pipe.zremrangebyscore(key, "-inf", now)
            pipe.expire(key, int(ttl) + 1)
        pipe.execute()


# Which of the keys in the JSON array ARGV[2] hold a member scored later than ARGV[1]: one
# command for a whole fan-out instead of one per user. The keys travel as one argument, not
# as KEYS: redis-py packs each argument in Python, ~7 calls apiece, the most of a trigger's
# Redis time. Undeclared keys are fine on one Redis; a Redis Cluster would need the keys
# declared and in one hash slot anyway.
_ANY_LATER = """
local found = {}
for i, key in ipairs(cjson.decode(ARGV[2])) do
  if redis.call('ZCOUNT', key, '(' .. ARGV[1], '+inf') > 0 then
    found[#found + 1] = i
  end
end
return found
"""
# Keys per script call: bounds how long one call holds Redis (≈ 1 µs per key).
_LOOKUP_BATCH = 10_000


def _unlapsed(keys: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Return those (prefix, user id) whose sorted set has an unlapsed member (one script
    call per 10,000 keys)."""
    if not keys:
        return []
    script, redis = _script(_ANY_LATER), connection()
    now = repr(time.time())
    found: list[tuple[str, int]] = []
    for batch in chunked(keys, _LOOKUP_BATCH):
        names = json.dumps([f"{p}{u}" for p, u in batch])
        found.extend(batch[i - 1] for i in script(args=[now, names], client=redis))
    return found


def _holding(prefix: str, user_ids: Iterable[int]) -> set[int]:
    """Return those of user_ids whose sorted set under prefix has an unlapsed member."""
    return {user_id for _, user_id in _unlapsed([(prefix, u) for u in user_ids])}


def presence(visible: Iterable[int], connected: Iterable[int]) -> tuple[set[int], set[int]]:
    """Return (those of visible with a visible tab, those of connected with any open tab).

    Both lookups of a recording in one Redis round trip.
    """
    keys = [(PRESENCE_PREFIX, u) for u in visible] + [(SLOTS_PREFIX, u) for u in connected]
    found: tuple[set[int], set[int]] = (set(), set())
    for prefix, user_id in _unlapsed(keys):
        found[prefix == SLOTS_PREFIX].add(user_id)
    return found


def visible_users(user_ids: Iterable[int]) -> set[int]:
    """Return those of user_ids that have a visible, connected tab right now."""
    return _holding(PRESENCE_PREFIX, user_ids)


def connected_users(user_ids: Iterable[int]) -> set[int]:
    """Return those of user_ids with an open live connection (any tab, visible or not)."""
    return _holding(SLOTS_PREFIX, user_ids)


def to_client(message: dict) -> list[dict]:
    """Turn a published message into what tabs get (docs/api.md, "Inbox and live channels")."""
    out = []
    if "notification" in message:
        out.append({"type": "notification", "notification": message["notification"]})
    if "resolved" in message:
        # A settled hold or loan: tabs mark these read and close the tag's system notifications.
        out.append({"type": "notifications_read", **message["resolved"]})
    if "unread_count" in message:
        out.append({"type": "unread_count", "count": message["unread_count"]})
    if message.get("type") == "resync":
        out.append({"type": "resync"})
    return out
