"""Chaos: N notifications to N devices through a push service that misbehaves, while we kill.

The local push service (tests/pushservice.py: it verifies every VAPID JWT and decrypts every
message) answers 30% of requests with 500/502/503/429 (half of the 429/503 with
`Retry-After: 1`), lets 5% time out, and answers some 410 and 403. Meanwhile a worker is
SIGKILLed three times (and restarted, as a dyno manager would), the Redis server is SIGKILLed
once and restarted empty, and a recording process is killed between its commit and its
enqueue. The sweeper runs every two seconds (the scheduler runs it every minute).

It reports what was lost (committed but never finished), duplicates (a notification the push
service accepted twice for one device) and whether every copy carried its notification's tag
and Topic, repeats per kill, retries left pending past their due time, whether 410s removed
their device and 403s kept theirs, how late retries came after the Retry-After asked for, and
the drain time. It exits 0 when nothing was lost, 1 otherwise or on an error, and leaves no
process behind.

    .venv/bin/python bench/chaos.py                 # N=10000, SQLite
    .venv/bin/python bench/chaos.py --n 500 --worker-kills 1
    .venv/bin/python bench/chaos.py --database-url postgresql://postgres@127.0.0.1:55432/chaos
                                                    # that database is emptied first!
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from delivery import reset_database  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402

from tests.mailserver import MailServer  # noqa: E402
from tests.pushservice import PushService, Reply  # noqa: E402
from webpush_server import create_app, redis_server  # noqa: E402
from webpush_server.auth.models import User  # noqa: E402
from webpush_server.devrun import flask_command  # noqa: E402
from webpush_server.extensions import db  # noqa: E402
from webpush_server.jobs.delivery import notification_topic  # noqa: E402
from webpush_server.jobs.sweep import sweep_outbox  # noqa: E402
from webpush_server.notifications.models import Delivery, Notification  # noqa: E402
from webpush_server.notifications.record import Notice, record_notices  # noqa: E402
from webpush_server.push.models import Subscription  # noqa: E402
from webpush_server.push.vapid import load_private_key, public_key_b64  # noqa: E402
from webpush_server.timeutil import utcnow  # noqa: E402

FINAL = ("sent", "failed", "gone", "expired", "dead", "skipped")
TIMEOUT_SECONDS = 2.0  # the sender's per-request timeout; a "timeout" answers after 3 s
OVERDUE_SECONDS = 5.0  # a retry pending this long past its due time counts as left behind

# Run by the recorder that is killed between its commit and its enqueue.
RECORDER = """
import os, signal, sys
from webpush_server import create_app
from webpush_server.extensions import db
from webpush_server.notifications.outbox import hooks
from webpush_server.notifications.record import Notice, record_notices
app = create_app()
# The commit has happened when the outbox hands over: die right there, before any enqueue.
hooks(app).enqueue = lambda ids: os.kill(os.getpid(), signal.SIGKILL)
users = [int(u) for u in sys.argv[1].split(",")]
mailed = {int(u) for u in sys.argv[2].split(",") if u}
with app.app_context():
    kinds = {u: "campaign_succeeded" if u in mailed else "test" for u in users}
    record_notices([Notice(u, kinds[u], "chaos", "body", "/", f"chaos:{u}") for u in users])
    db.session.commit()
"""


class Chaos:
    """The answers of a misbehaving push service, and a log of each one."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.log: dict[str, list[tuple[float, int, float | None]]] = defaultdict(list)

    def __call__(self, endpoint: str) -> Reply | None:
        with self.lock:
            roll = self.rng.random()
        now = time.time()
        reply: Reply | None
        if roll < 0.05:
            reply = Reply(201, delay=TIMEOUT_SECONDS + 1)  # the sender gives up first
        elif roll < 0.06:
            reply = Reply(410)
        elif roll < 0.065:
            reply = Reply(403, body="BadJwtToken")
        elif roll < 0.365:
            status = (500, 502, 503, 429)[int((roll - 0.065) / 0.075)]
            with_after = status in (429, 503) and int(roll * 1000) % 2 == 0
            reply = Reply(status, {"Retry-After": "1"} if with_after else {})
        else:
            reply = None
        status = 0 if reply is not None and reply.delay else (reply.status if reply else 201)
        retry_after = 1.0 if reply is not None and "Retry-After" in reply.headers else None
        with self.lock:
            self.log[endpoint].append((now, status, retry_after))
        return reply


