"""notify-expiring-coupons at scale: rows per second and peak memory.

Creates a fresh SQLite database in a temporary folder (or empties the PostgreSQL database
--database-url names: its tables are dropped and recreated), a private redis-server, N
coupons of which M expire tomorrow (APP_TIMEZONE), owned by users of whom most have a push
subscription, then times `notify_expiring_coupons()` in a child process until every
notification and delivery is recorded and every delivery job is enqueued. Prints seconds,
rows per second and peak memory (the job process's peak RSS, and its RSS after app start),
then one RESULT line. Figures only: it fails (exit 1) only on errors or wrong counts. The
app's instance folder is the temporary one, never the checkout's instance/; every process
it started is stopped on the way out, Ctrl-C and SIGTERM included.

    .venv/bin/python bench/coupons.py [--coupons 1000000] [--expiring 100000] [--users 100000]
    .venv/bin/python bench/coupons.py --database-url postgresql://postgres@127.0.0.1:55432/b
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coupons", type=int, default=1_000_000)
    parser.add_argument("--expiring", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument(
        "--subscribed", type=float, default=0.9, help="share of users with a device"
    )
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    from sqlalchemy import text

    from webpush_server import create_app, redis_server
    from webpush_server.extensions import db

    # SIGTERM unwinds like Ctrl-C, through the finally that stops redis-server.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    tmp = Path(tempfile.mkdtemp(prefix="bench-coupons-"))
    port = _free_port()
    redis = redis_server.start(tmp / "redis", port=port)
    url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    instance = tmp / "instance"
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "REDIS_URL": f"redis://127.0.0.1:{port}/0",
            "VAPID_SUBJECT": "mailto:bench@webpush-server.dev",
            "SECRET_KEY": "bench",
        },
        instance_path=str(instance),
    )
    try:
        print(f"load average {os.getloadavg()[0]:.2f} at the start; "
              f"{'PostgreSQL' if url.startswith('postgres') else 'SQLite'}")  # fmt: skip
        with app.app_context():
            from flask_migrate import upgrade

            if url.startswith("postgres"):
                db.session.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
                db.session.commit()
            upgrade(directory=str(ROOT / "migrations"))
            started = time.perf_counter()
            _populate(db, args)
            print(f"setup: {args.coupons:,} coupons, {args.expiring:,} expiring tomorrow, "
                  f"{args.users:,} users ({args.subscribed:.0%} with a device) "
                  f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
            db.session.remove()
        _run(app, db, args, instance)
        return 0
    except AssertionError as error:
        print(f"FAILED: wrong counts {error}")
        return 1
    finally:
        with app.app_context():
            db.engine.dispose()
        redis.terminate()
        redis.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


def _exit_on_signal(signum: int, _frame) -> None:
    raise SystemExit(128 + signum)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _populate(db, args) -> None:
    """Bulk-insert users, devices, campaigns and coupons (multi-row INSERTs, in batches)."""
    from sqlalchemy import insert

    from webpush_server.auth.models import User
    from webpush_server.database import insert_rows
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
        if len(batch) == 4_000:  # 7 columns: inside SQLite's 32,766 bound values
            insert_rows(Coupon.__table__, batch)
            batch = []
    insert_rows(Coupon.__table__, batch)
    db.session.commit()


def _run(app, db, args, instance: Path) -> None:
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
        "INSTANCE_PATH": str(instance),
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
    postgres = app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgres")
    db_name = "postgresql" if postgres else "sqlite"
    print(f"RESULT seconds={elapsed:.1f} notifications_per_s={notifications / elapsed:.0f} "
          f"rows_per_s={rows / elapsed:.0f} peak_rss_mb={result['max_rss_mb']:.0f} "
          f"start_rss_mb={result['rss_before_mb']:.0f} db={db_name}")  # fmt: skip


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
    if sys.argv[1:] == ["--child"]:
        child()
    else:
        sys.exit(main())
