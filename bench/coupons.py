"""notify-expiring-coupons at scale: rows per second and peak memory.

Creates a fresh SQLite database (or uses --database-url), a private redis-server, N coupons
of which M expire tomorrow (APP_TIMEZONE), owned by users of whom most have a push
subscription, then times `notify_expiring_coupons()` in this process until every
notification and delivery is recorded and every delivery job is enqueued. Prints seconds,
rows per second and peak memory (tracemalloc peak of the run and the process's max RSS).
Figures only: it fails only on errors or wrong counts.

    .venv/bin/python bench/coupons.py [--coupons 1000000] [--expiring 100000] [--users 100000]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coupons", type=int, default=1_000_000)
    parser.add_argument("--expiring", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument(
        "--subscribed", type=float, default=0.9, help="share of users with a device"
    )
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    from webpush_server import create_app, redis_server
    from webpush_server.extensions import db

    tmp = Path(tempfile.mkdtemp(prefix="bench-coupons-"))
    port = _free_port()
    redis = redis_server.start(tmp / "redis", port=port)
    url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "REDIS_URL": f"redis://127.0.0.1:{port}/0",
            "VAPID_SUBJECT": "mailto:bench@webpush-server.dev",
            "SECRET_KEY": "bench",
        }
    )
    try:
        with app.app_context():
            from flask_migrate import upgrade

            upgrade(directory=str(ROOT / "migrations"))
            started = time.perf_counter()
            _populate(db, args)
            print(f"setup: {args.coupons:,} coupons, {args.expiring:,} expiring tomorrow, "
                  f"{args.users:,} users ({args.subscribed:.0%} with a device) "
                  f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
            db.session.remove()
            _run(app, db, args)
    finally:
        redis.terminate()
        redis.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)  # the database and redis dir: nothing left


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _populate(db, args) -> None:
    """Bulk-insert users, devices, campaigns and coupons with executemany, in batches."""
    from sqlalchemy import insert

    from webpush_server.auth.models import User
    from webpush_server.funding.models import Campaign, Coupon
    from webpush_server.funding.services import new_code
    from webpush_server.funding.timeutil import local_date, start_of_day
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
    # A coupon is one per (campaign, user): enough campaigns for coupons / users each.
    campaigns = -(-args.coupons // args.users)
    db.session.execute(
        insert(Campaign.__table__),
        [
            {"id": c, "title": f"Campaign {c}", "description": "", "goal_amount": 1000,
             "deadline": now - timedelta(days=1), "status": "succeeded", "coupon_discount": 10,
             "coupon_valid_days": 30, "created_at": now}
            for c in range(1, campaigns + 1)
        ],
    )  # fmt: skip
    today = local_date(now)
    tomorrow_end = start_of_day(today + timedelta(days=2))
    later = [start_of_day(today + timedelta(days=d)) for d in range(3, 60)]
    stmt = insert(Coupon.__table__)
    batch = []
    for n in range(args.coupons):
        # Spread the expiring coupons evenly through the table, as real data would be.
        expiring = (
            n % (args.coupons // args.expiring) == 0
            and n // (args.coupons // args.expiring) < args.expiring
        )
        batch.append(
            {"code": new_code(), "campaign_id": n // args.users + 1, "user_id": n % args.users + 1,
             "status": "active", "discount": 10,
             "expires_at": tomorrow_end if expiring else later[n % len(later)], "created_at": now}
        )  # fmt: skip
        if len(batch) == 20_000:
            db.session.execute(stmt, batch)
            batch = []
    if batch:
        db.session.execute(stmt, batch)
    db.session.commit()


def _run(app, db, args) -> None:
    """Run the job in a fresh child process (its peak RSS is the job's), then check counts."""
    import json
    import subprocess

    from redis import Redis
    from rq import Queue
    from sqlalchemy import func, select

    from webpush_server.jobs.queues import DELIVERY_QUEUE
    from webpush_server.notifications.models import Delivery, Notification

    env = os.environ | {
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app.config["REDIS_URL"],
        "VAPID_SUBJECT": "mailto:bench@webpush-server.dev",
        "SECRET_KEY": "bench",
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
    jobs = queue.count
    step = args.coupons // args.expiring
    subscribed = int(args.users * args.subscribed)
    expected_deliveries = sum(
        1 for k in range(args.expiring) if (k * step) % args.users + 1 <= subscribed
    )
    assert created == notifications == args.expiring, (created, notifications)
    assert deliveries == expected_deliveries, (deliveries, expected_deliveries)
    batch = app.config["DELIVERY_BATCH_SIZE"]
    assert jobs >= -(-deliveries // batch), (jobs, deliveries)
    rows = notifications + deliveries
    print(f"notify-expiring-coupons: {notifications:,} notifications + {deliveries:,} deliveries "
          f"({jobs:,} delivery jobs enqueued) in {elapsed:.1f} s")  # fmt: skip
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
    """Time the job in this process; print JSON with seconds, count and peak RSS."""
    import json

    from webpush_server import create_app
    from webpush_server.funding.jobs import notify_expiring_coupons

    app = create_app()
    with app.app_context():
        before = _peak_rss_mb()
        started = time.perf_counter()
        created = notify_expiring_coupons()
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
