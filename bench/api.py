"""POST /api/v1/notifications: requests/s, p50/p99 latency, notifications recorded per second.

    python bench/api.py                         # SQLite, 1 and 100 recipients, 400 requests each
    python bench/api.py --requests 1000 --concurrency 16 --rounds 5 --phases 100
    python bench/api.py --database-url postgresql://postgres@127.0.0.1:55432/bench  # emptied!

Starts a private redis-server, migrates a fresh SQLite database in a temp dir (or the one
--database-url names: its tables are dropped and recreated), inserts users with one push
device each, creates an API key, and runs gunicorn as the Procfile does (uvicorn, 2 workers).
No RQ worker runs: the figures are the web side (validation, recording the inbox rows and
outbox deliveries in one commit, enqueueing the delivery jobs). Every request must answer 202
with the expected recipient count; the counts in the database are checked at the end. Exits 0
unless something failed, and stops every process it started, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="per phase")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--rounds", type=int, default=3, help="timed runs per phase (medians)")
    parser.add_argument(
        "--phases", default="1,100", help="recipients per request in each phase (≤ --users)"
    )
    args = parser.parse_args()
    try:
        phases = [int(phase) for phase in args.phases.split(",")]
    except ValueError:
        parser.error("--phases: whole numbers separated by commas, e.g. 1,100")
    if args.rounds < 1 or not all(1 <= n <= args.users for n in phases):
        parser.error("--rounds must be at least 1, and each phase from 1 to --users recipients")

    from sqlalchemy import func, insert, select, text

    from webpush_server import create_app, redis_server
    from webpush_server.auth.models import User
    from webpush_server.extensions import db
    from webpush_server.notifications.models import Delivery, Notification
    from webpush_server.push.models import Subscription
    from webpush_server.service_api.keys import create_key
    from webpush_server.timeutil import utcnow

    # SIGTERM unwinds like Ctrl-C, through the finally that stops gunicorn and redis-server.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    tmp = Path(tempfile.mkdtemp(prefix="bench-api-"))
    redis_port, web_port = _free_port(), _free_port()
    redis = redis_server.start(tmp / "redis", port=redis_port)
    url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    settings = {
        "SQLALCHEMY_DATABASE_URI": url,
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "VAPID_SUBJECT": "mailto:bench@webpush-server.dev",
        "SECRET_KEY": "bench",
    }
    app = create_app(settings, instance_path=str(tmp / "instance"))
    web = None
    try:
        with app.app_context():
            from flask_migrate import upgrade

            if url.startswith("postgres"):
                db.session.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
                db.session.commit()
            upgrade(directory=str(ROOT / "migrations"))
            now = utcnow()
            db.session.execute(
                insert(User.__table__),
                [
                    {"email": f"u{i}@bench.webpush-server.dev", "name": f"u{i}",
                     "password_hash": "x", "role": "patron", "created_at": now}
                    for i in range(args.users)
                ],
            )  # fmt: skip
            user_ids = list(db.session.scalars(select(User.id).order_by(User.id)))
            db.session.execute(
                insert(Subscription.__table__),
                [
                    {"user_id": u, "endpoint": f"https://fcm.googleapis.com/fcm/send/{u}",
                     "p256dh": "BAAA", "auth": "AAAA", "user_agent": "", "created_at": now,
                     "failure_count": 0}
                    for u in user_ids
                ],
            )  # fmt: skip
            db.session.commit()
            _, secret = create_key("bench")
            db.session.remove()
        env = os.environ | {
            "DATABASE_URL": url,
            "REDIS_URL": settings["REDIS_URL"],
            "VAPID_SUBJECT": settings["VAPID_SUBJECT"],
            "SECRET_KEY": "bench",
            "INSTANCE_PATH": str(tmp / "instance"),
            "FLASK_SERVICE_API_RATE_LIMIT": "100000000",
            "PYTHONPATH": str(ROOT),
        }
        # As the Procfile's web dyno, access log off (it would measure the terminal).
        argv = [sys.executable, "-m", "gunicorn", "--config",
                "python:webpush_server.ops.gunicorn_conf",
                "--worker-class", "webpush_server.ops.asgi_worker.Worker", "--workers", "2",
                "--threads", "32", "--bind", f"127.0.0.1:{web_port}", "asgi:app"]  # fmt: skip
        log = open(tmp / "web.log", "wb")  # noqa: SIM115 - closed with the process
        web = subprocess.Popen(
            argv, env=env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        _wait_for(f"http://127.0.0.1:{web_port}/login", web)
        load = os.getloadavg()[0]
        print(f"gunicorn + uvicorn, 2 workers, {'PostgreSQL' if args.database_url else 'SQLite'}, "
              f"{args.requests} requests per phase, {args.concurrency} in flight, "
              f"load average {load:.2f}")  # fmt: skip
        expected = 0
        figures = []
        for n in phases:
            recipients = [{"user_id": u} for u in user_ids[:n]]
            _phase(web_port, secret, recipients, args)  # warm-up: connections, caches
            runs = []
            for _ in range(args.rounds):
                cpu_before = _cpu_seconds(web.pid)
                run = _phase(web_port, secret, recipients, args)
                run["cpu_ms"] = (_cpu_seconds(web.pid) - cpu_before) * 1000 / run["count"]
                runs.append(run)
                print(f"  {n} recipient(s), round {len(runs)}: {run['rps']:.1f} requests/s, "
                      f"{run['rps'] * n:.0f} recorded/s")  # fmt: skip
            # Each client sends requests // concurrency per run: the warm-up and the rounds.
            per_run = (args.requests // args.concurrency) * args.concurrency * n
            expected += (1 + args.rounds) * per_run
            # Medians over the rounds: this machine is shared and one run can be 30 % off.
            result = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
            cpu_ms = result["cpu_ms"]
            print(f"{n:>4} recipient{'s' if n > 1 else ' '}: {result['rps']:8.1f} requests/s  "
                  f"p50 {result['p50']:6.1f} ms  p99 {result['p99']:6.1f} ms  "
                  f"{result['rps'] * n:9.0f} notifications recorded/s  "
                  f"web CPU {cpu_ms:5.1f} ms/request  (medians of {args.rounds})")  # fmt: skip
            figures.append(
                f"rps_{n}={result['rps']:.1f} p50_{n}={result['p50']:.1f} "
                f"p99_{n}={result['p99']:.1f} recorded_{n}={result['rps'] * n:.0f} "
                f"cpu_ms_{n}={cpu_ms:.1f}"
            )
        with app.app_context():
            stored = db.session.scalar(select(func.count()).select_from(Notification))
            deliveries = db.session.scalar(select(func.count()).select_from(Delivery))
            db.session.remove()
        if stored != expected or deliveries != expected:
            print(f"FAILED: {stored} notifications, {deliveries} deliveries; want {expected}")
            return 1
        db_name = "postgresql" if url.startswith("postgres") else "sqlite"
        print(f"RESULT {' '.join(figures)} load={load:.2f} db={db_name}")
        return 0
    finally:
        if web is not None:
            _stop(web)
        redis.terminate()
        redis.wait(10)
        with app.app_context():
            db.engine.dispose()
        shutil.rmtree(tmp, ignore_errors=True)


def _exit_on_signal(signum: int, _frame) -> None:
    raise SystemExit(128 + signum)


def _phase(port: int, secret: str, recipients: list[dict], args) -> dict:
    body = json.dumps(
        {"kind": "announcement", "recipients": recipients, "title": "Bench", "body": "x" * 80,
         "url": "/notifications"}
    ).encode()  # fmt: skip
    latencies: list[float] = []
    errors: list[str] = []
    per_thread = args.requests // args.concurrency
    lock = threading.Lock()
    start = threading.Barrier(args.concurrency + 1)

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine = []
        start.wait()
        for _ in range(per_thread):
            began = time.perf_counter()
            conn.request("POST", "/api/v1/notifications", body,
                         {"Authorization": f"Bearer {secret}",
                          "Content-Type": "application/json"})  # fmt: skip
            response = conn.getresponse()
            answer = response.read()
            mine.append(time.perf_counter() - began)
            if response.status != 202 or json.loads(answer)["recipients"] != len(recipients):
                with lock:
                    errors.append(f"{response.status} {answer[:200]!r}")
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(args.concurrency)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise SystemExit(f"FAILED: {len(errors)} bad answers, first: {errors[0]}")
    latencies.sort()
    return {
        "count": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000,
    }


def _cpu_seconds(pid: int) -> float:
    """Return the CPU time (user + system) gunicorn's workers have used so far."""
    import psutil

    total = 0.0
    for worker in psutil.Process(pid).children():
        times = worker.cpu_times()
        total += times.user + times.system
    return total


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise SystemExit("gunicorn exited; see its log")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"gunicorn did not answer {url}") from None
            time.sleep(0.1)  # polling a socket that is not listening yet


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


if __name__ == "__main__":
    sys.exit(main())
