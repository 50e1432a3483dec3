"""After a commit, a big recording's live messages go out in parts while the rest are built,
and a part that cannot be built is left out alone."""

from __future__ import annotations

from webpush_server.notifications.outbox import STREAM_BATCH, _built


def test_parts_go_out_while_the_rest_are_built_and_a_broken_part_fails_alone():
    events: list[tuple[str, int]] = []
    half = STREAM_BATCH // 2 + 1  # two parts pass STREAM_BATCH

    def part(start: int, size: int):
        def build() -> list[dict]:
            events.append(("built", start))
            return [{"user_id": n} for n in range(start, start + size)]

        return build

    def broken() -> list[dict]:
        events.append(("broken", 0))
        raise ValueError("a notification that cannot be encoded")

    def publish(messages: list[dict]) -> None:
        events.append(("published", len(messages)))

    left = _built(
        [part(0, half), part(half, half), broken, part(2 * half, 7), {"user_id": -1}], publish
    )
    assert events == [
        ("built", 0),
        ("built", half),
        ("published", 2 * half),  # before the later parts were built
        ("broken", 0),
        ("built", 2 * half),
    ]
    # What is left goes with the delivery jobs in one round trip; the broken part is missing.
    assert [m["user_id"] for m in left] == [*range(2 * half, 2 * half + 7), -1]
