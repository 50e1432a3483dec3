"""A worker's retry lane: retries due soon are sent from this process at their time.

A retry scheduled through RQ (`enqueue_at`) came late: rounded up to a whole second, found by
RQ's scheduler within another second, then queued behind whatever batch each worker was busy
with (the chaos bench measured 3.5 s median, 7 s p95 after a `Retry-After: 1`). The lane
keeps the retries a worker's own jobs produced that fall due within RETRY_LANE_SECONDS in an
in-process heap; a lane thread sleeps until the earliest is due and hands everything due
then, as one batch, to a few sender threads of the lane (RETRY_LANE_THREADS), each with its
own event loop and connection pools, beside the worker's current job.

Nothing depends on the lane to be delivered: a retry's row is `pending` with its
`next_attempt_at` before it enters the heap, and the claim stops two processes sending one
row twice. A SIGKILLed worker's heap is gone; the sweeper finds those rows overdue and
enqueues them at the front of the queue. A worker stopping warmly (SIGTERM) lets its sender
threads finish what they hold and hands what is still waiting to RQ's scheduler, at its
time; if Redis is unreachable then too, the sweeper has them.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta

from flask import Flask, current_app

from .. import logs
from ..timeutil import utcnow

log = logging.getLogger(__name__)

DEFAULTS = {
    # Retries due within this many seconds wait in the worker's lane; later ones are RQ jobs.
    "RETRY_LANE_SECONDS": 60.0,
    # Threads sending the lane's due retries beside the worker's job; 0 turns the lane off.
    "RETRY_LANE_THREADS": 8,
    # Retries falling due within this long of the first go out with it, as one batch.
    "RETRY_LANE_GATHER_SECONDS": 0.05,
    # A warm shutdown waits this long for the lane's threads to finish their batches.
    "RETRY_LANE_STOP_SECONDS": 20.0,
}

# What the lane calls: send these ids (under an app context), and hand these on elsewhere.
Deliver = Callable[[list[int]], object]
HandOver = Callable[[list[tuple[int, datetime]]], object]


class RetryLane:
    """An in-process heap of (due time, delivery ids) and the threads that send them when due.

    Args:
        app: the worker's app; each lane thread enters its own context of it.
        deliver: claims and sends ids (jobs.delivery.deliver), in a sender thread.
        hand_over: takes what is still waiting when the lane stops (RQ jobs at their time).
        horizon: the retries due within this many seconds are the lane's.
        threads: the sender threads.
        gather: the retries due this soon after the earliest go with it.
        batch_size: the most ids one sender thread takes at once.
        thread_setup: a context each sender thread runs in (its own push sender).
    """

    def __init__(
        self,
        app: Flask,
        deliver: Deliver,
        hand_over: HandOver,
        *,
        horizon: float,
        threads: int,
        gather: float,
        batch_size: int,
        thread_setup: Callable[[], AbstractContextManager] | None = None,
    ) -> None:
        self.app = app
        self.horizon = horizon
        self.gather = gather
        self.batch_size = max(1, batch_size)
        self.pid = os.getpid()
        self._deliver = deliver
        self._hand_over = hand_over
        self._thread_setup = thread_setup
        self._cond = threading.Condition()
        self._heap: list[tuple[datetime, int, list[int]]] = []
        self._order = itertools.count()
        self._open = False
        self._work: queue.SimpleQueue[tuple[datetime, list[int]] | None] = queue.SimpleQueue()
        self._timer = threading.Thread(target=self._time, name="retry-lane", daemon=True)
        # Daemon threads: a cold shutdown (a second SIGTERM) must not wait for a send; what
        # they held is `sending` with a lapsing lease, and the sweeper takes it back.
        self._senders = [
            threading.Thread(target=self._send, name=f"retry-lane-{n}", daemon=True)
            for n in range(threads)
        ]

    # -- the worker's side -------------------------------------------------------------------

    def start(self) -> RetryLane:
        """Start the lane thread and the sender threads; return self."""
        with self._cond:
            self._open = True
        for thread in (self._timer, *self._senders):
            thread.start()
        return self

    def takes(self, when: datetime, now: datetime | None = None) -> bool:
        """Whether a retry due at when is the lane's: the lane runs here and it is due soon."""
        if not self._open or os.getpid() != self.pid:
            return False  # stopping, or a forked child that has no lane threads
        return when <= (now or utcnow()) + timedelta(seconds=self.horizon)

    def add(self, when: datetime, ids: Iterable[int]) -> bool:
        """Hold ids until when; False if the lane is closed (the caller schedules them)."""
        batch = list(ids)
        if not batch:
            return True
        with self._cond:
            if not self._open:
                return False
            first = self._heap[0][0] if self._heap else None
            heapq.heappush(self._heap, (when, next(self._order), batch))
            if first is None or when < first:
                self._cond.notify_all()  # the lane thread sleeps until a later time
        return True

    def waiting(self) -> int:
        """Return how many delivery ids wait in the heap."""
        with self._cond:
            return sum(len(ids) for _when, _n, ids in self._heap)

    def stop(self, timeout: float) -> int:
        """Stop taking retries; let the senders finish theirs; hand on what waits; return it.

        The rows waiting are `pending` in the database with their due time whatever happens
        here: handing them over only spares them the sweeper's grace period.
        """
        with self._cond:
            if not self._open:
                return 0
            self._open = False
            self._cond.notify_all()
        if self._timer.is_alive():
            self._timer.join(timeout)
        with self._cond:
            left = [(i, when) for when, _n, ids in self._heap for i in ids]
            self._heap.clear()
        for _thread in self._senders:
            self._work.put(None)
        deadline = utcnow() + timedelta(seconds=timeout)
        for thread in self._senders:
            if thread.is_alive():
                thread.join(max(0.0, (deadline - utcnow()).total_seconds()))
        if left:
            log.info("retry lane stopping: %d deliveries handed on to RQ's scheduler", len(left))
            with self.app.app_context():
                self._hand_over(left)
        return len(left)

    # -- the lane's threads ------------------------------------------------------------------

    def _time(self) -> None:
        """Wait for the earliest due time; queue everything due with it for the senders."""
        while True:
            with self._cond:
                while self._open and (not self._heap or self._heap[0][0] > utcnow()):
                    wait = None
                    if self._heap:
                        wait = (self._heap[0][0] - utcnow()).total_seconds()
                    self._cond.wait(wait)
                if not self._open:
                    return
                until = self._heap[0][0] + timedelta(seconds=self.gather)
                due: dict[int, None] = {}  # ids in order, once each
                last = self._heap[0][0]
                while self._heap and self._heap[0][0] <= until:
                    when, _n, ids = heapq.heappop(self._heap)
                    last = max(last, when)
                    due.update(dict.fromkeys(ids))
                # The ones gathered a moment ahead of their time: wait for the last of them.
                # add() may notify meanwhile; only a stop ends the wait early.
                while self._open and (left := (last - utcnow()).total_seconds()) > 0:
                    self._cond.wait(left)
                if not self._open:
                    # Stopping: put them back for stop() to hand on.
                    heapq.heappush(self._heap, (last, next(self._order), list(due)))
                    return
            ids = list(due)
            for start in range(0, len(ids), self.batch_size):
                self._work.put((last, ids[start : start + self.batch_size]))

    def _send(self) -> None:
        """Send the batches the lane thread queues, each under its own app context."""
        token = logs.request_id_var.set("retry-lane")
        try:
            with self.app.app_context(), self._setup():
                while (item := self._work.get()) is not None:
                    when, ids = item
                    log.debug(
                        "retry lane: sending %d deliveries %.3f s after they fell due",
                        len(ids),
                        (utcnow() - when).total_seconds(),
                    )
                    try:
                        with self.app.app_context():
                            self._deliver(ids)
                    except Exception:
                        # Claimed rows are `sending` under a lease nobody renews now: the
                        # sweeper takes them back; unclaimed ones are pending and overdue.
                        log.exception("retry lane: delivering %d deliveries raised", len(ids))
        finally:
            logs.request_id_var.reset(token)

    @contextmanager
    def _setup(self) -> Iterator[None]:
        if self._thread_setup is None:
            yield
            return
        with self._thread_setup():
            yield


def current_lane() -> RetryLane | None:
    """Return the retry lane of this worker process, if it runs one."""
    lane = current_app.extensions.get("retry_lane")
    return lane if isinstance(lane, RetryLane) else None
