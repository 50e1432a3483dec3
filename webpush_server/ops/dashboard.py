"""The figures of /admin/: plain queries over the outbox, the attempts and Redis.

Every figure is computed from rows a page under /admin/ can list: a delivery counts in a
window when one of its attempts falls in it, under that attempt's push service origin, with
its current status (`pending` shown as retrying). Latency percentiles come from the attempts'
duration_ms. Sums are done in SQL; percentiles and the hourly series in Python, over the
rows of one day (enough for this scale; PostgreSQL's percentile_cont would do it in SQL).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, distinct, func, select

from ..auth.models import User
from ..extensions import db
from ..jobs.batch import latest_executions
from ..jobs.queues import QUEUES, connection, queue
from ..notifications.models import Delivery, DeliveryAttempt, Notification
from ..push.models import Subscription
from ..push.sender import origin_of
from .browsers import browser_family
from .chart import Chart, stacked_bars

WINDOWS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
# The columns of the per-origin table and the delivery statuses behind each.
STATUS_COLUMNS = {
    "sent": ("sent",),
    "failed": ("failed",),
    "gone": ("gone",),
    "retrying": ("pending", "sending"),
    "dead": ("dead",),
}
# Attempt outcomes of the hourly chart, bottom to top.
CHART_SERIES = ("sent", "gone", "transient", "rate_limited", "config_error", "other")

_A, _D = DeliveryAttempt, Delivery


@dataclass(slots=True)
class OriginRow:
    origin: str
    counts: dict[str, int] = field(default_factory=dict)
    p50_ms: float | None = None
    p95_ms: float | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def window_start(name: str, now: datetime) -> datetime:
    """Return when the named window ("hour", "day") began."""
    return now - WINDOWS[name]


def attempted_in(since: datetime, origin: str | None = None) -> Select:
    """Select the ids of deliveries with an attempt since then (to that origin)."""
    query = select(_A.delivery_id).where(_A.at >= since)
    if origin is not None:
        query = query.where(_A.origin == origin)
    return query


def deliveries_by_origin(since: datetime) -> list[OriginRow]:
    """Count deliveries per origin and status column; latency percentiles per origin."""
    column_of = {status: name for name, statuses in STATUS_COLUMNS.items() for status in statuses}
    rows: dict[str, OriginRow] = {}
    counted = (
        select(_A.origin, _D.status, func.count(distinct(_D.id)))
        .join(_D, _D.id == _A.delivery_id)
        .where(_A.at >= since, _A.origin.is_not(None))
        .group_by(_A.origin, _D.status)
    )
    for origin, status, number in db.session.execute(counted):
        row = rows.setdefault(str(origin), OriginRow(str(origin), dict.fromkeys(STATUS_COLUMNS, 0)))
        name = column_of.get(status)
        if name is not None:
            row.counts[name] += number
    durations: dict[str, list[float]] = defaultdict(list)
    timed = select(_A.origin, _A.duration_ms).where(
        _A.at >= since, _A.duration_ms.is_not(None), _A.origin.is_not(None)
    )
    for origin, duration in db.session.execute(timed):
        durations[str(origin)].append(float(duration or 0))
    for origin, values in durations.items():
        row = rows.setdefault(origin, OriginRow(origin, dict.fromkeys(STATUS_COLUMNS, 0)))
        row.p50_ms, row.p95_ms = percentile(values, 50), percentile(values, 95)
    return sorted(rows.values(), key=lambda row: (-row.total, row.origin))


def percentile(values: list[float], pct: float) -> float | None:
    """Return the nearest-rank percentile of values (None for none)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))  # ceil without floats
    return ordered[int(rank) - 1]


