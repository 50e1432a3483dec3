"""This web process's side of the live channel: one asyncio Redis subscriber and its open tabs.

Users are spread over broker.SHARDS channels, and the hub subscribes to a shard while this
process holds a tab (WebSocket or SSE) of one of its users: on the first such tab it
subscribes, on the last it unsubscribes. A process receives only its shards' messages; for
each added process to take a share of the stream, tabs must reach the process that holds
their shard (bench/README, "Open tabs"). One connection carries every subscription; a tab's
write that has to wait goes on in a task of its own, so one stalled client holds up only itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

from redis import asyncio as aioredis
from redis.exceptions import RedisError

from . import broker

log = logging.getLogger(__name__)

# SUBSCRIBE commands carry this many channels at most after a reconnect.
SUBSCRIBE_BATCH = 1000


# What a tab is handed: [user id, notification id (0: none), frame texts...] (broker.wire).
Item = list
RESYNC: Item = [0, 0, '{"type":"resync"}']
PING: Item = [0, 0]  # for an SSE stream: a comment that keeps proxies from timing out


class Listener:
    """One open tab waiting for its user's messages.

    The hub appends items and the drain writes them to the tab with the write coroutine the
    tab bound (nothing is written before it binds). A tab may also bind write_now, which
    writes an item at once or answers False (a paused or closing socket): an item that finds
    nothing queued before it then costs no coroutine at all.
    """

    __slots__ = (
        "user_id", "id", "visible", "replayed", "_pending", "_write", "_write_now", "_busy"
    )  # fmt: skip

    def __init__(self, user_id: int) -> None:
        self.user_id = user_id
        self.id = uuid.uuid4().hex  # also the id of its slot and of its presence
        self.visible = False
        # Notifications the tab got in its replay: the live copy of one is sent without it.
        self.replayed: set[int] = set()
        self._pending: deque[Item] = deque(maxlen=1000)
        self._write: Callable[[Item], Awaitable[None]] | None = None
        self._write_now: Callable[[Item], bool] | None = None
        self._busy = False

    def bind(
        self,
        write: Callable[[Item], Awaitable[None]],
        write_now: Callable[[Item], bool] | None = None,
    ) -> None:
        """Start writing messages with write (those queued so far first)."""
        self._write, self._write_now = write, write_now
        self._kick()

    def put(self, item: Item) -> None:
        """Queue an item for this tab (called on the event loop)."""
        if self._write_now is not None and not self._busy and not self._pending:
            try:
                if self._write_now(item):
                    return
            except Exception:
                self.unbind()  # the tab went away; its own task cleans up
                return
        self._pending.append(item)
        self._kick()

    def unbind(self) -> None:
        """Write nothing more to this tab (it closed); drop what is queued."""
        self._pending.clear()
        self._write = self._write_now = None

    def _kick(self) -> None:
        if self._write is not None and not self._busy and self._pending:
            self._busy = True
            # Run the drain right here up to its first real wait, as Python 3.12's eager tasks
            # do: a write to a socket that is not paused never waits, so a fan-out to 10,000
            # tabs makes no task at all (creating one per tab was 15 % of a fan-out).
            drain = self._drain()
            try:
                waiting = drain.send(None)
            except StopIteration:
                return
            asyncio.get_running_loop().create_task(_resume(drain, waiting))

    async def _drain(self) -> None:
        try:
            while self._pending and self._write is not None:
                await self._write(self._pending.popleft())
        except Exception:
            # The tab went away mid-write: its own task notices the disconnect and cleans up.
            self.unbind()
        finally:
            self._busy = False


async def _resume(coroutine: Coroutine[Any, Any, None], waiting: Any) -> None:
    """Drive a started coroutine on from the future it yielded, as a task would."""
    try:
        while True:
            if waiting is None:
                await asyncio.sleep(0)  # a bare yield: give the loop one turn
            else:
                try:
                    await asyncio.wait((waiting,))
                except asyncio.CancelledError:
                    waiting.cancel()
                    raise
            waiting = coroutine.send(None)
    except StopIteration:
        pass
    finally:
        coroutine.close()


class Hub:
    """The process's subscriber connection and its registry of open tabs by user."""

    def __init__(self, redis_url: str, health_check_interval: int = 30) -> None:
        self._redis_url = redis_url
        self._health = health_check_interval
        self._listeners: dict[int, set[Listener]] = {}
        self._per_shard: dict[int, int] = {}  # open tabs by shard
        # Channels asked for but not yet confirmed by the server, with who is waiting.
        self._confirming: dict[str, asyncio.Future[None]] = {}
        self._pubsub: aioredis.client.PubSub | None = None
        self._connected = asyncio.Event()
        self._wake = asyncio.Event()  # set when a subscription is added to an idle connection
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the subscriber (on the running event loop)."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop the subscriber and close its connection."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def listeners(self) -> list[Listener]:
        """Return every open tab of this process."""
        return [x for group in self._listeners.values() for x in group]

    def connection_count(self) -> int:
        """Return how many tabs this process holds."""
        return sum(len(group) for group in self._listeners.values())

    async def attach(self, listener: Listener) -> None:
        """Forward the user's messages to listener; return once the subscription is active."""
        self._listeners.setdefault(listener.user_id, set()).add(listener)
        shard = broker.shard_of(listener.user_id)
        self._per_shard[shard] = self._per_shard.get(shard, 0) + 1
        name = broker.channel(shard)
        waiting = self._confirming.get(name)
        if self._per_shard[shard] == 1 and waiting is None:
            waiting = self._confirming[name] = asyncio.get_running_loop().create_future()
            if self._connected.is_set():
                await self._subscribe([name])
                self._wake.set()
        if waiting is not None:
            # shield: one tab's handshake giving up must not cancel another's wait.
            await asyncio.shield(waiting)

    def detach(self, listener: Listener) -> None:
        """Stop forwarding to listener; the last tab of a shard ends its subscription."""
        group = self._listeners.get(listener.user_id)
        if group is None or listener not in group:
            return
        group.discard(listener)
        listener.unbind()  # also lets go of the tab's writers, which refer back to it
        if not group:
            del self._listeners[listener.user_id]
        shard = broker.shard_of(listener.user_id)
        self._per_shard[shard] -= 1
        if self._per_shard[shard]:
            return
        del self._per_shard[shard]
        name = broker.channel(shard)
        waiting = self._confirming.pop(name, None)
        if waiting is not None and not waiting.done():
            waiting.cancel()
        if self._connected.is_set():
            asyncio.get_running_loop().create_task(self._unsubscribe(name))

    async def _subscribe(self, names: list[str]) -> None:
        assert self._pubsub is not None
        try:
            await self._pubsub.subscribe(*names)
        except (RedisError, OSError):
            log.warning("could not subscribe; the connection is retried", exc_info=True)

    async def _unsubscribe(self, name: str) -> None:
        # A tab of the same shard may have opened meanwhile: then the channel stays.
        if self._pubsub is None or self._per_shard.get(_shard_of(name)):
            return
        try:
            await self._pubsub.unsubscribe(name)
        except (RedisError, OSError):
            log.warning("could not unsubscribe; the reconnect drops it", exc_info=True)

    def dispatch(self, payload: bytes | str) -> None:
        """Hand one published batch to the open tabs of its users (others are not ours)."""
        for item in json.loads(payload):
            for listener in tuple(self._listeners.get(item[0], ())):
                listener.put(item)

    async def _run(self) -> None:
        delay = 0.5
        lost = False
        while True:
            redis = aioredis.Redis.from_url(self._redis_url, health_check_interval=self._health)
            self._pubsub = redis.pubsub()
            try:
                wanted = [broker.channel(shard) for shard in self._per_shard]
                for name in wanted:
                    self._confirming.setdefault(name, asyncio.get_running_loop().create_future())
                for start in range(0, len(wanted), SUBSCRIBE_BATCH):
                    await self._pubsub.subscribe(*wanted[start : start + SUBSCRIBE_BATCH])
                if not wanted:
                    # PING opens the connection now, so an outage shows before the first tab.
                    await self._pubsub.ping()
                self._connected.set()
                delay = 0.5
                if lost:
                    # What was published while we were away is lost here: every tab catches up.
                    lost = False
                    self._broadcast(RESYNC)
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("live subscriber lost Redis; retrying in %.1f s", delay, exc_info=True)
                lost = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 15)
            finally:
                self._connected.clear()
                pubsub, self._pubsub = self._pubsub, None
                await asyncio.shield(_close(pubsub, redis))

    async def _listen(self) -> None:
        assert self._pubsub is not None
        while True:
            if not self._pubsub.subscribed:
                # With no channel there is nothing to read until a tab subscribes; ping now and
                # then to notice a lost server.
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self._health)
                except TimeoutError:
                    await self._pubsub.ping()
            message = await self._pubsub.get_message(timeout=30)
            if message is None:
                continue
            kind = message["type"]
            if kind == "message":
                try:
                    self.dispatch(message["data"])
                except (ValueError, TypeError, KeyError, IndexError):
                    log.warning("dropped a malformed live message", exc_info=True)
            elif kind == "subscribe":
                name = message["channel"].decode()
                waiting = self._confirming.pop(name, None)
                if waiting is not None and not waiting.done():
                    waiting.set_result(None)

    def _broadcast(self, item: Item) -> None:
        for listener in self.listeners():
            listener.put(item)


def _shard_of(name: str) -> int:
    return int(name[name.index("{") + 1 : name.index("}")])


async def _close(pubsub: aioredis.client.PubSub | None, redis: aioredis.Redis) -> None:
    try:
        if pubsub is not None:
            await pubsub.aclose()
        await redis.aclose()
    except Exception:
        log.debug("closing the live subscriber failed", exc_info=True)


def visible_pairs(listeners: Iterable[Listener]) -> list[tuple[int, str]]:
    """Return (user id, listener id) of the tabs that report themselves visible."""
    return [(x.user_id, x.id) for x in listeners if x.visible]
