"""Push deliveries per second: the pipeline, its own sender's ceiling, Node web-push, naive.

Starts a local push sink (nginx answering 201), a private redis-server and a fresh SQLite
database (or empties the PostgreSQL one `--database-url` names), creates N users with one
subscription each, starts W `flask jobs worker` processes, then per round, alternating:

1. pipeline: records one notice per user and times until every delivery row is `sent`;
2. ceiling: the project's own sender (push/sender.py) fed the same N prepared requests, one
   process per core, no database and no queue;
3. node: Node `web-push` 3.6.x (installed from npm into the temp folder), 50 in flight;
4. naive: a plain `pywebpush.webpush()` loop over M of the same messages.

nginx's access log is checked so every figure counts real requests. Performance lives here:
the script prints figures and fails only on errors. The last line is
`RESULT pipeline=<n>/s ceiling=<n>/s node=<n>/s naive=<n>/s pipeline/ceiling=<r>
pipeline/node=<r> db=<sqlite|postgresql>` (medians over the rounds, ratios of the medians).

    .venv/bin/python bench/delivery.py [--n 5000] [--workers 2] [--naive 1000] [--batch-size N]
        [--database-url postgresql://...] [--rounds 3] [--node N] [--profile]
"""

from __future__ import annotations

import argparse
import base64
import json
import multiprocessing
import os
import re
import shutil
import signal
import socket
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
            access_log {tmp}/access.log bench{buffer};
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
        _kill_group(process)
        process.wait(5)
    except ProcessLookupError:
        pass


def _kill_group(process: subprocess.Popen) -> None:
    """SIGKILL a process and, when it leads its own session, every process in it."""
    try:
        if os.getpgid(process.pid) == process.pid:
            os.killpg(process.pid, signal.SIGKILL)
            return
    except ProcessLookupError:
        return
    process.kill()


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


def start_nginx(tmp: Path, procs: Processes, *, buffered: bool = True) -> int:
    """Start the push sink: every request gets 201 over keep-alive plain HTTP.

    buffered=False writes each log line at once, for benches that follow the log live.
    """
    binary = find_nginx()
    port = free_port()
    conf = tmp / "nginx.conf"
    user = "user root;" if os.geteuid() == 0 else ""
    buffer = " buffer=256k flush=1s" if buffered else ""
    conf.write_text(NGINX_CONF.format(user=user, tmp=tmp, port=port, buffer=buffer))
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
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    vapid = ec.generate_private_key(ec.SECP256R1())
    public = vapid.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    env = {
        "DATABASE_URL": args.database_url or f"sqlite:///{tmp / 'bench.db'}",
        "REDIS_URL": redis_url,
        # The raw base64url scalar: the form both the app and pywebpush take.
        "VAPID_PRIVATE_KEY": b64url(vapid.private_numbers().private_value.to_bytes(32, "big")),
        "VAPID_SUBJECT": SUBJECT,
        "PUSH_SERVICE_HOSTS": f"127.0.0.1:{sink_port}",
        "SECRET_KEY": "bench",
        "PYTHONPATH": str(ROOT),
        # Not read by the app: Node web-push wants the public half as well.
        "BENCH_VAPID_PUBLIC_KEY": b64url(public),
    }
    if args.batch_size:
        env["FLASK_DELIVERY_BATCH_SIZE"] = str(args.batch_size)
    return env


def reset_database(url: str) -> None:
    """Empty the PostgreSQL database the bench was given: it is migrated from scratch."""
    from sqlalchemy import create_engine, text

    from webpush_server.config import normalize_database_url

    engine = create_engine(normalize_database_url(url))
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


