"""Read a scan in chunks of ids: keyset pagination, one short read transaction per chunk."""

from __future__ import annotations

from collections.abc import Iterator

from ..extensions import db


def keyset_ids(stmt, column, chunk: int) -> Iterator[list[int]]:
    """Yield lists of ids selected by stmt, in column order, up to chunk at a time.

    Memory stays flat however many rows match, and no read transaction stays open while the
    caller works on a chunk.
    """
    last = 0
    while True:
        ids = db.session.scalars(stmt.where(column > last).order_by(column).limit(chunk)).all()
        db.session.rollback()
        if not ids:
            return
        yield ids
        last = ids[-1]
