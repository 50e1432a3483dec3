"""Spring Batch semantics for scheduled jobs: instances, executions, chunk checkpoints.

A job instance is a job's name plus its identifying parameters: the occurrence the scheduler
passes (``date=2027-03-14`` for a daily job, ``hour=2027-03-14T13``, ``minute=…T13:05`` in
UTC), or a fresh ``run=<id>`` for a run by hand, like Spring Batch's run-id incrementer. Each
attempt at an instance is an execution. Of two attempts at once, one proceeds: the instance
row is locked while the attempt decides (a conditional update on it), so two schedulers, a
double fire of rq-scheduler and a run by hand all agree. A completed instance never runs
again. A failed or killed one (its heartbeat went stale, or its process is gone) resumes from
the keyset position of its last committed chunk; the dedupe keys make the redone part of a
chunk send nothing twice.

A job is a list of steps. A step reads keys with ``keyset_ids`` and hands each item, or each
chunk (``batch=True``), to a service that commits its own transaction; after each chunk the
execution records its counts and position. An item that raises is skipped and recorded (a
failing chunk is retried one item at a time to find it, as Spring Batch's fault-tolerant
step scans), up to ``JOB_SKIP_LIMIT`` per execution; one more fails the execution.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from rq.utils import import_attribute
from sqlalchemy import Date, Select, func, select, update

from ..database import UTCDateTime, insert_ignoring_conflicts, keyset_ids, rows_changed
from ..errors import Invalid, NotFound
from ..extensions import db
from ..timeutil import app_zone, isoformat, utcnow
from .context import app_context
from .models import JobExecution, JobInstance
from .schedule import ScheduledJob, table

log = logging.getLogger(__name__)

Params = dict[str, str]

# The occurrence parameters and the instants they name (UTC; a date is a day in APP_TIMEZONE).
PARAM_FORMATS = {"date": "%Y-%m-%d", "hour": "%Y-%m-%dT%H", "minute": "%Y-%m-%dT%H:%M"}


class JobFailed(RuntimeError):
    """An execution failed; it is recorded, and the next attempt resumes it."""


class _SkipLimitExceeded(Exception):
    pass


class _Abandoned(Exception):
    """Another execution took the instance over (ours was taken for dead)."""


# -- parameters ------------------------------------------------------------------------------


def canonical(params: Mapping[str, str]) -> str:
    """Return the instance key of params: JSON with sorted keys and no spaces."""
    return json.dumps(dict(params), sort_keys=True, separators=(",", ":"))


def parse_params(pairs: Iterable[str]) -> Params:
    """Parse `key=value` pairs (`jobs run --param`), checking the occurrence formats."""
    params: Params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise Invalid("param", f"{pair!r} is not key=value.")
        params[name.strip()] = value.strip()
    for name, fmt in PARAM_FORMATS.items():
        if name in params:
            try:
                datetime.strptime(params[name], fmt)
            except ValueError:
                example = datetime(2027, 3, 14, 13, 5).strftime(fmt)
                raise Invalid("param", f"{name} must look like {example}.") from None
    return params


def occurrence(day: date, at: time, zone: ZoneInfo) -> datetime:
    """Return the UTC instant of the wall-clock time at on day in zone.

    Across daylight saving the UTC instant moves and the local time stays; a local time the
    clocks skip (02:30 on a spring-forward night) happens an hour later on the wall clock.
    """
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def instant_of(params: Mapping[str, str], daily_at: time | None = None) -> datetime | None:
    """Return the instant an occurrence parameter names, or None (a run by hand: now)."""
    if "minute" in params or "hour" in params:
        name = "minute" if "minute" in params else "hour"
        return datetime.strptime(params[name], PARAM_FORMATS[name]).replace(tzinfo=UTC)
    if "date" in params:
        day = datetime.strptime(params["date"], PARAM_FORMATS["date"]).date()
        return occurrence(day, daily_at or time(0), app_zone())
    return None


def scheduled_params(entry: ScheduledJob, now: datetime) -> Params:
    """Return the occurrence of entry that a scheduler starting it at now means."""
    if entry.daily_at is not None:
        return {"date": now.astimezone(app_zone()).date().isoformat()}
    minute, hour = (entry.cron or "* *").split()[:2]
    if minute.isdigit() and hour == "*":  # once an hour
        return {"hour": now.astimezone(UTC).strftime(PARAM_FORMATS["hour"])}
    return {"minute": now.astimezone(UTC).strftime(PARAM_FORMATS["minute"])}


def run_id() -> Params:
    """Return the parameters of a fresh instance (a run by hand)."""
    return {"run": uuid.uuid4().hex[:12]}


# -- steps and outcomes ----------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """Read keys with reader in key order, chunk at a time, and process each item.

    process takes one item (or, with batch, a list of items) and commits its own work. It
    returns what it wrote: a count, a label to tally (``"succeeded"``), or None/False for
    nothing. item maps a key to what process takes (a (expires_at, id) key to its id).
    """

    name: str
    reader: Select
    key: Any
    process: Callable[[Any], object]
    chunk: int
    batch: bool = False
    item: Callable[[Any], Any] | None = None


@dataclass
class Outcome:
    """What an attempt to run an instance came to."""

    job: str
    params: Params
    status: str  # completed | failed | abandoned | already complete | running elsewhere
    execution_id: int | None = None
    read: int = 0
    written: int = 0
    skipped: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    error: str | None = None

    @property
    def ran(self) -> bool:
        return self.execution_id is not None

    def describe(self) -> str:
        """One line for the CLI and the logs."""
        what = f"{self.job} {canonical(self.params)}"
        if not self.ran:
            return f"{what}: {self.status}, nothing to do"
        line = (
            f"{what}: execution {self.execution_id} {self.status}: read {self.read}, "
            f"written {self.written}, skipped {self.skipped}"
        )
        return f"{line}; {self.error}" if self.error else line


@dataclass(frozen=True)
class BatchJob:
    """A job run as instances; calling it is what the scheduler and `jobs run` do.

    Called with params, it runs that instance; with now only (tests, scripts), a fresh instance
    as of now; with neither (rq-scheduler's cron), the occurrence its schedule means now.
    result turns the outcome into what the call returns (by default how many were written).
    """

    name: str
    steps: Callable[[datetime], list[Step]]
    result: Callable[[Outcome], object] = lambda outcome: outcome.written

    def __call__(
        self, now: datetime | None = None, *, params: Mapping[str, str] | None = None
    ) -> object:
        with app_context():
            if params is None and now is None:
                params = scheduled_params(table()[self.name], utcnow())
            outcome = self.launch(params or run_id(), at=now)
        if outcome.status == "failed":
            raise JobFailed(outcome.describe())
        return self.result(outcome)

    def launch(
        self, params: Mapping[str, str], *, at: datetime | None = None, late: bool = False
    ) -> Outcome:
        """Run the instance params names, unless it is complete or running elsewhere."""
        entry = table().get(self.name)
        at = at or instant_of(params, entry.daily_at if entry else None) or utcnow()
        instance_id = _instance(self.name, canonical(params), at)
        begun = _begin(instance_id, late)
        if isinstance(begun, str):
            return Outcome(self.name, dict(params), begun)
        execution_id, position = begun
        at = db.session.get_one(JobInstance, instance_id).at
        db.session.rollback()
        outcome = Outcome(self.name, dict(params), "started", execution_id)
        return _run(self.steps(at), outcome, position)


# -- instances and executions ----------------------------------------------------------------


def _instance(name: str, params_key: str, at: datetime) -> int:
    """Return the id of the instance (name, params_key), creating it if it is new."""
    db.session.execute(
        insert_ignoring_conflicts(JobInstance.__table__, ["name", "params_key"]).values(
            name=name, params_key=params_key, at=at, created_at=utcnow()
        )
    )
    db.session.commit()
    return db.session.scalars(
        select(JobInstance.id).where(JobInstance.name == name, JobInstance.params_key == params_key)
    ).one()


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _is_alive(execution: JobExecution, now: datetime) -> bool:
    """Tell whether a started execution's process still runs it."""
    stale = timedelta(seconds=current_app.config["JOB_STALE_SECONDS"])
    if execution.heartbeat <= now - stale:
        return False
    host, _, pid = execution.owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another machine: only its heartbeat can tell
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _begin(instance_id: int, late: bool) -> tuple[int, dict | None] | str:
    """Start an execution of the instance; return it and where to resume, or why not."""
    for _ in range(5):
        now = utcnow()
        # The conditional update that decides: it locks the instance row (PostgreSQL) or the
        # database (SQLite) until commit, so of two attempts at once the second reads the
        # first's execution. (The database module explains this parent-row lock.)
        rows_changed(
            update(JobInstance)
            .where(JobInstance.id == instance_id)
            .values(id=JobInstance.id)
            .execution_options(synchronize_session=False)
        )
        latest = db.session.scalars(
            select(JobExecution)
            .where(JobExecution.instance_id == instance_id)
            .order_by(JobExecution.id.desc())
            .limit(1)
        ).first()
        if latest is not None and latest.status == "completed":
            db.session.rollback()
            return "already complete"
        if latest is not None and latest.status == "started":
            if _is_alive(latest, now):
                db.session.rollback()
                return "running elsewhere"
            taken = rows_changed(
                update(JobExecution)
                .where(JobExecution.id == latest.id, JobExecution.status == "started")
                .values(
                    status="failed",
                    ended_at=now,
                    error=f"abandoned: no heartbeat since {latest.heartbeat:%Y-%m-%d %H:%M:%S}"
                    f" UTC from {latest.owner}",
                )
                .execution_options(synchronize_session=False)
            )
            if not taken:
                db.session.rollback()
                continue
        position = json.loads(latest.position) if latest and latest.position else None
        execution = JobExecution(
            instance_id=instance_id,
            status="started",
            started_at=now,
            heartbeat=now,
            owner=_owner(),
            position=json.dumps(position) if position else None,
            late=late,
        )
        db.session.add(execution)
        db.session.commit()
        return execution.id, position
    raise JobFailed(f"job instance {instance_id}: could not start an execution")


def _encode(key: Any) -> Any:
    if isinstance(key, tuple):
        return [_encode(v) for v in key]
    # A date (or datetime: a subclass) goes into the JSON checkpoint as ISO 8601.
    return key.isoformat() if isinstance(key, date) else key


def _decode(value: Any, key: Any) -> Any:
    columns = key if isinstance(key, list | tuple) else (key,)
    values = value if isinstance(key, list | tuple) else [value]
    decoded = [
        datetime.fromisoformat(v)
        if isinstance(c.type, UTCDateTime)
        else date.fromisoformat(v)
        if isinstance(c.type, Date)
        else v
        for v, c in zip(values, columns, strict=True)
    ]
    return tuple(decoded) if isinstance(key, list | tuple) else decoded[0]


def _tally(result: object, step: Step, outcome: Outcome) -> None:
    if result is None or result is False:
        return
    if isinstance(result, str):
        outcome.counts[result] += 1
        outcome.written += 1
    elif isinstance(result, int):
        outcome.counts[step.name] += result
        outcome.written += result
    else:
        raise TypeError(f"step {step.name} returned {result!r}")


def _run(steps: list[Step], outcome: Outcome, position: dict | None) -> Outcome:
    """Run steps from position, checkpointing after each chunk; record how it ended."""
    skips: list[dict] = []
    limit = current_app.config["JOB_SKIP_LIMIT"]
    start = position["step"] if position else 0
    try:
        for index, step in enumerate(steps):
            if index < start:
                continue
            after = position.get("after") if position and index == start else None
            scan = keyset_ids(
                step.reader,
                step.key,
                step.chunk,
                after=None if after is None else _decode(after, step.key),
            )
            for keys in scan:
                items = [step.item(k) for k in keys] if step.item else keys
                outcome.read += len(items)
                for item, error in _process(step, items, outcome):
                    outcome.skipped += 1
                    skips.append({"step": step.name, "item": _encode(item), "error": error})
                    if outcome.skipped > limit:
                        raise _SkipLimitExceeded(
                            f"skip limit {limit} exceeded in step {step.name}: {error}"
                        )
                _checkpoint(outcome, {"step": index, "after": _encode(keys[-1])}, skips)
            _checkpoint(outcome, {"step": index + 1, "after": None}, skips)
    except _Abandoned:
        db.session.rollback()
        outcome.status = "abandoned"
        return outcome
    except Exception as exc:  # a failing reader or the skip limit: recorded, then resumed
        db.session.rollback()
        outcome.error = str(exc) if isinstance(exc, _SkipLimitExceeded) else repr(exc)
        outcome.status = "failed"
        log.exception("%s", outcome.describe())
        _end(outcome, skips)
        return outcome
    outcome.status = "completed"
    _end(outcome, skips)
    log.info("%s", outcome.describe())
    return outcome


def _process(step: Step, items: list[Any], outcome: Outcome) -> Iterable[tuple[Any, str]]:
    """Process a chunk; yield (item, error) for each item that raised, now skipped."""
    if step.batch:
        try:
            _tally(step.process(items), step, outcome)
            return
        except Exception:
            db.session.rollback()
        # Find the items that fail, one at a time; the others commit.
        for item in items:
            try:
                _tally(step.process([item]), step, outcome)
            except Exception as exc:
                db.session.rollback()
                log.exception("%s: skipped %r", step.name, item)
                yield item, repr(exc)
        return
    for item in items:
        try:
            _tally(step.process(item), step, outcome)
        except Exception as exc:
            db.session.rollback()
            log.exception("%s: skipped %r", step.name, item)
            yield item, repr(exc)


def _checkpoint(outcome: Outcome, position: dict, skips: list[dict]) -> None:
    """Record the last committed chunk and the counts; stop if another execution took over."""
    changed = rows_changed(
        update(JobExecution)
        .where(JobExecution.id == outcome.execution_id, JobExecution.status == "started")
        .values(
            position=json.dumps(position),
            heartbeat=utcnow(),
            read=outcome.read,
            written=outcome.written,
            skipped=outcome.skipped,
            counts=json.dumps(dict(outcome.counts)),
            skips=json.dumps(skips) if skips else None,
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if not changed:
        raise _Abandoned


def _end(outcome: Outcome, skips: list[dict]) -> None:
    db.session.execute(
        update(JobExecution)
        .where(JobExecution.id == outcome.execution_id, JobExecution.status == "started")
        .values(
            status=outcome.status,
            ended_at=utcnow(),
            heartbeat=utcnow(),
            read=outcome.read,
            written=outcome.written,
            skipped=outcome.skipped,
            counts=json.dumps(dict(outcome.counts)),
            skips=json.dumps(skips) if skips else None,
            error=outcome.error,
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


# -- the daily tick, restarts and the list of executions -------------------------------------


def start_daily_jobs(now: datetime | None = None) -> dict[str, str]:
    """Start today's occurrence of each daily job that is due in APP_TIMEZONE.

    rq-scheduler fires this every minute. Only today's occurrence is ever started: after an
    outage a daily job catches up on today's (marked late) and never floods past days. Its
    instance row makes it run once, however many schedulers tick.
    """
    with app_context():
        now = now or utcnow()
        zone = app_zone()
        today = now.astimezone(zone).date()
        late_after = timedelta(seconds=current_app.config["JOB_LATE_AFTER_SECONDS"])
        started: dict[str, str] = {}
        for entry in table().values():
            if entry.daily_at is None:
                continue
            due = occurrence(today, entry.daily_at, zone)
            if now < due:
                started[entry.id] = f"not due until {due:%Y-%m-%d %H:%M} UTC"
                continue
            outcome = batch_job(entry.id).launch(
                {"date": today.isoformat()}, late=now - due > late_after
            )
            started[entry.id] = outcome.describe()
        return started


def batch_job(name: str) -> BatchJob:
    """Return the batch job named name in the app's schedule."""
    entry = table().get(name)
    job = import_attribute(entry.func) if entry else None
    if not isinstance(job, BatchJob):
        raise NotFound("job", f"{name} is not a batch job.")
    return job


def restart(execution_id: int) -> Params:
    """Queue a failed execution's instance to resume; return its parameters."""
    from .queues import queue

    row = db.session.execute(
        select(JobExecution, JobInstance)
        .join(JobInstance, JobInstance.id == JobExecution.instance_id)
        .where(JobExecution.id == execution_id)
    ).first()
    if row is None:
        raise NotFound("execution_id", "No such job execution.")
    execution, instance = row
    if execution.status != "failed":
        raise Invalid("execution_id", f"Execution {execution_id} has not failed.")
    params: Params = json.loads(instance.params_key)
    entry = table()[batch_job(instance.name).name]
    queue().enqueue_call(func=entry.func, kwargs={"params": params}, timeout=1800, result_ttl=3600)
    return params


def _row(execution: JobExecution, instance: JobInstance) -> dict:
    return {
        "id": execution.id,
        "job": instance.name,
        "params": json.loads(instance.params_key),
        "status": execution.status,
        "started_at": isoformat(execution.started_at),
        "ended_at": isoformat(execution.ended_at),
        "read": execution.read,
        "written": execution.written,
        "skipped": execution.skipped,
        "error": execution.error,
        "late": execution.late,
    }


def latest_executions(limit: int | None = None) -> list[dict]:
    """Return each job's latest execution, or with limit the newest executions of all.

    Newest first, in the `jobs runs --json` shape.
    """
    stmt = select(JobExecution, JobInstance).join(
        JobInstance, JobInstance.id == JobExecution.instance_id
    )
    if limit is None:
        latest = (
            select(func.max(JobExecution.id))
            .join(JobInstance, JobInstance.id == JobExecution.instance_id)
            .group_by(JobInstance.name)
        )
        stmt = stmt.where(JobExecution.id.in_(latest))
    else:
        stmt = stmt.limit(limit)
    found = db.session.execute(stmt.order_by(JobExecution.id.desc())).all()
    return [_row(execution, instance) for execution, instance in found]


def unresumed_failures(limit: int = 50) -> list[dict]:
    """Return failed executions that no later execution of their instance has followed."""
    last_per_instance = select(func.max(JobExecution.id)).group_by(JobExecution.instance_id)
    found = db.session.execute(
        select(JobExecution, JobInstance)
        .join(JobInstance, JobInstance.id == JobExecution.instance_id)
        .where(JobExecution.status == "failed", JobExecution.id.in_(last_per_instance))
        .order_by(JobExecution.id.desc())
        .limit(limit)
    ).all()
    return [_row(execution, instance) for execution, instance in found]