class Probe:
    """A separate autocommit connection that watches the delivery table."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import create_engine

        from webpush_server.config import normalize_database_url

        self.engine = create_engine(normalize_database_url(url), isolation_level="AUTOCOMMIT")
        self.connection = self.engine.connect()

    def all(self, sql: str) -> list:
        from sqlalchemy import text

        return list(self.connection.execute(text(sql)))

    def close(self) -> None:
        self.connection.close()
        self.engine.dispose()


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
    reader = Probe(app.config["SQLALCHEMY_DATABASE_URI"])
    [(before,)] = reader.all("SELECT COUNT(*) FROM delivery")
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
    while reader.all(unfinished):
        if time.monotonic() > deadline:
            raise BenchError("deliveries still unfinished at the deadline")
        check_workers(workers, tmp)
        time.sleep(0.01)
    t_end = time.perf_counter()
    worker_cpu = sum(cpu_seconds(w.pid) for w in workers) - worker_cpu
    sink_cpu = sum(cpu_seconds(pid) for pid in sink_pids) - sink_cpu
    statuses = dict(reader.all("SELECT status, COUNT(*) FROM delivery GROUP BY status"))
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


def prepared_requests(app, n: int) -> list:
    """The last n deliveries as the pipeline's own PushRequests (payload, TTL, urgency, topic)."""
    from sqlalchemy import select

    from webpush_server.extensions import db
    from webpush_server.jobs.claim import load
    from webpush_server.jobs.delivery import _request
    from webpush_server.notifications.models import Delivery
    from webpush_server.timeutil import utcnow

    with app.app_context():
        ids = db.session.scalars(select(Delivery.id).order_by(Delivery.id.desc()).limit(n)).all()
        now = utcnow()
        requests = [_request(item, now) for item in load(Delivery.id.in_(ids))]
        db.session.rollback()
        return requests


def ceiling_child(env: dict[str, str], requests: list, warm: int, pipe, loop: str) -> None:
    """One ceiling process: the app's Sender on its own loop; warm up, wait for go, send.

    loop "app" is the loop the workers use (push/sender.py's choice), "asyncio" the stdlib's.
    """
    os.environ.update(env)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import asyncio

    from webpush_server import create_app
    from webpush_server.push import host_policy, signer
    from webpush_server.push.policy import Outcome
    from webpush_server.push.sender import Sender, SyncSender, new_event_loop

    app = create_app()
    with app.app_context():
        vapid, policy = signer(), host_policy()
        config = app.config
        sender = SyncSender(
            lambda: Sender(
                vapid,
                policy,
                concurrency_per_origin=config["PUSH_CONCURRENCY_PER_ORIGIN"],
                timeout=config["PUSH_TIMEOUT_SECONDS"],
            ),
            asyncio.new_event_loop if loop == "asyncio" else new_event_loop,
        )
    sender.send(requests[:warm])  # connections open, JWT signed, code paths warm
    pipe.send("ready")
    pipe.recv()
    cpu = time.process_time()
    started = time.monotonic()
    results = sender.send(requests)
    ended = time.monotonic()
    cpu = time.process_time() - cpu
    sent = sum(1 for result in results if result.outcome is Outcome.SENT)
    sender.close()
    pipe.send((started, ended, cpu, sent))


@dataclass
class SideResult:
    seconds: float
    cpu_s: float
    count: int


def run_ceiling(
    requests: list,
    env: dict[str, str],
    processes: int,
    sink_port: int,
    label: str,
    loop: str = "app",
) -> SideResult:
    """Send the prepared requests from one process per core; time go → last response."""
    context = multiprocessing.get_context("spawn")  # no inherited loop, sockets or engine
    shares = [requests[i::processes] for i in range(processes)]
    pipes, children_ = [], []
    mark(sink_port, f"{label}-warm")
    for share in shares:
        parent, child = context.Pipe()
        process = context.Process(
            target=ceiling_child, args=(env, share, 20, child, loop), daemon=True
        )
        process.start()
        pipes.append(parent)
        children_.append(process)
    try:
        for pipe in pipes:
            if not pipe.poll(120) or pipe.recv() != "ready":
                raise BenchError("a ceiling process did not get ready within 120 s")
        mark(sink_port, label)
        for pipe in pipes:
            pipe.send("go")
        reports = []
        for pipe in pipes:
            if not pipe.poll(max(120.0, len(requests) / 50)):
                raise BenchError("a ceiling process did not finish in time")
            reports.append(pipe.recv())
    finally:
        for process in children_:
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join(5)
    sent = sum(report[3] for report in reports)
    if sent != len(requests):
        raise BenchError(f"ceiling: {sent} of {len(requests)} requests sent")
    seconds = max(r[1] for r in reports) - min(r[0] for r in reports)
    return SideResult(seconds, sum(r[2] for r in reports), len(requests))


