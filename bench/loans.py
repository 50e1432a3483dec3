"""remind-loans at scale: time, rows per second and peak memory, with job executions.

Creates a fresh SQLite database (or uses --database-url), a private redis-server, N active
loans of which M are due for a reminder on the day the job runs (due in 2 days, or 1, 7 or
14 days overdue, in equal parts), the rest due well outside the reminder window, borrowed by
users of whom most have a push subscription. Then it runs the `remind-loans` instance for
that day (`--param date=`) in a fresh child process, as the scheduler would, until every
notification and delivery is recorded and every delivery job is enqueued, and reads the
execution row it left (read, written, status). Prints seconds, rows per second and peak
memory (the child's VmHWM). Figures only: it fails only on errors or wrong counts. Its
redis-server is stopped and its temporary folder removed when it ends.

    .venv/bin/python bench/loans.py [--loans 1000000] [--due 100000] [--users 100000]
        [--database-url postgresql://…]   (the database must be empty or hold only this bench)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DAY = date(2027, 3, 15)  # the occurrence the job runs for (`--param date=2027-03-15`)
# The due dates that get a reminder on DAY (days from DAY): due soon, then 1, 7, 14 overdue.
REMINDED = (2, -1, -7, -14)
COPIES_PER_BOOK = 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument(
        "--subscribed", type=float, default=0.9, help="share of users with a device"
    )
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    if not 0 < args.due <= args.loans:
        parser.error("--due must be between 1 and --loans")

    from webpush_server import create_app, redis_server
    from webpush_server.extensions import db

    print(f"load average at start: {Path('/proc/loadavg').read_text().split()[:3]}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-loans-"))
    port = _free_port()
    redis = redis_server.start(tmp / "redis", port=port)
    url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "REDIS_URL": f"redis://127.0.0.1:{port}/0",
            "VAPID_SUBJECT": "mailto:bench@webpush-server.dev",
            "SECRET_KEY": "bench",
        },
        instance_path=str(tmp / "instance"),
    )
    try:
        with app.app_context():
            from flask_migrate import upgrade

            if args.database_url:
                _reset(db)
            upgrade(directory=str(ROOT / "migrations"))
            started = time.perf_counter()
            _populate(db, args)
            print(f"setup: {args.loans:,} loans, {args.due:,} due for a reminder on {DAY}, "
                  f"{args.users:,} users ({args.subscribed:.0%} with a device) "
                  f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
            db.session.remove()
            _run(app, db, args)
            if args.database_url:
                _reset(db)
    finally:
        redis.terminate()
        redis.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _reset(db) -> None:
    """Drop every table (a PostgreSQL database given with --database-url is reused)."""
    from sqlalchemy import MetaData, text

    meta = MetaData()
    meta.reflect(bind=db.engine)
    meta.drop_all(bind=db.engine)
    with db.engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))


def _due_date(n: int, args) -> date:
    """Spread the reminded loans evenly through the table; the rest due outside the window."""
    step = args.loans // args.due
    if n % step == 0 and n // step < args.due:
        return DAY + timedelta(days=REMINDED[(n // step) % len(REMINDED)])
    # 20 to 80 days away either side: never read by the job's (due_date, id) range scan.
    offset = 20 + n % 60
    return DAY + timedelta(days=offset if n % 2 else -offset)


def _populate(db, args) -> None:
    """Bulk-insert users, devices, books, copies and loans with executemany, in batches."""
    from sqlalchemy import insert

    from webpush_server.auth.models import User
    from webpush_server.library.models import Book, Copy, Loan
    from webpush_server.push.models import Subscription
    from webpush_server.timeutil import utcnow

    now = utcnow()
    db.session.execute(
        insert(User.__table__),
        [
            {"id": i, "email": f"u{i}@bench.webpush-server.dev", "name": f"u{i}",
             "password_hash": "x", "role": "patron", "created_at": now}
            for i in range(1, args.users + 1)
        ],
    )  # fmt: skip
    subscribed = int(args.users * args.subscribed)
    db.session.execute(
        insert(Subscription.__table__),
        [
            {"user_id": i, "endpoint": f"https://updates.push.services.mozilla.com/wpush/v2/{i}",
             "p256dh": "B" * 87, "auth": "A" * 22, "user_agent": "", "created_at": now,
             "failure_count": 0}
            for i in range(1, subscribed + 1)
        ],
    )  # fmt: skip
    books = -(-args.loans // COPIES_PER_BOOK)
    db.session.execute(
        insert(Book.__table__),
        [
            {"id": b, "title": f"Book {b}", "author": "Bench", "isbn": None, "created_at": now}
            for b in range(1, books + 1)
        ],
    )  # fmt: skip
    copies, loans = [], []
    for n in range(args.loans):
        copies.append({"id": n + 1, "book_id": n // COPIES_PER_BOOK + 1, "status": "loaned",
                       "created_at": now})  # fmt: skip
        loans.append({"id": n + 1, "copy_id": n + 1, "user_id": n % args.users + 1,
                      "checked_out_at": now, "due_date": _due_date(n, args),
                      "renewals": 0})  # fmt: skip
        if len(loans) == 20_000:
            db.session.execute(insert(Copy.__table__), copies)
            db.session.execute(insert(Loan.__table__), loans)
            copies, loans = [], []
    if loans:
        db.session.execute(insert(Copy.__table__), copies)
        db.session.execute(insert(Loan.__table__), loans)
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        from sqlalchemy import text

        # Explicit ids above: move the sequences past them, and give the planner statistics.
        for table in ("user_account", "book", "book_copy", "loan"):
            db.session.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )  # fmt: skip
            )
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))


def _run(app, db, args) -> None:
    """Run the job in a fresh child process (its peak RSS is the job's), then check counts."""
    from redis import Redis
    from rq import Queue
    from sqlalchemy import func, select

    from webpush_server.jobs.models import JobExecution
    from webpush_server.jobs.queues import DELIVERY_QUEUE
    from webpush_server.notifications.models import Delivery, Notification

    env = os.environ | {
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app.config["REDIS_URL"],
        "VAPID_SUBJECT": "mailto:bench@webpush-server.dev",
        "SECRET_KEY": "bench",
        "INSTANCE_PATH": app.instance_path,
    }
    child = subprocess.run(
        [sys.executable, __file__, "--child"], env=env, check=True, capture_output=True, text=True
    )
    result = json.loads(child.stdout.strip().splitlines()[-1])
    elapsed, created = result["seconds"], result["created"]
    queue = Queue(DELIVERY_QUEUE, connection=Redis.from_url(app.config["REDIS_URL"]))
    with app.app_context():
        notifications = db.session.scalar(select(func.count()).select_from(Notification))
        deliveries = db.session.scalar(select(func.count()).select_from(Delivery))
        kinds = dict(
            db.session.execute(
                select(Notification.kind, func.count()).group_by(Notification.kind)
            ).all()
        )
        execution = db.session.scalars(select(JobExecution)).one()
        ran = (execution.status, execution.read, execution.written, execution.skipped)
    jobs = queue.count
    step = args.loans // args.due
    subscribed = int(args.users * args.subscribed)
    expected_deliveries = sum(
        1 for k in range(args.due) if (k * step) % args.users + 1 <= subscribed
    )
    assert created == notifications == args.due, (created, notifications)
    assert deliveries == expected_deliveries, (deliveries, expected_deliveries)
    assert ran == ("completed", args.due, args.due, 0), ran
    batch = app.config["DELIVERY_BATCH_SIZE"]
    assert jobs >= -(-deliveries // batch), (jobs, deliveries)
    rows = notifications + deliveries
    print(f"remind-loans {{\"date\":\"{DAY}\"}}: {notifications:,} notifications "
          f"({', '.join(f'{k} {v:,}' for k, v in sorted(kinds.items()))}) + {deliveries:,} "
          f"deliveries ({jobs:,} delivery jobs enqueued) in {elapsed:.1f} s")  # fmt: skip
    print(f"  execution {execution.id}: {ran[0]}, read {ran[1]:,}, written {ran[2]:,}, "
          f"skipped {ran[3]}")  # fmt: skip
    print(f"  {notifications / elapsed:,.0f} notifications/s, {rows / elapsed:,.0f} rows/s")
    print(f"  job process peak RSS {result['max_rss_mb']:.0f} MB "
          f"(after app start: {result['rss_before_mb']:.0f} MB)")  # fmt: skip


def _peak_rss_mb() -> float:
    """Return this process's peak RSS (VmHWM: unlike ru_maxrss, not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child() -> None:
    """Time the job instance in this process; print JSON with seconds, count and peak RSS."""
    from webpush_server import create_app
    from webpush_server.library.jobs import remind_loans

    app = create_app(instance_path=os.environ["INSTANCE_PATH"])
    with app.app_context():
        before = _peak_rss_mb()
        started = time.perf_counter()
        created = remind_loans(params={"date": DAY.isoformat()})
        seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "seconds": seconds,
                "created": created,
                "rss_before_mb": before,
                "max_rss_mb": _peak_rss_mb(),
            }
        )
    )


if __name__ == "__main__":
    child() if sys.argv[1:] == ["--child"] else main()
