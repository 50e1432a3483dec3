"""Database helpers every package shares: UTC timestamps, races, conflict-free inserts, scans.

When to lock what:

- A change that reads rows and then writes depending on what it read (a copy to the next
  hold, a pledge to an open campaign) first takes a row lock on the one parent row that
  serialises it: ``UPDATE parent SET id = id WHERE id = :id`` (see the library's book lock).
  On PostgreSQL that is a row lock until commit; on SQLite the first write takes the database
  write lock, so every read after it sees the latest committed state. Prefer it to
  ``SELECT … FOR UPDATE``, which SQLite ignores.
- ``SELECT … FOR UPDATE`` (``with_for_update()``) is for PostgreSQL-only reads of rows you will
  change in the same transaction when no single parent row serialises them; SQLite is already
  serialised by the write lock taken before the read.
- State transitions are conditional updates (``… WHERE status = 'waiting'``): a second line of
  defence that turns a lost race into ``Raced`` and a rerun (``retry_on_conflict``).
- Scheduled jobs scan with ``keyset_ids`` (one short read per chunk, no lock held) and change
  each item in a transaction of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache, wraps
from typing import Any, ParamSpec, TypeVar, cast

from sqlalchemy import (
    Boolean,
    ColumnElement,
    CursorResult,
    DateTime,
    Executable,
    Select,
    any_,
    bindparam,
    literal,
    tuple_,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeDecorator

from .errors import NotFound, as_id
from .extensions import db

P = ParamSpec("P")
T = TypeVar("T")
M = TypeVar("M")


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC timestamp on every backend (SQLite returns naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        # SQLite has no time zones: store naive UTC so comparisons in SQL are plain text order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Raced(Exception):
    """A conditional update found the row changed under us: rerun the transaction."""


def retry_on_conflict(func: Callable[P, T]) -> Callable[P, T]:
    """Rerun a whole transaction that lost a race (SQLite lock, PostgreSQL serialization)."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        for _ in range(5):
            try:
                return func(*args, **kwargs)
            except Raced:
                db.session.rollback()
            except (OperationalError, DBAPIError) as exc:
                db.session.rollback()
                if not _is_conflict(exc):
                    raise
        return func(*args, **kwargs)

    return wrapper