NODE_SCRIPT = r"""
// Node web-push with 50 requests in flight over keep-alive HTTP/1.1.
// web-push's sendNotification() always uses https; the sink is plain HTTP like the other
// sides, so this does what sendNotification() does: generateRequestDetails() (encryption,
// VAPID JWT, headers) and then the request, on http with a keep-alive agent.
const http = require('http');
const fs = require('fs');
const readline = require('readline');
const webpush = require('web-push');
const spec = JSON.parse(fs.readFileSync(process.argv[2]));
const agent = new http.Agent({ keepAlive: true, maxSockets: 50 });
const vapidDetails = {
  subject: spec.subject, publicKey: spec.publicKey, privateKey: spec.privateKey,
};

function sendOne(message) {
  const details = webpush.generateRequestDetails(
    { endpoint: message.endpoint, keys: { p256dh: message.p256dh, auth: message.auth } },
    Buffer.from(message.payload, 'base64'),
    { TTL: message.ttl, urgency: message.urgency, topic: message.topic, vapidDetails,
      contentEncoding: 'aes128gcm' });
  const url = new URL(details.endpoint);
  return new Promise((resolve, reject) => {
    const request = http.request({ hostname: url.hostname, port: url.port, path: url.pathname,
      method: details.method, headers: details.headers, agent }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode));
    });
    request.on('error', reject);
    request.end(details.body);
  });
}

async function sendAll(messages) {
  let next = 0, sent = 0;
  async function lane() {
    while (next < messages.length) {
      const status = await sendOne(messages[next++]);
      if (status === 201) sent++;
    }
  }
  await Promise.all(Array.from({ length: 50 }, lane));
  return sent;
}

(async () => {
  await sendAll(spec.messages.slice(0, spec.warm));
  process.stdout.write('ready\n');
  const lines = readline.createInterface({ input: process.stdin });
  for await (const _ of lines) break;
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  const sent = await sendAll(spec.messages);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const used = process.cpuUsage(cpu);
  const report = { seconds, sent, cpu: (used.user + used.system) / 1e6 };
  process.stdout.write(JSON.stringify(report) + '\n');
  agent.destroy();
  process.exit(0);  // stdin is still open: leave without waiting for it
})().catch((error) => { console.error(error); process.exit(1); });
"""


