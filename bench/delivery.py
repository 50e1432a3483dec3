"""Push deliveries per second: the real pipeline against a naive pywebpush loop.

Starts a local push sink (nginx answering 201), a private redis-server and a fresh SQLite
database, creates N users with one subscription each, starts W `flask jobs worker` processes,
then records one notice per user and times until every delivery row is `sent`. In the same
run, a plain `pywebpush.webpush()` loop sends M of the same messages to the same sink. Prints
both rates and their ratio; nginx's access log is checked so every figure counts real
requests. Performance lives here: the script prints figures and fails only on errors.

    .venv/bin/python bench/delivery.py [--n 5000] [--workers 2] [--naive 1000] [--batch-size N]
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUBJECT = "mailto:bench@webpush-server.dev"
NGINX_CANDIDATES = (
    "nginx",
    "/usr/sbin/nginx",
    "/usr/local/sbin/nginx",
    "/usr/local/nginx/sbin/nginx",
)
# The log line of every request the sink answers: "<msec> <method> <uri> <status> <length>".
NGINX_CONF = """\
{user}
worker_processes 1;
daemon off;
master_process on;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    log_format bench '$msec $request_method $uri $status $request_length';
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        client_max_body_size 8k;
        location / {{
            access_log {tmp}/access.log bench buffer=256k flush=1s;
            return 201;
        }}
    }}
}}
"""


class BenchError(RuntimeError):
    """Something kept the benchmark from producing an honest figure."""


@dataclass
class Processes:
    """Every process this run started, stopped in reverse order on exit."""

    started: list[tuple[str, subprocess.Popen, int]] = field(default_factory=list)

    def add(self, name: str, process: subprocess.Popen, stop_signal: int = signal.SIGTERM):
        self.started.append((name, process, stop_signal))
        return process

    def stop(self, process: subprocess.Popen, timeout: float = 15.0) -> None:
        for _name, started, stop_signal in self.started:
            if started is process:
                _stop(process, stop_signal, timeout)

    def stop_all(self) -> None:
        for _name, process, stop_signal in reversed(self.started):
            _stop(process, stop_signal, 10.0)


def _stop(process: subprocess.Popen, stop_signal: int, timeout: float) -> None:
    if process.poll() is not None:
        return
    try:
        process.send_signal(stop_signal)
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
    except ProcessLookupError:
        pass


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def cpu_seconds(pid: int) -> float:
    """Return user+system CPU seconds of a live process (Linux /proc), or 0.0."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- the parts ------------------------------------------------------------------------------


def find_nginx() -> str:
    for candidate in NGINX_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    raise BenchError(
        "nginx is not installed: the push sink is nginx. Install it with "
        "`apt-get install nginx-light` (Debian/Ubuntu) and run again."
    )


