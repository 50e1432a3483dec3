"""The retry lane on its own: what it hands its senders, in what batches, and what it hands on."""

from __future__ import annotations

import threading
from datetime import timedelta

from flask import Flask

from webpush_server.jobs.lane import RetryLane
from webpush_server.timeutil import utcnow


class Calls:
    """What the lane asked to deliver, in order, and a way to wait for it."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.handed: list[tuple[int, object]] = []
        self.cond = threading.Condition()

    def deliver(self, ids: list[int]) -> None:
        with self.cond:
            self.batches.append(ids)
            self.cond.notify_all()

    def hand_over(self, left) -> None:
        self.handed.extend(left)

    def wait_for(self, n: int) -> list[list[int]]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.batches) >= n, 10), self.batches
            return list(self.batches)


def lane(calls: Calls, **settings) -> RetryLane:
    options = {"horizon": 60.0, "threads": 1, "gather": 0.2, "batch_size": 250, **settings}
    return RetryLane(Flask(__name__), calls.deliver, calls.hand_over, **options).start()


def test_retries_due_together_go_out_as_one_batch_each_id_once_and_in_due_order():
    calls = Calls()
    retry_lane = lane(calls)
    try:
        now = utcnow()
        later = now + timedelta(seconds=1)
        assert retry_lane.add(later, [5, 6])
        assert retry_lane.add(now + timedelta(milliseconds=300), [1, 2])
        # Within the gather window of the first: the same batch; 2 twice is sent once.
        assert retry_lane.add(now + timedelta(milliseconds=350), [2, 3])
        batches = calls.wait_for(2)
    finally:
        retry_lane.stop(5)
    assert batches == [[1, 2, 3], [5, 6]]
    assert calls.handed == []


def test_a_lane_batch_is_cut_to_the_batch_size():
    calls = Calls()
    retry_lane = lane(calls, batch_size=2, threads=2)
    try:
        assert retry_lane.add(utcnow(), [1, 2, 3, 4, 5])
        batches = calls.wait_for(3)
    finally:
        retry_lane.stop(5)
    assert sorted(batches) == [[1, 2], [3, 4], [5]]


def test_takes_only_retries_within_its_horizon_and_nothing_once_stopped():
    calls = Calls()
    retry_lane = lane(calls, horizon=10.0)
    now = utcnow()
    assert retry_lane.takes(now + timedelta(seconds=9), now)
    assert not retry_lane.takes(now + timedelta(seconds=11), now)
    retry_lane.stop(5)
    assert not retry_lane.takes(now, now)
    assert not retry_lane.add(now, [1])  # the caller schedules it elsewhere


def test_stopping_hands_on_what_still_waits_with_its_due_time():
    calls = Calls()
    retry_lane = lane(calls)
    due = utcnow() + timedelta(seconds=30)
    assert retry_lane.add(due, [7, 8])
    assert retry_lane.waiting() == 2
    assert retry_lane.stop(5) == 2
    assert sorted(calls.handed) == [(7, due), (8, due)]
    assert calls.batches == []