def _is_conflict(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if code in ("40001", "40P01"):  # serialization failure, deadlock
        return True
    return "database is locked" in str(exc.orig)


class _OneOf(ColumnElement[bool]):
    """column IN (:key…) that PostgreSQL receives as column = ANY(:key), one array parameter."""

    inherit_cache = True
    type = Boolean()
    # A comparison, not a boolean column: SQLite must not get "IN (…) = 1", which no index serves.
    _is_implicitly_boolean = True
    _traverse_internals = [
        ("expanded", InternalTraversal.dp_clauseelement),
        ("array", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: Any, key: str) -> None:
        self.expanded = column.in_(bindparam(key, expanding=True))
        self.array = column == any_(bindparam(key, type_=postgresql.ARRAY(column.type)))


@compiles(_OneOf)
def _one_of_expanded(element: _OneOf, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.expanded, **kw)


@compiles(_OneOf, "postgresql")
def _one_of_array(element: _OneOf, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.array, **kw)


def one_of(column: Any, key: str) -> ColumnElement[bool]:
    """Return `column IN :key` for a statement built once and bound per call with a list.

    An expanded IN renders one placeholder per value, a new statement text on each call
    that psycopg splits by regex (measured at ~6% of a 100-recipient trigger's CPU); on
    PostgreSQL the list goes as one array, so the text stays the same and is prepared once.
    """
    return _OneOf(column, key)


def run(statement: Executable, params: Mapping[str, Any] | None = None) -> CursorResult[Any]:
    """Execute a Core statement built once on the session's connection, in its transaction.

    For the hot paths: it skips the ORM's layer around a statement (which costs more Python
    than the statement itself), so nothing loaded in the session is kept in step with it.
    """
    return db.session.connection().execute(statement, params)


def rows_changed(statement: Executable) -> int:
    """Execute an UPDATE or DELETE in the current transaction; return how many rows it changed."""
    return cast(CursorResult[Any], db.session.execute(statement)).rowcount


def insert_ignoring_conflicts(table: Any, index_elements: list[str]) -> Any:
    """Return an INSERT that skips rows clashing on index_elements (ON CONFLICT DO NOTHING).

    The statement is dialect-specific; this is what makes reruns and concurrent runs of jobs
    record each notification, coupon or follow once.
    """
    dialect = db.session.get_bind().dialect.name
    module = {"sqlite": sqlite, "postgresql": postgresql}.get(dialect)
    if module is None:
        raise NotImplementedError(
            f"conflict-ignoring inserts need SQLite or PostgreSQL, not {dialect}"
        )
    return module.insert(table).on_conflict_do_nothing(index_elements=index_elements)


def insert_rows(
    table: Any,
    rows: Sequence[dict[str, Any]],
    *,
    returning: Sequence[str] = (),
    skip_conflicts_on: Sequence[str] = (),
) -> list[tuple]:
    """Insert rows (dicts with the same keys) as one multi-row INSERT; return RETURNING tuples.

    The set-based write of a fan-out: one statement and one round trip for the batch, each
    distinct value bound once (a batch shares its timestamps), no per-row statement work.
    Scalar Python defaults of the columns left out are filled in as the ORM would; the
    RETURNING columns come back as the driver gives them (ask for ids and strings, not times).
    skip_conflicts_on: ON CONFLICT (those columns) DO NOTHING, so a duplicate is left out of
    the returned rows. Callers keep batches to a few thousand values (SQLite's bind limit).
    """
    if not rows:
        return []
    connection = db.session.connection()
    dialect = connection.dialect
    if dialect.name not in ("sqlite", "postgresql"):
        raise NotImplementedError(f"insert_rows needs SQLite or PostgreSQL, not {dialect.name}")
    names, defaults, processors = _insert_plan(table, tuple(rows[0]), dialect)
    per_column = []
    for name, process in zip(names, processors, strict=True):
        raw = [defaults[name]] * len(rows) if name in defaults else [row[name] for row in rows]
        if process is not None:
            # Bound once per distinct value: a batch's rows share their times and kinds.
            cache: dict[Any, Any] = {}
            raw = [_bound(value, process, cache) for value in raw]
        per_column.append(raw)
    if dialect.name == "postgresql":
        size, params = 0, per_column  # one array per column, whatever the batch size
    else:
        # One VALUES tuple per row: the statement depends on the batch size.
        size = len(rows)
        params = [value for values in zip(*per_column, strict=True) for value in values]
    sql = _insert_sql(table, names, dialect, size, tuple(returning), tuple(skip_conflicts_on))
    result = connection.exec_driver_sql(sql, tuple(params))
    return [tuple(row) for row in result] if returning else []


@lru_cache(maxsize=256)
def _insert_plan(
    table: Any, given: tuple[str, ...], dialect: Any
) -> tuple[tuple[str, ...], dict[str, Any], list[Callable[[Any], Any] | None]]:
    """The columns insert_rows binds, the scalar defaults it fills in and each column's bind
    processor: made once per table, given keys and dialect (making a JSON column's processor
    was about a quarter of a one-row insert's time)."""
    defaults = {
        column.name: column.default.arg
        for column in table.columns
        if column.name not in given and column.default is not None and column.default.is_scalar
    }
    names = given + tuple(defaults)
    processors = [
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    ]
    return names, defaults, processors


@lru_cache(maxsize=256)
def _insert_sql(
    table: Any,
    names: tuple[str, ...],
    dialect: Any,
    size: int,
    returning: tuple[str, ...],
    skip_conflicts_on: tuple[str, ...],
) -> str:
    """The INSERT statement insert_rows sends: built once per table, columns and batch shape."""
    quote = dialect.identifier_preparer.quote
    sql = f"INSERT INTO {quote(table.name)} ({', '.join(quote(name) for name in names)}) "
    if dialect.name == "postgresql":
        # One array per column, unnested into rows: the statement text is the same whatever
        # the batch size (psycopg parses and prepares it once, where a VALUES list of
        # thousands of placeholders is split by regex on every call), and there is no
        # limit on binds. %b sends the arrays in binary: no per-element quoting in Python.
        # Measured per 100-row notification insert: 6.8 ms of client CPU as VALUES, 5.8 ms
        # as text arrays, 2.4 ms as binary arrays.
        types = [table.c[name].type.compile(dialect=dialect) for name in names]
        sql += f"SELECT * FROM unnest({', '.join(f'%b::{type_}[]' for type_ in types)})"
    else:
        row_marks = "(" + ", ".join(["?"] * len(names)) + ")"
        sql += f"VALUES {', '.join([row_marks] * size)}"
    if skip_conflicts_on:
        sql += f" ON CONFLICT ({', '.join(quote(name) for name in skip_conflicts_on)}) DO NOTHING"
    if returning:
        sql += f" RETURNING {', '.join(quote(name) for name in returning)}"
    return sql


def _bound(value: Any, process: Callable[[Any], Any], cache: dict[Any, Any]) -> Any:
    try:
        return cache[value]
    except KeyError:
        cache[value] = bound = process(value)
        return bound
    except TypeError:  # unhashable (a JSON object): bind it as it is
        return process(value)


def keyset_ids(
    stmt: Select, column: Any, chunk: int, *, release: bool = True, after: Any = None
) -> Iterator[list[Any]]:
    """Yield lists of keys selected by stmt, in key order, up to chunk at a time.

    column is one column (the ids come back as plain values) or a sequence of columns (a
    tuple key such as (expires_at, id): the keys come back as tuples, compared as a row
    value). stmt selects exactly those columns. Memory stays flat however many rows match.
    With release (a job's scan), each read's transaction ends before the chunk is yielded, so
    none stays open while the caller works; without it (paging inside a caller's
    transaction, under its locks), the transaction is left alone. after (a key, as yielded)
    starts the scan past it: a job resuming from its last committed chunk.
    """
    columns: Sequence[Any] = column if isinstance(column, list | tuple) else (column,)
    key = tuple_(*columns) if len(columns) > 1 else columns[0]
    last: Any = None if after is None else _bound_key(after, columns)
    while True:
        page = stmt if last is None else stmt.where(key > last)
        rows = db.session.execute(page.order_by(*columns).limit(chunk)).all()
        if release:
            db.session.rollback()
        if not rows:
            return
        keys = [tuple(row) for row in rows] if len(columns) > 1 else [row[0] for row in rows]
        yield keys
        last = _bound_key(keys[-1], columns)


def _bound_key(value: Any, columns: Sequence[Any]) -> Any:
    # Typed binds: a UTCDateTime key must be bound the way the column stores it.
    if len(columns) > 1:
        return tuple_(*(literal(v, c.type) for v, c in zip(value, columns, strict=True)))
    return literal(value, columns[0].type)


def get_or_refuse(
    model: type[M],
    ident: object,
    *,
    field: str | None = None,
    message: str | None = None,
    visible: Callable[[M], bool] | None = None,
) -> M:
    """Return the row of model with primary key ident, or raise NotFound.

    field defaults to ``<model>_id``. A row the caller may not see (visible says no) is
    refused exactly like a missing one, so ids cannot be probed.
    """
    key = as_id(ident) if isinstance(ident, int) else None
    row = db.session.get(model, key) if key is not None else None
    if row is None or (visible is not None and not visible(row)):
        name = model.__name__.lower()
        raise NotFound(field or f"{name}_id", message or f"No such {name}.")
    return row
