"""Chaos: N notifications to N devices through a push service that misbehaves, while we kill.

The local push service (tests/pushservice.py: it verifies every VAPID JWT and decrypts every
message) answers 30% of requests with 500/502/503/429 (half of the 429/503 with
`Retry-After: 1`), lets 5% time out, and answers some 410 and 403. Meanwhile a worker is
SIGKILLed three times (and restarted, as a dyno manager would), the Redis server is SIGKILLed
once and restarted empty, and a recording process is killed between its commit and its
enqueue. The sweeper runs every two seconds (the scheduler runs it every minute).

It reports what was lost (committed but never finished), duplicates (a notification the push
service accepted twice for one device), repeats per kill, how late retries came after the
Retry-After asked for, and the drain time. It exits 0 when nothing was lost, 1 otherwise or on
an error, and leaves no process behind.

    .venv/bin/python bench/chaos.py                 # N=10000
    .venv/bin/python bench/chaos.py --n 500 --worker-kills 1
"""

from __future__ import annotations

import argparse
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402

from tests.pushservice import PushService, Reply  # noqa: E402
from webpush_server import create_app, redis_server  # noqa: E402
from webpush_server.auth.models import User  # noqa: E402
from webpush_server.devrun import flask_command  # noqa: E402
from webpush_server.extensions import db  # noqa: E402
from webpush_server.jobs.sweep import sweep_outbox  # noqa: E402
from webpush_server.notifications.models import Delivery  # noqa: E402
from webpush_server.notifications.record import Notice, record_notices  # noqa: E402
from webpush_server.push.models import Subscription  # noqa: E402
from webpush_server.push.vapid import load_private_key, public_key_b64  # noqa: E402
from webpush_server.timeutil import utcnow  # noqa: E402

FINAL = ("sent", "failed", "gone", "expired", "dead", "skipped")
TIMEOUT_SECONDS = 2.0  # the sender's per-request timeout; a "timeout" answers after 3 s

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
with app.app_context():
    record_notices([Notice(u, "test", "chaos", "body", "/", f"chaos:{u}") for u in users])
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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="webpush-chaos-") as tmp:
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
    with PushService(expected_vapid_key=public_key_b64(load_private_key(pem))) as push:
        push.chaos = policy
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
        env.update(
            INSTANCE_PATH=str(tmp / "instance"),
            DATABASE_URL=f"sqlite:///{tmp / 'chaos.db'}",
            REDIS_URL=f"redis://127.0.0.1:{run.redis_port}/0",
            VAPID_PRIVATE_KEY=pem,
            VAPID_SUBJECT="mailto:chaos@webpush-server.dev",
            PUSH_SERVICE_HOSTS=push.host_port,
            SECRET_KEY="chaos",
            FLASK_PUSH_TIMEOUT_SECONDS=str(TIMEOUT_SECONDS),
            FLASK_PUSH_RETRY_BASE_SECONDS="0.5",
            FLASK_PUSH_RETRY_MAX_SECONDS="4",
            FLASK_PUSH_MAX_ATTEMPTS="10",
            FLASK_DELIVERY_CLAIM_TIMEOUT_SECONDS="6",
            FLASK_SWEEP_GRACE_SECONDS="2",
            PYTHONPATH=str(ROOT),
        )
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

        killed_recorder = users[: max(1, args.n // 10)]
        rest = users[len(killed_recorder) :]
        started = time.monotonic()
        recorder = subprocess.run(
            [sys.executable, "-c", RECORDER, ",".join(map(str, killed_recorder))],
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
                    [Notice(u, "test", "chaos", "body", "/", f"chaos:{u}") for u in chunk]
                )
                db.session.commit()

        kills = kill_plan(args)
        events: list[str] = []
        last_sweep = 0.0
        while True:
            with app.app_context():
                statuses = dict(
                    db.session.execute(
                        select(Delivery.status, func.count()).group_by(Delivery.status)
                    ).all()
                )
                db.session.rollback()
            finished = sum(statuses.get(s, 0) for s in FINAL)
            if finished >= args.n:
                break
            elapsed = time.monotonic() - started
            if elapsed > args.drain_timeout:
                print(f"not drained after {elapsed:.0f} s: {statuses}")
                break
            if kills and finished >= kills[0][0] * args.n:
                _, what = kills.pop(0)
                events.append(f"{elapsed:6.1f} s  {finished:6d} finished  kill {what}")
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
        return report(app, push, policy, args, statuses, events, drained)


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


def report(app, push, policy, args, statuses, events, drained) -> int:
    """Print the figures; return 0 when nothing was lost."""
    with app.app_context():
        from webpush_server.notifications.models import Notification

        notifications = db.session.scalar(select(func.count()).select_from(Notification))
    finished = sum(statuses.get(s, 0) for s in FINAL)
    lost = args.n - finished
    accepted = Counter(
        (p.endpoint, p.notification["id"]) for p in push.received if p.status == 201 and p.plaintext
    )
    duplicates = sum(n - 1 for n in accepted.values())
    kills = args.worker_kills + args.redis_kills + 1
    late = []
    for answers in policy.log.values():
        for (at, _status, retry_after), (next_at, *_rest) in zip(
            answers, answers[1:], strict=False
        ):
            if retry_after is not None:
                late.append(next_at - at - retry_after)
    print(f"chaos: {args.n} notifications to {args.n} devices, seed {args.seed}, in {args.tmp}")
    for line in events:
        print("  " + line)
    print(f"  recorder killed between commit and enqueue: {max(1, args.n // 10)} notifications")
    print(f"  notifications recorded: {notifications}; deliveries by status: {statuses}")
    print(f"  requests answered: {sum(len(a) for a in policy.log.values())}")
    print(f"  lost: {lost}")
    print(f"  duplicates (accepted twice for one device): {duplicates}")
    print(f"  repeats per kill ({kills} kills): {duplicates / kills:.1f}")
    if late:
        late.sort()
        p95 = late[int(0.95 * (len(late) - 1))]
        print(
            f"  retry after Retry-After: {len(late)} retries; late by min {late[0]:.2f} s, "
            f"median {statistics.median(late):.2f} s, p95 {p95:.2f} s, max {late[-1]:.2f} s; "
            f"early: {sum(1 for x in late if x < 0)}"
        )
    print(f"  drain time: {drained:.1f} s")
    print(f"  figures: lost={lost} duplicates={duplicates} drained={drained:.1f}")
    return 0 if lost == 0 and notifications == args.n else 1


if __name__ == "__main__":
    sys.exit(main())