def install_node(tmp: Path) -> Path:
    """Install web-push 3.6.x from npm into the temp folder; return the script's folder."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        raise BenchError("node and npm are needed: `apt-get install nodejs npm` (or --no-node)")
    folder = tmp / "node"
    folder.mkdir()
    (folder / "package.json").write_text('{"name": "bench", "private": true}\n')
    result = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--silent", "web-push@~3.6.0"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise BenchError(f"npm install web-push failed:\n{result.stdout}{result.stderr}")
    (folder / "bench.js").write_text(NODE_SCRIPT)
    return folder


def node_spec(folder: Path, requests: list, env: dict[str, str]) -> Path:
    """Write the messages for Node: the ceiling's requests, payloads as base64."""
    spec = {
        "subject": SUBJECT,
        "publicKey": env["BENCH_VAPID_PUBLIC_KEY"],
        "privateKey": env["VAPID_PRIVATE_KEY"],
        "warm": 20,
        "messages": [
            {
                "endpoint": r.endpoint,
                "p256dh": r.p256dh,
                "auth": r.auth,
                "payload": base64.b64encode(r.payload).decode("ascii"),
                "ttl": r.ttl,
                "urgency": r.urgency,
                "topic": r.topic,
            }
            for r in requests
        ],
    }
    path = folder / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def run_node(folder: Path, spec: Path, count: int, sink_port: int, label: str) -> SideResult:
    """Run the Node sender: warm up, then time its sending of every message."""
    mark(sink_port, f"{label}-warm")
    process = subprocess.Popen(
        ["node", str(folder / "bench.js"), str(spec)],
        cwd=folder,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=open(folder / "node-stderr.log", "ab"),  # noqa: SIM115 - closed with the process
        text=True,
    )
    try:
        assert process.stdin and process.stdout
        if process.stdout.readline().strip() != "ready":
            raise BenchError(f"node did not get ready:\n{tail(folder / 'node-stderr.log')}")
        mark(sink_port, label)
        process.stdin.write("go\n")
        process.stdin.close()
        line = process.stdout.readline()
        if process.wait(60) != 0 or not line:
            raise BenchError(f"node failed:\n{tail(folder / 'node-stderr.log')}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
    report = json.loads(line)
    if report["sent"] != count:
        raise BenchError(f"node: {report['sent']} of {count} requests got 201")
    return SideResult(report["seconds"], report["cpu"], count)


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
    parser.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL database to use instead of a temp SQLite file (it is EMPTIED)",
    )
    parser.add_argument(
        "--ceiling-processes",
        type=int,
        default=os.cpu_count() or 1,
        help="processes of the bare-sender ceiling (default: one per core)",
    )
    parser.add_argument(
        "--node", type=int, default=None, help="messages for Node web-push (default: N)"
    )
    parser.add_argument("--no-node", action="store_true", help="skip the Node side")
    parser.add_argument(
        "--compare-loops",
        action="store_true",
        help="also run the ceiling on asyncio's own loop (the app's is uvloop when installed)",
    )
    parser.add_argument(
        "--profile",
        metavar="FILE",
        default=None,
        help="py-spy the workers during the rounds; write collapsed stacks and a summary",
    )
    args = parser.parse_args(argv)
    args.node = args.n if args.node is None else args.node
    if min(args.n, args.workers, args.naive, args.rounds, args.ceiling_processes) < 1:
        parser.error("--n, --workers, --naive, --rounds, --ceiling-processes must be at least 1")
    if args.naive > args.n or args.node > args.n:
        parser.error("--naive and --node cannot exceed --n (they reuse the pipeline's messages)")
    if args.database_url and not args.database_url.startswith(("postgres://", "postgresql")):
        parser.error("--database-url must name a PostgreSQL database")
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

    db_kind = "postgresql" if args.database_url else "sqlite"
    node_folder = None if args.no_node else install_node(tmp)
    sink_port = start_nginx(tmp, procs)
    nginx = procs.started[-1][1]
    redis_port = free_port()
    procs.add("redis", redis_server.start(tmp / "redis", port=redis_port))
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    env = bench_env(args, tmp, redis_url, sink_port)
    if args.database_url:
        reset_database(args.database_url)
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
    spies = start_profilers(args, workers, tmp, procs)

    load = os.getloadavg()[0]
    # Rounds alternate so that every side sees the same noise on this shared machine; the idle
    # workers wait on Redis and take no CPU from the other sides.
    rounds: list[dict] = []
    requests: list = []
    messages: list[tuple[dict, bytes]] = []
    spec = None
    for number in range(args.rounds):
        mark(sink_port, f"pipeline{number}")
        pipeline = run_pipeline(app, range(1, args.n + 1), f"run{number}", workers, tmp, nginx.pid)
        requests = requests or prepared_requests(app, args.n)
        messages = messages or naive_messages(app, args.naive)
        ceiling = run_ceiling(requests, env, args.ceiling_processes, sink_port, f"ceiling{number}")
        stdlib = None
        if args.compare_loops:
            stdlib = run_ceiling(
                requests, env, args.ceiling_processes, sink_port, f"stdlib{number}", "asyncio"
            )
        node = None
        if node_folder is not None:
            spec = spec or node_spec(node_folder, requests[: args.node], env)
            node = run_node(node_folder, spec, args.node, sink_port, f"node{number}")
        mark(sink_port, f"naive{number}")
        naive_cpu = time.process_time()
        naive_s = run_naive(messages, env["VAPID_PRIVATE_KEY"])
        naive = SideResult(naive_s, time.process_time() - naive_cpu, args.naive)
        rounds.append(
            {
                "pipeline": pipeline,
                "ceiling": ceiling,
                "node": node,
                "naive": naive,
                "stdlib": stdlib,
            }
        )
    mark(sink_port, "end")
    worker_cpu = statistics.median(r["pipeline"].worker_cpu_s / args.n * 1e6 for r in rounds)
    profile = stop_profilers(spies, procs, worker_cpu)
    for worker in workers:
        procs.stop(worker)
    procs.stop(nginx)  # flushes the access log
    phases = sink_requests(tmp / "access.log")
    for number, result in enumerate(rounds):
        result["pipeline"].sink_busy_s = check_sink(
            phases.get(f"pipeline{number}", []), args.n, f"pipeline round {number + 1}"
        )
        check_sink(phases.get(f"ceiling{number}", []), args.n, f"ceiling round {number + 1}")
        if result["stdlib"] is not None:
            check_sink(phases.get(f"stdlib{number}", []), args.n, f"stdlib round {number + 1}")
        if result["node"] is not None:
            check_sink(phases.get(f"node{number}", []), args.node, f"node round {number + 1}")
        check_sink(phases.get(f"naive{number}", []), args.naive, f"naive round {number + 1}")

    n = args.n

    def per(seconds: float, count: int = n) -> str:
        return f"{seconds / count * 1e6:,.0f} µs"

    print(f"database                   {db_kind}")
    print(f"subscriptions (N)          {n}")
    print(f"worker processes (W)       {args.workers}  ({os.cpu_count()} CPUs, load {load:.2f})")
    print(f"batch size                 {batch_size}  ({-(-n // batch_size)} jobs)")
    print(f"workers                    {'cold (first jobs included)' if args.cold else 'warm'}")
    print(f"ceiling                    {args.ceiling_processes} processes, push/ sender, N msgs")
    print(f"node web-push              {'skipped' if node_folder is None else args.node} msgs")
    print(f"naive loop                 {args.naive} messages a round")
    print()
    print(
        "round  pipeline/s  recording  worker CPU/del  ceiling/s  CPU/msg  node/s  CPU/msg"
        "  naive/s  CPU/msg  pipe/ceil  pipe/node"
    )
    rates: dict[str, list[float]] = {"pipeline": [], "ceiling": [], "node": [], "naive": []}
    for number, result in enumerate(rounds, 1):
        pipeline, ceiling, node, naive = (
            result[k] for k in ("pipeline", "ceiling", "node", "naive")
        )
        p_rate = n / pipeline.total_s
        c_rate = ceiling.count / ceiling.seconds
        n_rate = node.count / node.seconds if node else float("nan")
        v_rate = naive.count / naive.seconds
        for key, rate in zip(rates, (p_rate, c_rate, n_rate, v_rate), strict=True):
            rates[key].append(rate)
        print(
            f"{number:>5}  {p_rate:>10,.0f}  {pipeline.record_s * 1000:>6,.0f} ms"
            f"  {per(pipeline.worker_cpu_s):>14}  {c_rate:>9,.0f}  {per(ceiling.cpu_s):>7}"
            f"  {n_rate:>6,.0f}  {per(node.cpu_s, node.count) if node else '-':>7}"
            f"  {v_rate:>7,.0f}  {per(naive.cpu_s, naive.count):>7}"
            f"  {p_rate / c_rate:>9.2f}  {p_rate / n_rate:>9.1f}"
        )
    medians = {key: statistics.median(values) for key, values in rates.items()}
    if args.compare_loops:
        app_loop = _loop_name()
        for number, result in enumerate(rounds, 1):
            a, b = result["ceiling"], result["stdlib"]
            print(
                f"ceiling round {number}: {app_loop} {a.count / a.seconds:,.0f}/s"
                f" ({per(a.cpu_s)} CPU/msg), asyncio {b.count / b.seconds:,.0f}/s"
                f" ({per(b.cpu_s)} CPU/msg)"
            )
    print()
    print(f"pipeline (median)          {medians['pipeline']:,.0f} deliveries/s (recorded → sent)")
    print(f"ceiling (median)           {medians['ceiling']:,.0f} msg/s")
    print(f"node web-push (median)     {medians['node']:,.0f} msg/s")
    print(f"naive pywebpush (median)   {medians['naive']:,.0f} msg/s")
    if profile:
        print()
        print(profile)
    print(
        f"RESULT pipeline={medians['pipeline']:.0f}/s ceiling={medians['ceiling']:.0f}/s"
        f" node={medians['node']:.0f}/s naive={medians['naive']:.0f}/s"
        f" pipeline/ceiling={medians['pipeline'] / medians['ceiling']:.2f}"
        f" pipeline/node={medians['pipeline'] / medians['node']:.1f} db={db_kind}"
    )
    return 0