class Run:
    """Every process of one chaos run, stopped on exit whatever happens."""

    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.workers: list[subprocess.Popen] = []
        self.redis: subprocess.Popen | None = None
        self.redis_port = 0
        self.generation = 0
        self.logs: list = []
        self.kills: list[tuple[float, str]] = []  # (time.time(), what)

    # -- parts -------------------------------------------------------------------------------

    def start_redis(self) -> None:
        self.redis = redis_server.start(self.tmp / "redis", port=self.redis_port)

    def start_worker(self, env: dict) -> subprocess.Popen:
        self.generation += 1
        log = open(self.tmp / f"worker-{self.generation}.log", "wb")  # noqa: SIM115
        self.logs.append(log)
        worker = subprocess.Popen(
            flask_command("jobs", "worker", "--name", f"chaos-{self.generation}"),
            env=env,
            cwd=self.tmp,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.workers.append(worker)
        return worker

    def kill(self, process: subprocess.Popen) -> None:
        """SIGKILL a process and its group (a worker's scheduler child too)."""
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(10)

    def stop(self) -> None:
        for process in [*self.workers, *([self.redis] if self.redis else [])]:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                    process.wait(10)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    self.kill(process)
        for log in self.logs:
            log.close()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="notifications, one device each")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-kills", type=int, default=3)
    parser.add_argument("--redis-kills", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--drain-timeout", type=float, default=900, help="seconds")
    parser.add_argument(
        "--database-url", default=None, help="PostgreSQL to run on (emptied first!); else SQLite"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (worker logs)")
    parser.add_argument(
        "--email-share", type=float, default=0.2, help="recipients also e-mailed (0 to 1)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    folder = (
        contextlib.nullcontext(tempfile.mkdtemp(prefix="webpush-chaos-"))
        if args.keep
        else tempfile.TemporaryDirectory(prefix="webpush-chaos-")
    )
    with folder as tmp:
        args.tmp = tmp
        run = Run(args, Path(tmp))
        try:
            return chaos(args, run)
        finally:
            run.stop()


def chaos(args: argparse.Namespace, run: Run) -> int:
    tmp = run.tmp
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    run.redis_port = free_port()
    run.start_redis()
    policy = Chaos(args.seed)
    with (
        PushService(expected_vapid_key=public_key_b64(load_private_key(pem))) as push,
        MailServer() as mail,
    ):
        push.chaos = policy
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
        env.update(
            INSTANCE_PATH=str(tmp / "instance"),
            DATABASE_URL=args.database_url or f"sqlite:///{tmp / 'chaos.db'}",
            REDIS_URL=f"redis://127.0.0.1:{run.redis_port}/0",
            VAPID_PRIVATE_KEY=pem,
            VAPID_SUBJECT="mailto:chaos@webpush-server.dev",
            PUSH_SERVICE_HOSTS=push.host_port,
            MAIL_URL=mail.url,
            PUBLIC_URL="http://chaos.webpush-server.dev",
            SECRET_KEY="chaos",
            FLASK_PUSH_TIMEOUT_SECONDS=str(TIMEOUT_SECONDS),
            FLASK_PUSH_RETRY_BASE_SECONDS="0.5",
            FLASK_PUSH_RETRY_MAX_SECONDS="4",
            FLASK_PUSH_MAX_ATTEMPTS="10",
            FLASK_DELIVERY_CLAIM_TIMEOUT_SECONDS="6",
            FLASK_SWEEP_GRACE_SECONDS="2",
            PYTHONPATH=str(ROOT),
        )
        print(f"load average {os.getloadavg()[0]:.2f} at the start; "
              f"{'PostgreSQL' if args.database_url else 'SQLite'}", flush=True)  # fmt: skip
        if args.database_url:
            reset_database(args.database_url)
        upgrade = subprocess.run(
            flask_command("db", "upgrade", "--directory", str(ROOT / "migrations")),
            env=env,
            cwd=tmp,
            capture_output=True,
        )
        if upgrade.returncode != 0:
            raise SystemExit(f"db upgrade failed: {upgrade.stderr.decode()[-2000:]}")
        os.environ.update(env)
        app = create_app()
        users = add_devices(app, push, args.n)
        for _ in range(args.workers):
            run.start_worker(env)

        # A share of the recipients get the notification by e-mail too (a kind that mails by
        # default): a few addresses refused for good (550), a few for a while (451).
        step = round(1 / args.email_share) if args.email_share > 0 else 0
        mailed = set(users[::step]) if step else set()
        expected = args.n + len(mailed)
        held_back = []
        addresses = {user_id: f"c{n}@chaos.webpush-server.dev" for n, user_id in enumerate(users)}
        for n, user_id in enumerate(sorted(mailed)):
            if n % 50 == 7:
                mail.refuse(addresses[user_id], 550)
            elif n % 20 == 3:
                mail.refuse(addresses[user_id], 451)
                held_back.append(addresses[user_id])
        args.refused = (len(held_back), sum(1 for n in range(len(mailed)) if n % 50 == 7))

        killed_recorder = users[: max(1, args.n // 10)]
        rest = users[len(killed_recorder) :]
        started = time.monotonic()
        recorder = subprocess.run(
            [
                sys.executable,
                "-c",
                RECORDER,
                ",".join(map(str, killed_recorder)),
                ",".join(str(u) for u in killed_recorder if u in mailed),
            ],
            env=env,
            cwd=tmp,
            capture_output=True,
        )
        if recorder.returncode != -signal.SIGKILL:
            raise SystemExit(f"the recorder was not killed: {recorder.stderr.decode()[-2000:]}")
        with app.app_context():
            for start in range(0, len(rest), 1000):
                chunk = rest[start : start + 1000]
                record_notices(
                    [
                        Notice(u, kind_of(u, mailed), "chaos", "body", "/", f"chaos:{u}")
                        for u in chunk
                    ]
                )
                db.session.commit()

        kills = kill_plan(args)
        events: list[str] = []
        last_sweep = 0.0
        overdue = Overdue()
        while True:
            with app.app_context():
                statuses = dict(
                    db.session.execute(
                        select(Delivery.status, func.count()).group_by(Delivery.status)
                    ).all()
                )
                overdue.sample(time.monotonic() - started)
                db.session.rollback()
            finished = sum(statuses.get(s, 0) for s in FINAL)
            if finished >= expected:
                break
            if held_back and finished >= 0.3 * expected:
                for address in held_back:  # the mail server takes them from now on
                    mail.allow(address)
                held_back = []
            elapsed = time.monotonic() - started
            if elapsed > args.drain_timeout:
                print(f"not drained after {elapsed:.0f} s: {statuses}")
                break
            if kills and finished >= kills[0][0] * expected:
                _, what = kills.pop(0)
                events.append(f"{elapsed:6.1f} s  {finished:6d} finished  kill {what}")
                run.kills.append((time.time(), what))
                if what == "redis":
                    assert run.redis is not None
                    run.kill(run.redis)
                    run.start_redis()
                else:
                    victim = next(w for w in run.workers if w.poll() is None)
                    run.kill(victim)
            # A dead worker comes back, as a dyno manager would bring it.
            for worker in [w for w in run.workers if w.poll() is not None]:
                run.workers.remove(worker)
                run.start_worker(env)
            if time.monotonic() - last_sweep >= 2:
                try:
                    with app.app_context():
                        sweep_outbox()
                except Exception as exc:  # Redis restarting: the next sweep catches up
                    events.append(f"{elapsed:6.1f} s  sweep failed: {type(exc).__name__}")
                last_sweep = time.monotonic()
            time.sleep(0.25)  # a monitoring interval, not a wait for a condition
        drained = time.monotonic() - started
        with app.app_context():
            overdue.sample(drained)
            db.session.rollback()
        return report(
            app, push, mail, policy, args, statuses, events, drained, run.kills, overdue, expected
        )


def kind_of(user_id: int, mailed: set[int]) -> str:
    """Return the kind a recipient is told: one that is also e-mailed, or push only."""
    return "campaign_succeeded" if user_id in mailed else "test"


class Overdue:
    """Retries left pending past their due time, sampled at every look at the table."""

    def __init__(self) -> None:
        self.most = 0
        self.most_at = 0.0
        self.last = 0

    def sample(self, elapsed: float) -> None:
        cutoff = utcnow() - timedelta(seconds=OVERDUE_SECONDS)
        self.last = db.session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.status == "pending", Delivery.next_attempt_at < cutoff)
        )
        if self.last > self.most:
            self.most, self.most_at = self.last, elapsed


def kill_plan(args: argparse.Namespace) -> list[tuple[float, str]]:
    """Return (fraction finished, what) in order: workers at 15/35/55/…%, Redis at 45%."""
    plan = [(0.15 + 0.2 * k, "worker") for k in range(args.worker_kills)]
    plan += [(0.45 + 0.1 * k, "redis") for k in range(args.redis_kills)]
    return sorted(plan)


def add_devices(app, push: PushService, n: int) -> list[int]:
    """Insert n users with one device each, known to the push service; return the user ids."""
    with app.app_context():
        now = utcnow()
        db.session.execute(
            insert(User.__table__),
            [
                {
                    "email": f"c{i}@chaos.webpush-server.dev",
                    "name": f"c{i}",
                    "password_hash": "x",
                    "role": "patron",
                    "created_at": now,
                }
                for i in range(n)
            ],
        )
        users = list(db.session.scalars(select(User.id).order_by(User.id)))
        rows = []
        for user_id in users:
            device = push.new_subscription()
            rows.append(
                {
                    "user_id": user_id,
                    "endpoint": device.endpoint,
                    "p256dh": device.p256dh,
                    "auth": device.auth,
                    "user_agent": "",
                    "created_at": now,
                    "failure_count": 0,
                }
            )
        db.session.execute(insert(Subscription.__table__), rows)
        db.session.commit()
        return users


def report(app, push, mail, policy, args, statuses, events, drained, kills, overdue, expected):
    """Print the figures; return 0 when nothing was lost."""
    with app.app_context():
        emails = dict(
            db.session.execute(
                select(Delivery.status, func.count())
                .where(Delivery.channel == "email")
                .group_by(Delivery.status)
            ).all()
        )
        sent_emails = set(
            db.session.scalars(
                select(Delivery.id).where(Delivery.channel == "email", Delivery.status == "sent")
            )
        )
        notifications = {
            row.id: (row.tag, row.topic or notification_topic(row.id))
            for row in db.session.execute(
                select(Notification.id, Notification.tag, Notification.topic)
            )
        }
        devices = set(db.session.scalars(select(Subscription.endpoint)))
    finished = sum(statuses.get(s, 0) for s in FINAL)
    lost = expected - finished
    email_rows = sum(emails.values())
    email_lost = email_rows - sum(emails.get(s, 0) for s in FINAL)
    # Message-ID <delivery-ID@…>: one per delivery, a repeat keeps it.
    received = Counter(
        int(m["Message-ID"].split("-", 1)[1].split("@", 1)[0]) for m in list(mail.received)
    )
    email_duplicates = sum(n - 1 for n in received.values())
    sent_not_received = len(sent_emails - set(received))
    accepted = [p for p in push.received if p.status == 201 and p.plaintext]
    copies = Counter((p.endpoint, p.notification["id"]) for p in accepted)
    duplicates = sum(n - 1 for n in copies.values())
    # Every copy, the repeats included, carries its notification's tag and Topic: the device
    # shows one, and the push service replaces an undelivered first copy.
    mismatched = sum(
        1
        for p in accepted
        if (p.notification.get("tag"), p.topic) != notifications.get(p.notification["id"])
    )
    repeated_ok = sum(
        1
        for p in accepted
        if copies[(p.endpoint, p.notification["id"])] > 1
        and (p.notification.get("tag"), p.topic) == notifications.get(p.notification["id"])
    )
    kill_count = args.worker_kills + args.redis_kills + 1
    # A 410 answered to a worker killed before it wrote it is sent again, and may then be
    # taken: the device is removed when its last answer was a 410.
    got_410 = {e for e, a in policy.log.items() if a[-1][1] == 410}
    got_403 = {e for e, a in policy.log.items() if any(status == 403 for _at, status, _ra in a)}
    # A retry whose wait spans a worker kill may have been held by the killed worker (its
    # lane, or its claim): the sweeper brings it, later. Counted apart, not hidden.
    worker_kills = [at for at, what in kills if what == "worker"]
    late: list[float] = []
    late_across_kill: list[float] = []
    for answers in policy.log.values():
        for (at, _status, retry_after), (next_at, *_rest) in zip(
            answers, answers[1:], strict=False
        ):
            if retry_after is not None:
                spans = any(at <= k <= next_at for k in worker_kills)
                (late_across_kill if spans else late).append(next_at - at - retry_after)
    print(f"chaos: {args.n} notifications to {args.n} devices, seed {args.seed}, in {args.tmp}")
    for line in events:
        print("  " + line)
    print(f"  recorder killed between commit and enqueue: {max(1, args.n // 10)} notifications")
    print(f"  notifications recorded: {len(notifications)}; deliveries by status: {statuses}")
    print(f"  requests answered: {sum(len(a) for a in policy.log.values())}")
    print(f"  lost: {lost} (of {expected} deliveries)")
    print(
        f"  e-mail: {email_rows} deliveries by status {emails}; lost {email_lost}; messages "
        f"received {sum(received.values())}, repeated {email_duplicates}, sent but not "
        f"received {sent_not_received}; addresses refused a while (451): {args.refused[0]}, "
        f"for good (550): {args.refused[1]}"
    )
    print(f"  duplicates (accepted twice for one device): {duplicates}")
    print(f"  repeats per kill ({kill_count} kills): {duplicates / kill_count:.1f}")
    print(
        f"  tag and Topic: {len(accepted) - mismatched} of {len(accepted)} accepted pushes carry "
        f"their notification's (repeated copies: {repeated_ok}); mismatched: {mismatched}"
    )
    print(
        f"  retries pending > {OVERDUE_SECONDS:.0f} s past due: at most {overdue.most} "
        f"(at {overdue.most_at:.1f} s), {overdue.last} at the end"
    )
    print(
        f"  410 last: {len(got_410)} devices, {len(got_410 & devices)} still stored (removed: "
        f"{len(got_410 - devices)}); 403: {len(got_403)} devices, {len(got_403 & devices)} kept"
    )
    for name, values in (("", late), (" across a worker kill", late_across_kill)):
        if values:
            values.sort()
            p95 = values[int(0.95 * (len(values) - 1))]
            print(
                f"  retry after Retry-After{name}: {len(values)} retries; late by min "
                f"{values[0]:.2f} s, median {statistics.median(values):.2f} s, p95 {p95:.2f} s, "
                f"max {values[-1]:.2f} s; early: {sum(1 for x in values if x < 0)}"
            )
    every = sorted(late + late_across_kill)
    if every:
        p95 = every[int(0.95 * (len(every) - 1))]
        print(
            f"  retry after Retry-After, all: {len(every)} retries; median "
            f"{statistics.median(every):.2f} s, p95 {p95:.2f} s"
        )
    print(f"  drain time: {drained:.1f} s")
    print(
        f"  figures: lost={lost} duplicates={duplicates} mismatched={mismatched} "
        f"emails={email_rows} email_lost={email_lost} email_unreceived={sent_not_received} "
        f"overdue={overdue.last} gone_kept={len(got_410 & devices)} "
        f"forbidden_removed={len(got_403 - devices)} drained={drained:.1f}"
    )
    ok = lost == 0 and len(notifications) == args.n and mismatched == 0
    ok = ok and email_lost == 0 and sent_not_received == 0 and email_rows == expected - args.n
    return 0 if ok and not got_410 & devices and not got_403 - devices else 1


if __name__ == "__main__":
    sys.exit(main())
