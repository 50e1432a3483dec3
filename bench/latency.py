"""Event to device: from a librarian's check-in or an API trigger to the push at the sink,
and to an open WebSocket tab.

Starts a push sink (nginx answering 201, unbuffered log), a private redis-server, a fresh
SQLite database (or empties the PostgreSQL one `--database-url` names), one gunicorn web
process as the Procfile runs it and one `flask jobs worker`. Then, one sample at a time on an
otherwise idle system (nothing of the bench runs between samples):

- check-in: a librarian's `POST /api/library/copies/<id>/return` for a copy that a patron
  holds a hold on; timed from just before the request to the patron's `book_available` push
  arriving at the sink (nginx's `$msec` log stamp of that request);
- api: `POST /api/v1/notifications` (an API key, one recipient with one device and one open
  WebSocket tab); timed to the push arriving at the sink;
- ws: the same API trigger, timed to the message arriving on the recipient's open WebSocket.

Prints p50/p90/p99/max per path and ends with one line
`RESULT checkin_p50=<ms> checkin_p99=<ms> api_p50=<ms> api_p99=<ms> ws_p50=<ms> ws_p99=<ms>
db=<sqlite|postgresql>`. Figures only: it fails on errors, never on the times.

    .venv/bin/python bench/latency.py [--samples 200] [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
import websocket

# This checkout's package first (the venv may hold another checkout's), then delivery.py.
sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]
import delivery  # noqa: E402
from delivery import BenchError, Processes, free_port, tail  # noqa: E402

ROOT = delivery.ROOT
PASSWORD = "bench-password-1234"


def percentile(values: list[float], p: float) -> float:
    """Return the p-th percentile (nearest rank) of values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


class SinkLog:
    """Follows the sink's (unbuffered) access log: arrival stamps of POSTs by path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.arrivals: dict[str, list[float]] = {}

    def _read(self) -> None:
        try:
            with self.path.open("rb") as log:
                log.seek(self.offset)
                data = log.read()
        except FileNotFoundError:
            return
        complete = data.rfind(b"\n") + 1  # a line nginx is still writing waits for next time
        self.offset += complete
        for line in data[:complete].decode().splitlines():
            msec, method, uri, status, _length = line.split()
            if method == "POST" and status == "201":
                self.arrivals.setdefault(uri, []).append(float(msec))

    def wait(self, uri: str, count: int, timeout: float = 30.0) -> float:
        """Return the stamp of the count-th POST to uri, waiting for it to arrive."""
        deadline = time.monotonic() + timeout
        while len(self.arrivals.get(uri, [])) < count:
            if time.monotonic() > deadline:
                raise BenchError(f"push {count} to {uri} did not arrive within {timeout} s")
            time.sleep(0.001)  # polling a file nginx appends to
            self._read()
        return self.arrivals[uri][count - 1]


class Tab:
    """One open WebSocket tab; wall-clock arrival time of each notification by title."""

    def __init__(self, url: str, cookies: dict[str, str]) -> None:
        cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
        self.ws = websocket.create_connection(
            url.replace("http://", "ws://") + "/ws", cookie=cookie, origin=url, timeout=30
        )
        first = json.loads(self.ws.recv())
        if first.get("type") != "unread_count":
            raise BenchError(f"the WebSocket's first message was {first}")
        self.arrivals: dict[str, float] = {}
        self.ready = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while True:
            try:
                text = self.ws.recv()
            except (websocket.WebSocketException, OSError):
                return
            arrived = time.time()
            data = json.loads(text) if text else {}
            if data.get("type") == "notification":
                with self.ready:
                    self.arrivals[data["notification"]["title"]] = arrived
                    self.ready.notify_all()

    def wait(self, title: str, timeout: float = 30.0) -> float:
        with self.ready:
            if not self.ready.wait_for(lambda: title in self.arrivals, timeout):
                raise BenchError(f"the WebSocket never got {title!r}")
            return self.arrivals[title]

    def close(self) -> None:
        self.ws.close()
        self.thread.join(5)


def setup(app, samples: int, sink_port: int) -> dict:
    """Create a librarian, `samples` patrons each waiting on a lent-out book, an API user."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from webpush_server.auth.models import User
    from webpush_server.auth.services import create_user
    from webpush_server.extensions import db
    from webpush_server.library import services as library
    from webpush_server.push.models import Subscription
    from webpush_server.service_api.keys import create_key
    from webpush_server.timeutil import utcnow

    receiver = ec.generate_private_key(ec.SECP256R1()).public_key()
    p256dh = delivery.b64url(receiver.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))
    auth = delivery.b64url(os.urandom(16))

    def device(user_id: int, path: str) -> None:
        db.session.add(
            Subscription(
                user_id=user_id,
                endpoint=f"http://127.0.0.1:{sink_port}{path}",
                p256dh=p256dh,
                auth=auth,
                user_agent="bench",
                created_at=utcnow(),
                failure_count=0,
            )
        )

    with app.test_request_context():
        create_user("librarian@bench.webpush-server.dev", PASSWORD, "librarian")
        create_user("borrower@bench.webpush-server.dev", PASSWORD)
        tab = create_user("tab@bench.webpush-server.dev", PASSWORD)
        device(tab.id, "/push/api")
        copies = []
        for i in range(samples):
            # Patrons never log in: no password hash to compute (seconds each on a busy host).
            patron = User(
                email=f"patron{i}@bench.webpush-server.dev",
                name=f"Patron {i}",
                role="patron",
                password_hash="!",
            )
            db.session.add(patron)
            db.session.flush()
            device(patron.id, f"/push/checkin/{i}")
            db.session.commit()
            book, (copy_id,) = library.add_book(f"Bench book {i}", "Bench", None, 1)
            library.check_out(copy_id, "borrower@bench.webpush-server.dev")
            library.place_hold(patron.id, book.id)
            copies.append(copy_id)
        _, secret = create_key("latency bench")
        db.session.commit()
        return {"copies": copies, "tab_user": tab.id, "api_key": secret}