def _loop_name() -> str:
    from webpush_server.push.sender import new_event_loop

    loop = new_event_loop()
    name = type(loop).__module__.split(".")[0]
    loop.close()
    return name


def start_profilers(args, workers: list, tmp: Path, procs: Processes) -> list:
    """Attach py-spy to every worker (idle threads are not sampled), when --profile asks."""
    if not args.profile:
        return []
    binary = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(binary).exists():
        raise BenchError("--profile needs py-spy: pip install py-spy")
    spies = []
    for i, worker in enumerate(workers):
        out = tmp / f"profile-{i}.txt"
        spy = procs.add(
            f"py-spy-{i}",
            subprocess.Popen(
                [binary, "record", "--pid", str(worker.pid), "--rate", "250", "--format", "raw",
                 "--output", str(out), "--nonblocking"],
                stdout=subprocess.DEVNULL,
                stderr=open(tmp / f"py-spy-{i}.log", "wb"),  # noqa: SIM115 - closed with it
            ),
            signal.SIGINT,
        )  # fmt: skip
        spies.append((spy, out, args.profile))
    time.sleep(1.0)  # py-spy attaches before the first timed round
    return spies


# Where a sample's time goes: the innermost frame whose file matches, in this order.
_AREAS = (
    ("encryption (RFC 8291: ECDH, HKDF, AES-GCM)", ("push/crypto.py", "cryptography/")),
    ("VAPID JWT", ("push/vapid.py", "py_vapid/")),
    ("database (SQLAlchemy + driver)", ("sqlalchemy/", "sqlite3/", "psycopg/")),
    ("Redis and RQ", ("redis/", "rq/", "rq_scheduler/")),
    ("HTTP client and event loop", ("push/http.py", "asyncio/", "uvloop/", "socket.py")),
    ("sender (push/sender.py)", ("push/sender.py",)),
    ("payload JSON", ("notifications/payload.py", "json/")),
    ("jobs (claim, delivery, outcomes, lease)", ("webpush_server/jobs/",)),
    ("logging", ("logging/", "webpush_server/logs.py")),
)
# The frames every job sits under (CLI, click, the RQ work loop): not worth listing.
_OUTER = ("_run_module_as_main", "_run_code", "<module>", "main (", "Command.", "Group.",
          "Context.", "pass_context", "with_appcontext", "worker (", "BaseWorker.work")  # fmt: skip