def start_nginx(tmp: Path, procs: Processes) -> int:
    """Start the push sink: every request gets 201 over keep-alive plain HTTP."""
    binary = find_nginx()
    port = free_port()
    conf = tmp / "nginx.conf"
    user = "user root;" if os.geteuid() == 0 else ""
    conf.write_text(NGINX_CONF.format(user=user, tmp=tmp, port=port))
    error_log = tmp / "nginx-error.log"
    process = procs.add(
        "nginx",
        subprocess.Popen(
            [binary, "-p", str(tmp), "-c", str(conf), "-e", str(error_log)],
            stdout=subprocess.DEVNULL,
            stderr=open(tmp / "nginx-stderr.log", "wb"),  # noqa: SIM115 - closed with the process
            start_new_session=True,
        ),
        signal.SIGQUIT,  # graceful: flushes the buffered access log
    )
    deadline = time.monotonic() + 10
    while True:
        if process.poll() is not None:
            raise BenchError(
                f"nginx exited with {process.returncode}:\n{tail(tmp / 'nginx-stderr.log')}\n"
                f"{tail(error_log)}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return port
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise BenchError("nginx did not accept connections within 10 s")
        time.sleep(0.05)


def mark(port: int, phase: str) -> None:
    """Write a marker line into the sink's log between phases."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            f"GET /__bench/{phase} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode()
        )
        while sock.recv(4096):
            pass


def sink_requests(log: Path) -> dict[str, list[tuple[float, str, str, int, int]]]:
    """Split the sink's access log into phases at the marker requests."""
    phases: dict[str, list] = {}
    current = phases.setdefault("before", [])
    for line in log.read_text().splitlines():
        msec, method, uri, status, length = line.split()
        if uri.startswith("/__bench/"):
            current = phases.setdefault(uri.removeprefix("/__bench/"), [])
            continue
        current.append((float(msec), method, uri, int(status), int(length)))
    return phases


def check_sink(requests: list, expected: int, what: str) -> float:
    """Check the sink saw exactly the expected POSTs, all 201; return its busy seconds."""
    posts = [r for r in requests if r[1] == "POST" and r[3] == 201]
    uris = {r[2] for r in posts}
    if len(requests) != expected or len(posts) != expected or len(uris) != expected:
        raise BenchError(
            f"{what}: the sink saw {len(requests)} requests ({len(posts)} POST 201, "
            f"{len(uris)} distinct endpoints), expected {expected}"
        )
    if min(r[4] for r in posts) < 200:
        raise BenchError(f"{what}: some requests carried no encrypted body")
    return max(r[0] for r in posts) - min(r[0] for r in posts)


def bench_env(args, tmp: Path, redis_url: str, sink_port: int) -> dict[str, str]:
    from cryptography.hazmat.primitives.asymmetric import ec

    vapid = ec.generate_private_key(ec.SECP256R1())
    env = {
        "DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}",
        "REDIS_URL": redis_url,
        # The raw base64url scalar: the form both the app and pywebpush take.
        "VAPID_PRIVATE_KEY": b64url(vapid.private_numbers().private_value.to_bytes(32, "big")),
        "VAPID_SUBJECT": SUBJECT,
        "PUSH_SERVICE_HOSTS": f"127.0.0.1:{sink_port}",
        "SECRET_KEY": "bench",
        "PYTHONPATH": str(ROOT),
    }
    if args.batch_size:
        env["FLASK_DELIVERY_BATCH_SIZE"] = str(args.batch_size)
    return env


def migrate(env: dict[str, str], tmp: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise BenchError(f"`flask db upgrade` failed:\n{result.stdout}{result.stderr}")


def create_subscriptions(app, n: int, sink_port: int) -> None:
    """Bulk-insert n users with one subscription each, sharing one valid receiver key."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    from sqlalchemy import insert

    from webpush_server.auth.models import User
    from webpush_server.extensions import db
    from webpush_server.push.models import Subscription
    from webpush_server.timeutil import utcnow

    receiver = ec.generate_private_key(ec.SECP256R1()).public_key()
    p256dh = b64url(receiver.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))
    auth = b64url(os.urandom(16))
    now = utcnow()
    with app.app_context():
        db.session.execute(
            insert(User.__table__),
            [
                {
                    "id": i,
                    "email": f"reader{i}@bench.webpush-server.dev",
                    "name": f"Reader {i}",
                    "password_hash": "!",
                    "role": "patron",
                    "created_at": now,
                }
                for i in range(1, n + 1)
            ],
        )
        db.session.execute(
            insert(Subscription.__table__),
            [
                {
                    "id": i,
                    "user_id": i,
                    "endpoint": f"http://127.0.0.1:{sink_port}/push/{i}",
                    "p256dh": p256dh,
                    "auth": auth,
                    "user_agent": "bench",
                    "created_at": now,
                    "failure_count": 0,
                }
                for i in range(1, n + 1)
            ],
        )
        db.session.commit()


def start_workers(count: int, env: dict, tmp: Path, procs: Processes, redis_url: str) -> list:
    """Start long-running workers and wait until each has registered with Redis."""
    from redis import Redis
    from rq import Worker

    workers = []
    for i in range(count):
        log = open(tmp / f"worker-{i}.log", "wb")  # noqa: SIM115 - closed with the process
        workers.append(
            procs.add(
                f"worker-{i}",
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "flask",
                        "--app",
                        "wsgi",
                        "jobs",
                        "worker",
                        "--name",
                        f"bench-{os.getpid()}-{i}",
                    ],
                    cwd=ROOT,
                    env={**os.environ, **env},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                ),
            )
        )
    connection = Redis.from_url(redis_url)
    deadline = time.monotonic() + 60
    while len(Worker.all(connection=connection)) < count:
        check_workers(workers, tmp)
        if time.monotonic() > deadline:
            raise BenchError("workers did not register within 60 s")
        time.sleep(0.05)
    return workers


def check_workers(workers: list, tmp: Path) -> None:
    for i, worker in enumerate(workers):
        if worker.poll() is not None:
            raise BenchError(
                f"worker {i} exited with {worker.returncode}:\n{tail(tmp / f'worker-{i}.log')}"
            )


# --- the measurements -----------------------------------------------------------------------


@dataclass
class PipelineResult:
    record_s: float
    total_s: float
    worker_cpu_s: float
    sink_cpu_s: float
    record_cpu_s: float
    sink_busy_s: float = 0.0


def children(pid: int) -> list[int]:
    """Return the child pids of a process (Linux /proc), or []."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def run_pipeline(
    app, users: range, label: str, workers: list, tmp: Path, sink_pid: int
) -> PipelineResult:
    """Record one notice per user and wait until every delivery row is sent."""
    from webpush_server.extensions import db
    from webpush_server.notifications.record import Notice, record_notices

    notices = [
        Notice(
            user_id=i,
            kind="test",
            title="A book you asked for is ready",
            body=f"Reader {i}: 'The Left Hand of Darkness' waits at the front desk until Friday.",
            url="/notifications",
            dedupe_key=f"bench:{label}:{i}",
        )
        for i in users
    ]
    reader = sqlite3.connect(f"file:{tmp / 'bench.db'}?mode=ro", uri=True, isolation_level=None)
    (before,) = reader.execute("SELECT COUNT(*) FROM delivery").fetchone()
    sink_pids = [sink_pid, *children(sink_pid)]
    worker_cpu = sum(cpu_seconds(w.pid) for w in workers)
    sink_cpu = sum(cpu_seconds(pid) for pid in sink_pids)
    deadline = time.monotonic() + max(120.0, len(users) / 50)
    with app.app_context():
        t0, c0 = time.perf_counter(), time.process_time()
        created = record_notices(notices)
        db.session.commit()  # the after-commit hook enqueues the delivery jobs
        t_recorded, c_recorded = time.perf_counter(), time.process_time()
    if len(created) != len(users):
        raise BenchError(f"recorded {len(created)} notifications, expected {len(users)}")
    # An index-only probe every 10 ms: cheap enough not to steal the workers' CPU.
    unfinished = "SELECT 1 FROM delivery WHERE status IN ('pending', 'sending') LIMIT 1"
    while reader.execute(unfinished).fetchone() is not None:
        if time.monotonic() > deadline:
            raise BenchError("deliveries still unfinished at the deadline")
        check_workers(workers, tmp)
        time.sleep(0.01)
    t_end = time.perf_counter()
    worker_cpu = sum(cpu_seconds(w.pid) for w in workers) - worker_cpu
    sink_cpu = sum(cpu_seconds(pid) for pid in sink_pids) - sink_cpu
    statuses = dict(reader.execute("SELECT status, COUNT(*) FROM delivery GROUP BY status"))
    reader.close()
    expected = before + len(users)
    if statuses != {"sent": expected}:
        raise BenchError(f"expected {expected} sent deliveries in all, found {statuses}")
    return PipelineResult(t_recorded - t0, t_end - t0, worker_cpu, sink_cpu, c_recorded - c0)


def warm_up(app, args, batch_size: int, workers: list, tmp: Path, sink_pid: int, redis_url: str):
    """Run small rounds until every worker has done a job: imports, pools and caches warm.

    Long-running workers are the steady state; the naive loop is timed warm as well.
    """
    from redis import Redis
    from rq import Worker

    connection = Redis.from_url(redis_url)
    size = min(args.n, 2 * len(workers) * batch_size)
    for round_ in range(5):
        run_pipeline(app, range(1, size + 1), f"warmup{round_}", workers, tmp, sink_pid)
        done = [w.successful_job_count for w in Worker.all(connection=connection)]
        if len(done) >= len(workers) and min(done) > 0:
            return
    raise BenchError("some worker took no job during the warm-up")


def naive_messages(app, m: int) -> list[tuple[dict, bytes]]:
    """The last m deliveries as pywebpush arguments, with the pipeline's exact payloads."""
    from sqlalchemy import select

    from webpush_server.extensions import db
    from webpush_server.jobs.claim import load
    from webpush_server.jobs.delivery import build_payload
    from webpush_server.notifications.models import Delivery

    with app.app_context():
        ids = db.session.scalars(select(Delivery.id).order_by(Delivery.id.desc()).limit(m)).all()
        return [
            (
                {"endpoint": item.endpoint, "keys": {"p256dh": item.p256dh, "auth": item.auth}},
                build_payload(item, False)[0],
            )
            for item in load(Delivery.id.in_(ids))
        ]


def run_naive(messages: list[tuple[dict, bytes]], private_key: str) -> float:
    """Send each message with pywebpush.webpush(), one after another; return seconds."""
    from pywebpush import webpush

    started = time.perf_counter()
    for info, payload in messages:
        # webpush() writes aud and exp into the claims it is given: a fresh dict each call.
        webpush(info, payload, vapid_private_key=private_key, vapid_claims={"sub": SUBJECT}, ttl=60)
    return time.perf_counter() - started


# --- main -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000, help="subscriptions (default 5000)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument(
        "--naive", type=int, default=1000, help="messages for the pywebpush loop (default 1000)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="DELIVERY_BATCH_SIZE (default: the app's)"
    )
    parser.add_argument(
        "--cold", action="store_true", help="skip the warm-up: time the workers' first jobs too"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="alternating pipeline/naive rounds; medians are compared (default 3)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, DB)")
    args = parser.parse_args(argv)
    if min(args.n, args.workers, args.naive, args.rounds) < 1:
        parser.error("--n, --workers, --naive and --rounds must be at least 1")
    if args.naive > args.n:
        parser.error("--naive cannot exceed --n (it reuses the pipeline's subscriptions)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    # Stop cleanly on SIGTERM as on Ctrl-C: the finally block below ends every child.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    tmp = Path(tempfile.mkdtemp(prefix="webpush-bench-"))
    procs = Processes()
    try:
        return bench(args, tmp, procs)
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        if args.keep:
            print(f"bench: logs kept in {tmp}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        if args.keep:
            print(f"temp dir kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def bench(args: argparse.Namespace, tmp: Path, procs: Processes) -> int:
    from webpush_server import create_app, redis_server

    sink_port = start_nginx(tmp, procs)
    nginx = procs.started[-1][1]
    redis_port = free_port()
    procs.add("redis", redis_server.start(tmp / "redis", port=redis_port))
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    env = bench_env(args, tmp, redis_url, sink_port)
    migrate(env, tmp)
    # This process records the notices with the same configuration the workers read.
    os.environ.update(env)
    app = create_app()
    batch_size = app.config["DELIVERY_BATCH_SIZE"]
    create_subscriptions(app, args.n, sink_port)
    workers = start_workers(args.workers, env, tmp, procs, redis_url)
    if not args.cold:
        mark(sink_port, "warmup")
        warm_up(app, args, batch_size, workers, tmp, nginx.pid, redis_url)

    load = os.getloadavg()[0]
    # Rounds alternate so that both sides see the same noise on this shared machine; the idle
    # workers wait on Redis and take no CPU from the naive loop.
    rounds: list[tuple[PipelineResult, float, float]] = []
    messages: list[tuple[dict, bytes]] = []
    for number in range(args.rounds):
        mark(sink_port, f"pipeline{number}")
        pipeline = run_pipeline(app, range(1, args.n + 1), f"run{number}", workers, tmp, nginx.pid)
        messages = messages or naive_messages(app, args.naive)
        mark(sink_port, f"naive{number}")
        naive_cpu = time.process_time()
        naive_s = run_naive(messages, env["VAPID_PRIVATE_KEY"])
        rounds.append((pipeline, naive_s, time.process_time() - naive_cpu))
    mark(sink_port, "end")
    for worker in workers:
        procs.stop(worker)
    procs.stop(nginx)  # flushes the access log
    phases = sink_requests(tmp / "access.log")
    for number, (pipeline, _, _) in enumerate(rounds):
        pipeline.sink_busy_s = check_sink(
            phases.get(f"pipeline{number}", []), args.n, f"pipeline round {number + 1}"
        )
        check_sink(phases.get(f"naive{number}", []), args.naive, f"naive round {number + 1}")

    n = args.n

    def per(seconds: float, count: int = n) -> str:
        return f"{seconds / count * 1e6:,.0f} µs"

    print(f"subscriptions (N)          {n}")
    print(f"worker processes (W)       {args.workers}  ({os.cpu_count()} CPUs, load {load:.2f})")
    print(f"batch size                 {batch_size}  ({-(-n // batch_size)} jobs)")
    print(f"workers                    {'cold (first jobs included)' if args.cold else 'warm'}")
    print(f"naive loop                 {args.naive} messages a round")
    print()
    print("round  pipeline/s  recording  end to end  worker CPU/delivery  naive/s  CPU/naive ratio")
    pipeline_rates, naive_rates = [], []
    for number, (pipeline, naive_s, naive_cpu) in enumerate(rounds, 1):
        pipeline_rate, naive_rate = n / pipeline.total_s, args.naive / naive_s
        pipeline_rates.append(pipeline_rate)
        naive_rates.append(naive_rate)
        print(
            f"{number:>5}  {pipeline_rate:>10,.0f}  {pipeline.record_s * 1000:>6,.0f} ms"
            f"  {pipeline.total_s * 1000:>7,.0f} ms  {per(pipeline.worker_cpu_s):>19}"
            f"  {naive_rate:>7,.0f}  {per(naive_cpu, args.naive):>9}"
            f"  {pipeline_rate / naive_rate:>4.1f}x"
        )
    pipeline_median = statistics.median(pipeline_rates)
    naive_median = statistics.median(naive_rates)
    print()
    print(f"pipeline (median)          {pipeline_median:,.0f} deliveries/s (recorded → all sent)")
    print(f"naive pywebpush (median)   {naive_median:,.0f} msg/s")
    print(f"ratio                      {pipeline_median / naive_median:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