def login(base: str, email: str) -> requests.Session:
    """Log in through the form as a browser does; the session sends the CSRF header after."""
    import re

    session = requests.Session()

    def token(html: str) -> str:
        match = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
        if not match:
            raise BenchError("no csrf-token meta tag on the page")
        return match.group(1)

    page = session.get(f"{base}/login", timeout=10).text
    response = session.post(
        f"{base}/login",
        data={"email": email, "password": PASSWORD, "csrf_token": token(page)},
        timeout=10,
        allow_redirects=False,
    )
    if response.status_code != 302:
        raise BenchError(f"login as {email} answered {response.status_code}")
    session.headers["X-CSRFToken"] = token(session.get(f"{base}/notifications", timeout=10).text)
    return session


def start_web(env: dict[str, str], tmp: Path, procs: Processes) -> str:
    """Start gunicorn as the Procfile does (one process here) and wait until it answers."""
    from webpush_server.devrun import web_command

    port = free_port()
    argv = web_command(f"127.0.0.1:{port}", 50)
    argv[argv.index("--access-logfile") + 1] = "/dev/null"
    procs.add(
        "web",
        subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=open(tmp / "web.log", "wb"),  # noqa: SIM115 - closed with the process
            stderr=subprocess.STDOUT,
            start_new_session=True,
        ),
        signal.SIGINT,  # quick shutdown: open WebSockets would hold a graceful one
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(f"{base}/healthz", timeout=1)
            return base
        except requests.RequestException as exc:
            if time.monotonic() > deadline:
                raise BenchError(f"web did not answer:\n{tail(tmp / 'web.log')}") from exc
            time.sleep(0.1)  # polling a server that is not listening yet


