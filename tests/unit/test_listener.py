"""An open tab's listener writes its messages in order, whether a write completes at once or
has to wait for a paused socket, and a failed write drops only that tab's queue."""

from __future__ import annotations

import asyncio

from webpush_server.realtime.hub import Listener


def test_writes_that_never_wait_happen_inside_put_in_order():
    async def scenario() -> list[int]:
        written: list[int] = []

        async def write(message: dict) -> None:
            written.append(message["n"])

        listener = Listener(1)
        listener.put({"n": 0})  # queued before the tab binds its writer
        listener.bind(write)
        for n in (1, 2):
            listener.put({"n": n})
        # No turn of the loop has passed: the writes ran in put() itself.
        return list(written)

    assert asyncio.run(scenario()) == [0, 1, 2]


def test_a_write_that_waits_is_finished_later_and_later_messages_follow_it():
    async def scenario() -> tuple[list[int], list[int]]:
        writable = asyncio.Event()
        written: list[int] = []

        async def write(message: dict) -> None:
            await writable.wait()  # a paused socket, as uvicorn's send() waits on it
            written.append(message["n"])
            await asyncio.sleep(0)  # a bare yield in the middle of a write

        listener = Listener(1)
        listener.bind(write)
        for n in range(3):
            listener.put({"n": n})
        before = list(written)
        writable.set()
        for _ in range(100):
            if len(written) == 4:
                break
            if len(written) == 3:
                listener.put({"n": 3})  # arrives while the drain is finishing or after it
            await asyncio.sleep(0)
        return before, written

    before, written = asyncio.run(scenario())
    assert before == []
    assert written == [0, 1, 2, 3]


def test_a_failed_write_stops_that_tab_only():
    async def scenario() -> tuple[list[int], list[int]]:
        good: list[int] = []
        calls: list[int] = []

        async def broken(message: dict) -> None:
            calls.append(message["n"])
            raise ConnectionResetError

        async def working(message: dict) -> None:
            good.append(message["n"])

        gone, open_tab = Listener(1), Listener(1)
        gone.bind(broken)
        open_tab.bind(working)
        for n in range(3):
            gone.put({"n": n})
            open_tab.put({"n": n})
        await asyncio.sleep(0)  # a turn of the loop, for any write left to a task
        return list(calls), list(good)

    calls, good = asyncio.run(scenario())
    assert calls == [0]  # the first failure unbinds the writer; nothing more is tried
    assert good == [0, 1, 2]
