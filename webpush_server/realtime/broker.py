"""Redis pub/sub between the processes that record notifications and the web processes.

Every web process holds one subscriber connection (not one per socket) and forwards each
message to the open tabs of its user in this process. Presence (which users have a visible,
connected tab) lives in Redis too, so a worker deciding whether to push can see every web
process's tabs.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Sequence

from flask import Flask, current_app
from redis import Redis
from redis.client import Pipeline

from ..jobs.queues import connection
from ..redis_server import resolve_url
from ..util import chunked
from .slots import PREFIX as SLOTS_PREFIX

log = logging.getLogger(__name__)

CHANNEL = "webpush:live"
PRESENCE_PREFIX = "webpush:presence:"
# Messages per PUBLISH: a big fan-out costs a few Redis round trips, not one per user.
PUBLISH_BATCH = 500


def publish(messages: Sequence[dict], pipe: Pipeline | None = None) -> None:
    """Publish live messages to every web process (one PUBLISH per batch).

    pipe: a pipeline to add the PUBLISHes to (the caller executes it); else one of our own.
    """
    if pipe is not None:
        for batch in chunked(messages, PUBLISH_BATCH):
            pipe.publish(CHANNEL, json.dumps(batch, separators=(",", ":")))
        return
    with connection().pipeline(transaction=False) as own:
        publish(messages, own)
        own.execute()


# ---------------------------------------------------------------------------------------------
# Presence: a sorted set per user, member = connection id, score = when it stops counting.


def set_visible(user_id: int, connection_id: str, visible: bool) -> None:
    """Record whether this connection shows a visible tab; it lapses unless refreshed."""
    redis = connection()
    key = f"{PRESENCE_PREFIX}{user_id}"
    ttl = current_app.config["LIVE_PRESENCE_SECONDS"]
    now = time.time()
    with redis.pipeline(transaction=False) as pipe:
        if visible:
            pipe.zadd(key, {connection_id: now + ttl})
            # Members of a process that died lapse by score; the key itself by expiry.
            pipe.zremrangebyscore(key, "-inf", now)
            pipe.expire(key, int(ttl) + 1)
        else:
            pipe.zrem(key, connection_id)
        pipe.execute()


# Which of these keys hold a member scored later than ARGV[1]: one command for a whole
# fan-out instead of one per user. (On a Redis Cluster the keys would need one hash slot.)
_ANY_LATER = """
local found = {}
for i, key in ipairs(KEYS) do
  if redis.call('ZCOUNT', key, '(' .. ARGV[1], '+inf') > 0 then
    found[#found + 1] = i
  end
end
return found
"""


def _unlapsed(keys: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Return those (prefix, user id) whose sorted set has an unlapsed member (one script
    call per 1,000 keys)."""
    if not keys:
        return []
    redis = connection()
    now = repr(time.time())
    found: list[tuple[str, int]] = []
    for batch in chunked(keys, 1000):
        hits = redis.eval(_ANY_LATER, len(batch), *(f"{p}{u}" for p, u in batch), now)
        found.extend(batch[i - 1] for i in hits)
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


# ---------------------------------------------------------------------------------------------
# This process's side: one subscriber thread, and the open connections by user.


class Listener:
    """One open tab (a WebSocket or an SSE stream) waiting for its user's messages.

    The broker thread only appends and wakes; the connection's own thread does the slow part
    (writing to the socket), so one stalled client cannot hold up the others.
    """

    __slots__ = ("user_id", "id", "_pending", "_wake")

    def __init__(self, user_id: int, wake: threading.Event) -> None:
        self.user_id = user_id
        self.id = uuid.uuid4().hex
        self._pending: deque[dict] = deque(maxlen=1000)
        self._wake = wake

    def put(self, message: dict) -> None:
        """Queue a message for this tab and wake its thread."""
        self._pending.append(message)
        self._wake.set()

    def take(self) -> list[dict]:
        """Return and forget the queued messages, oldest first."""
        taken = []
        while self._pending:
            taken.append(self._pending.popleft())
        return taken


class Broker:
    """This process's Redis subscriber and its registry of open connections."""

    def __init__(self, redis_url: str) -> None:
        self._redis_url = redis_url
        self._listeners: dict[int, set[Listener]] = {}
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._resync = False

    def register(self, listener: Listener) -> None:
        """Start forwarding the user's messages to listener (starts the subscriber once)."""
        with self._lock:
            self._listeners.setdefault(listener.user_id, set()).add(listener)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="live-broker", daemon=True)
                self._thread.start()

    def unregister(self, listener: Listener) -> None:
        """Stop forwarding to listener."""
        with self._lock:
            listeners = self._listeners.get(listener.user_id)
            if listeners is not None:
                listeners.discard(listener)
                if not listeners:
                    del self._listeners[listener.user_id]

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the subscription is active, so nothing published from now on is missed."""
        return self._ready.wait(timeout)

    def connection_count(self) -> int:
        """Return how many connections this process holds."""
        with self._lock:
            return sum(len(listeners) for listeners in self._listeners.values())

    def dispatch(self, payload: bytes | str) -> None:
        """Hand one published batch to the local listeners of its users."""
        for message in json.loads(payload):
            with self._lock:
                listeners = tuple(self._listeners.get(message.get("user_id"), ()))
            for listener in listeners:
                listener.put(message)

    def _run(self) -> None:
        delay = 0.5
        while True:
            redis = Redis.from_url(self._redis_url, health_check_interval=30)
            pubsub = redis.pubsub()
            try:
                pubsub.subscribe(CHANNEL)
                # Wait for the server's confirmation: only then is nothing missed.
                while (pubsub.get_message(timeout=5) or {}).get("type") != "subscribe":
                    pass
                self._ready.set()
                delay = 0.5
                if self._resync:
                    self._broadcast({"type": "resync"})
                while True:
                    message = pubsub.get_message(timeout=30)
                    if message is not None and message["type"] == "message":
                        try:
                            self.dispatch(message["data"])
                        except (ValueError, TypeError, AttributeError):
                            log.warning("dropped a malformed live message", exc_info=True)
            except Exception:
                self._ready.clear()
                log.warning("live subscriber lost Redis; retrying in %.1f s", delay, exc_info=True)
                # What was published meanwhile is lost here: tell every tab to catch up.
                self._resync = True
                time.sleep(delay)
                delay = min(delay * 2, 15)
            finally:
                pubsub.close()
                redis.close()

    def _broadcast(self, message: dict) -> None:
        self._resync = False
        with self._lock:
            listeners = [x for group in self._listeners.values() for x in group]
        for listener in listeners:
            listener.put(message)


_broker_lock = threading.Lock()


def broker(app: Flask | None = None) -> Broker:
    """Return this process's broker (a forked child gets its own)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    with _broker_lock:
        cached = app.extensions.get("live_broker")
        if cached is None or cached[0] != os.getpid():
            url = resolve_url(app.config.get("REDIS_URL"), app.instance_path)
            cached = (os.getpid(), Broker(url))
            app.extensions["live_broker"] = cached
        return cached[1]


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
