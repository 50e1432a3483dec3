"""An open tab's listener writes its messages in order, whether a write completes at once or
has to wait for a paused socket, and a failed write drops only that tab's queue."""

from __future__ import annotations

import asyncio

from webpush_server.realtime.hub import Listener


def test_writes_that_never_wait_happen_inside_put_in_order():
    async def scenario() -> list[int]:
        written: list[int] = []

        async def write(item: list) -> None:
            written.append(item[0])

        listener = Listener(1)
        listener.put([0])  # queued before the tab binds its writer
        listener.bind(write)
        for n in (1, 2):
            listener.put([n])
        # No turn of the loop has passed: the writes ran in put() itself.
        return list(written)

    assert asyncio.run(scenario()) == [0, 1, 2]


def test_a_write_that_waits_is_finished_later_and_later_messages_follow_it():
    async def scenario() -> tuple[list[int], list[int]]:
        writable = asyncio.Event()
        written: list[int] = []

        async def write(item: list) -> None:
            await writable.wait()  # a paused socket, as uvicorn's send() waits on it
            written.append(item[0])
            await asyncio.sleep(0)  # a bare yield in the middle of a write

        listener = Listener(1)
        listener.bind(write)
        for n in range(3):
            listener.put([n])
        before = list(written)
        writable.set()
        for _ in range(100):
            if len(written) == 4:
                break
            if len(written) == 3:
                listener.put([3])  # arrives while the drain is finishing or after it
            await asyncio.sleep(0)
        return before, written

    before, written = asyncio.run(scenario())
    assert before == []
    assert written == [0, 1, 2, 3]


def test_a_failed_write_stops_that_tab_only():
    async def scenario() -> tuple[list[int], list[int]]:
        good: list[int] = []
        calls: list[int] = []

        async def broken(item: list) -> None:
            calls.append(item[0])
            raise ConnectionResetError

        async def working(item: list) -> None:
            good.append(item[0])

        gone, open_tab = Listener(1), Listener(1)
        gone.bind(broken)
        open_tab.bind(working)
        for n in range(3):
            gone.put([n])
            open_tab.put([n])
        await asyncio.sleep(0)  # a turn of the loop, for any write left to a task
        return list(calls), list(good)

    calls, good = asyncio.run(scenario())
    assert calls == [0]  # the first failure unbinds the writer; nothing more is tried
    assert good == [0, 1, 2]


def test_write_now_takes_an_item_with_nothing_queued_and_the_drain_takes_the_rest_in_order():
    async def scenario() -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
        written: list[tuple[str, int]] = []
        paused = False

        def write_now(item: list) -> bool:
            if paused:
                return False  # a paused socket: the ASGI path waits for it
            written.append(("now", item[0]))
            return True

        async def write(item: list) -> None:
            written.append(("drain", item[0]))

        listener = Listener(1)
        listener.put([0])  # before the writers are bound: queued
        listener.bind(write, write_now)
        listener.put([1])
        paused = True
        listener.put([2])
        paused = False
        listener.put([3])
        first = list(written)
        listener.unbind()
        listener.put([4])  # after the tab closed: nothing is written
        await asyncio.sleep(0)
        return first, written

    first, written = asyncio.run(scenario())
    assert first == [("drain", 0), ("now", 1), ("drain", 2), ("now", 3)]
    assert written == first