def hourly_chart(now: datetime, hours: int = 24) -> tuple[Chart, list[tuple[str, str]]]:
    """Return the stacked chart of attempts per hour and outcome, and its legend."""
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    buckets: list[Counter] = [Counter() for _ in range(hours)]
    query = select(_A.at, _A.outcome).where(_A.at >= start)
    for at, outcome in db.session.execute(query):
        index = int((at - start).total_seconds() // 3600)
        if 0 <= index < hours:
            buckets[index][outcome if outcome in CHART_SERIES else "other"] += 1
    from ..timeutil import app_zone

    zone = app_zone()
    labelled = [
        ((start + timedelta(hours=i)).astimezone(zone).strftime("%H:00"), counts)
        for i, counts in enumerate(buckets)
    ]
    legend = [(name, name.replace("_", " ")) for name in CHART_SERIES]
    return stacked_bars(labelled, CHART_SERIES), legend


@dataclass(slots=True)
class QueueRow:
    name: str
    waiting: int
    oldest_enqueued_at: datetime | None
    scheduled: int
    failed: int


def queue_depths() -> list[QueueRow] | None:
    """Return each queue's waiting jobs and its oldest one; None when Redis does not answer."""
    from rq.job import Job
    from rq.registry import FailedJobRegistry, ScheduledJobRegistry

    try:
        rows = []
        for name in QUEUES:
            q = queue(name)
            oldest = None
            first = q.get_job_ids(0, 1)
            if first:
                job = Job.fetch(first[0], connection=connection())
                oldest = job.enqueued_at
            rows.append(
                QueueRow(
                    name,
                    q.count,
                    oldest,
                    ScheduledJobRegistry(queue=q).count,
                    FailedJobRegistry(queue=q).count,
                )
            )
        return rows
    except Exception:
        return None


DEAD_COLUMNS = (
    _D.id,
    _D.attempts,
    _D.reclaims,
    _D.last_status_code,
    _D.last_error,
    _D.created_at,
    Notification.kind,
    Notification.title,
    User.email,
    Subscription.endpoint,
)


def dead_deliveries(limit: int = 50) -> list[Any]:
    """Return the newest dead deliveries with what an operator needs to decide."""
    query = (
        select(*DEAD_COLUMNS)
        .join(Notification, Notification.id == _D.notification_id)
        .join(User, User.id == Notification.user_id)
        .outerjoin(Subscription, Subscription.id == _D.subscription_id)
        .where(_D.status == "dead")
        .order_by(_D.id.desc())
        .limit(limit)
    )
    return list(db.session.execute(query))


def count_dead() -> int:
    """Count every dead delivery."""
    return db.session.execute(
        select(func.count()).select_from(_D).where(_D.status == "dead")
    ).scalar_one()


def subscriptions_by_browser() -> list[tuple[str, int]]:
    """Return (browser family, devices), most devices first."""
    families: Counter = Counter()
    query = select(Subscription.user_agent, func.count()).group_by(Subscription.user_agent)
    for user_agent, number in db.session.execute(query):
        families[browser_family(user_agent)] += number
    return sorted(families.items(), key=lambda item: (-item[1], item[0]))


@dataclass(slots=True)
class KindRates:
    kind: str
    pushed: int  # notifications with a push delivery sent
    shown: int
    clicked: int

    @property
    def shown_rate(self) -> float | None:
        return self.shown / self.pushed if self.pushed else None

    @property
    def click_rate(self) -> float | None:
        return self.clicked / self.shown if self.shown else None


def pushed_notifications(since: datetime, kind: str | None = None) -> Select:
    """Select notifications created since then that at least one device was sent."""
    sent = select(_D.id).where(_D.notification_id == Notification.id, _D.status == "sent")
    query = select(Notification).where(Notification.created_at >= since, sent.exists())
    if kind is not None:
        query = query.where(Notification.kind == kind)
    return query


def rates_by_kind(since: datetime) -> list[KindRates]:
    """Return per kind: notifications pushed, shown and clicked since then."""
    pushed = pushed_notifications(since).subquery()
    query = (
        select(
            pushed.c.kind,
            func.count(),
            func.count(pushed.c.shown_at),
            func.count(pushed.c.clicked_at),
        )
        .group_by(pushed.c.kind)
        .order_by(pushed.c.kind)
    )
    return [KindRates(*row) for row in db.session.execute(query)]


@dataclass(frozen=True)
class ConfigErrorGroup:
    """Attempts a push service refused alike (same service, status and error), counted."""

    origin: str | None
    status_code: int | None
    error: str | None
    count: int
    first_at: datetime
    last_at: datetime
    last_delivery_id: int


def config_errors(since: datetime, limit: int = 20) -> list[ConfigErrorGroup]:
    """Return the refusals a push service blamed on our configuration, grouped, newest first.

    One wrong key makes every push to that service fail the same way: a row per attempt
    would show the same line hundreds of times and push every other service off the list.
    """
    a = DeliveryAttempt
    last_at = func.max(a.at)
    query = (
        select(
            a.origin,
            a.status_code,
            a.error,
            func.count(),
            func.min(a.at),
            last_at,
            func.max(a.delivery_id),
        )
        .where(a.outcome == "config_error", a.at >= since)
        .group_by(a.origin, a.status_code, a.error)
        .order_by(last_at.desc())
        .limit(limit)
    )
    return [ConfigErrorGroup(*row) for row in db.session.execute(query)]


def job_executions(limit: int = 10) -> list[dict]:
    """Return the newest job executions (the `jobs runs --json` shape), for the dashboard.

    Each also has `started`, its start as a datetime: the page shows it on the local clock
    like every other time there, not as the UTC text of the JSON.
    """
    found = latest_executions(limit)
    for execution in found:
        started = execution.get("started_at")
        execution["started"] = datetime.fromisoformat(started) if started else None
    return found


def origin_of_endpoint(endpoint: str | None) -> str | None:
    """Return the push service origin of a device's endpoint, None without a device."""
    return origin_of(endpoint) if endpoint else None