def _area(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, patterns in _AREAS:
            if any(pattern in frame for pattern in patterns):
                return name
    return "other"


def stop_profilers(spies: list, procs: Processes, worker_cpu_per_delivery_us: float) -> str:
    """Stop py-spy, merge the workers' stacks into one file, and summarise where CPU goes."""
    if not spies:
        return ""
    stacks: dict[str, int] = {}
    for spy, out, _target in spies:
        procs.stop(spy, timeout=30)
        for line in out.read_text().splitlines() if out.exists() else []:
            stack, _, count = line.rpartition(" ")
            stacks[stack] = stacks.get(stack, 0) + int(count)
    target = Path(spies[0][2])
    target.write_text("".join(f"{k} {v}\n" for k, v in stacks.items()))
    total = sum(stacks.values()) or 1
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    areas: dict[str, int] = {}
    for stack, count in stacks.items():
        # Functions, not lines: "encrypt (webpush_server/push/crypto.py:46)" → "...crypto.py)".
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
        area = _area(frames)
        areas[area] = areas.get(area, 0) + count
    cpu = worker_cpu_per_delivery_us
    lines = [f"profile ({total} samples in the workers, collapsed stacks in {target})"]
    lines.append(f"  by area (innermost frame that names one; of {cpu:,.0f} µs CPU per delivery):")
    for area, count in sorted(areas.items(), key=lambda kv: -kv[1]):
        lines.append(f"    {count / total:6.1%}  {count / total * cpu:6,.0f} µs  {area}")
    lines.append("  own time, by function:")
    for frame, count in sorted(own.items(), key=lambda kv: -kv[1])[:20]:
        lines.append(f"    {count / total:6.1%}  {count / total * cpu:6,.0f} µs  {frame}")
    lines.append("  including callees, from the job down:")
    for frame, count in sorted(inclusive.items(), key=lambda kv: -kv[1]):
        if count / total >= 0.02 and not frame.startswith(_OUTER):
            lines.append(f"    {count / total:6.1%}  {count / total * cpu:6,.0f} µs  {frame}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