def run(args: argparse.Namespace, tmp: Path, procs: Processes) -> int:
    from webpush_server import create_app, redis_server

    db_kind = "postgresql" if args.database_url else "sqlite"
    sink_port = delivery.start_nginx(tmp, procs, buffered=False)
    redis_port = free_port()
    procs.add("redis", redis_server.start(tmp / "redis", port=redis_port))
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    env = delivery.bench_env(args, tmp, redis_url, sink_port)
    env["FLASK_SERVICE_API_RATE_LIMIT"] = "100000000"
    if args.database_url:
        delivery.reset_database(args.database_url)
    delivery.migrate(env, tmp)
    os.environ.update(env)
    app = create_app()
    data = setup(app, args.samples + args.warmup, sink_port)
    workers = delivery.start_workers(1, env, tmp, procs, redis_url)
    base = start_web(env, tmp, procs)
    librarian = login(base, "librarian@bench.webpush-server.dev")
    tab_session = login(base, "tab@bench.webpush-server.dev")
    tab = Tab(base, tab_session.cookies.get_dict())
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {data['api_key']}"
    sink = SinkLog(tmp / "access.log")

    load = os.getloadavg()
    checkin: list[float] = []
    api_push: list[float] = []
    ws: list[float] = []
    requests_ms: dict[str, list[float]] = {"checkin": [], "api": []}
    try:
        # Alternate the two triggers so both see the same moments of the shared machine.
        for i, copy_id in enumerate(data["copies"]):
            delivery.check_workers(workers, tmp)
            started = time.time()
            response = librarian.post(f"{base}/api/library/copies/{copy_id}/return", timeout=30)
            answered = time.time()
            if response.status_code != 200 or response.json().get("hold_id") is None:
                raise BenchError(f"check-in answered {response.status_code}: {response.text}")
            arrived = sink.wait(f"/push/checkin/{i}", 1)
            if i >= args.warmup:
                checkin.append((arrived - started) * 1000)
                requests_ms["checkin"].append((answered - started) * 1000)

            title = f"Bench announcement {i}"
            started = time.time()
            response = api.post(
                f"{base}/api/v1/notifications",
                json={
                    "kind": "announcement",
                    "recipients": [{"user_id": data["tab_user"]}],
                    "title": title,
                    "body": "A message from another service.",
                    "url": "/notifications",
                    "channels": ["push"],
                },
                timeout=30,
            )
            answered = time.time()
            if response.status_code != 202 or response.json().get("recipients") != 1:
                raise BenchError(f"the API answered {response.status_code}: {response.text}")
            arrived = sink.wait("/push/api", i + 1)
            on_tab = tab.wait(title)
            if i >= args.warmup:
                api_push.append((arrived - started) * 1000)
                ws.append((on_tab - started) * 1000)
                requests_ms["api"].append((answered - started) * 1000)
    finally:
        tab.close()

    def line(name: str, values: list[float]) -> str:
        return (
            f"{name:<28} p50 {percentile(values, 50):6.1f} ms  p90 {percentile(values, 90):6.1f}"
            f" ms  p99 {percentile(values, 99):6.1f} ms  max {max(values):6.1f} ms"
        )

    print(f"database          {db_kind}")
    print(f"samples           {args.samples} per path (after {args.warmup} warm-up)")
    print(f"load average      {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the start")
    print("web               gunicorn + uvicorn, 1 process; 1 `flask jobs worker`; nginx sink")
    print(line("check-in → push at sink", checkin))
    print(line("  (check-in request alone)", requests_ms["checkin"]))
    print(line("API trigger → push at sink", api_push))
    print(line("API trigger → WebSocket tab", ws))
    print(line("  (API request alone)", requests_ms["api"]))
    print(
        f"RESULT checkin_p50={percentile(checkin, 50):.1f}"
        f" checkin_p99={percentile(checkin, 99):.1f}"
        f" api_p50={percentile(api_push, 50):.1f} api_p99={percentile(api_push, 99):.1f}"
        f" ws_p50={percentile(ws, 50):.1f} ws_p99={percentile(ws, 99):.1f} db={db_kind}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=200, help="samples per path (200)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed samples first (10)")
    parser.add_argument("--database-url", default=None, help="PostgreSQL (it is EMPTIED)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, DB)")
    args = parser.parse_args(argv)
    args.batch_size = None  # delivery.bench_env reads it
    if args.samples < 1 or args.warmup < 0:
        parser.error("--samples must be at least 1, --warmup at least 0")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    tmp = Path(tempfile.mkdtemp(prefix="webpush-latency-"))
    procs = Processes()
    try:
        return run(args, tmp, procs)
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
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


if __name__ == "__main__":
    sys.exit(main())
