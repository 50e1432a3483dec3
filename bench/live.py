"""Open tabs per web process: N authenticated WebSockets, delivery latency and memory per socket.

Starts a private redis-server, a fresh SQLite database with N users, and one gunicorn web
process as the Procfile runs it (or with --worker-class / --threads to compare), then opens N
WebSockets from one asyncio client (one per user, each with a signed session cookie), records
notifications in this process as a service would, and times from just before the commit to
the moment each socket has the message. Two loads: a fan-out (one notification to every user
in one commit, repeated) and single notifications to one user at a time. Memory per socket is
the web process's resident memory after opening the sockets minus before, over N. Loopback
only; prints figures, fails only on errors.

    .venv/bin/python bench/live.py [--sockets 1000] [--worker-class gthread|gevent]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from webpush_server import create_app, redis_server  # noqa: E402
from webpush_server.devrun import web_command  # noqa: E402

SUBJECT = "mailto:bench@webpush-server.dev"
SECRET = "bench-secret-" + uuid.uuid4().hex


def raise_fd_limit(needed: int) -> None:
    """Each socket is a descriptor on both ends: raise the soft limit if it is too low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(needed, soft)), hard))


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def setup_database(app, count: int) -> tuple[list[int], list[str]]:
    """Migrate, create count users directly, and sign one session cookie per user."""
    from flask_migrate import upgrade
    from sqlalchemy import insert, select

    from webpush_server.auth import SESSION_TOKEN_KEY
    from webpush_server.auth.models import User, UserSession
    from webpush_server.extensions import db
    from webpush_server.timeutil import utcnow

    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        db.session.execute(
            insert(User),
            [
                {"email": f"tab{i}@webpush-server.dev", "name": f"Tab {i}", "password_hash": "x"}
                for i in range(count)
            ],
        )
        db.session.commit()
        ids = list(db.session.scalars(select(User.id).order_by(User.id)))
        # Sessions are server-side: the signed cookie carries a token whose row must exist.
        tokens = [secrets.token_urlsafe(32) for _ in ids]
        db.session.execute(
            insert(UserSession),
            [
                {"id": hashlib.sha256(t.encode()).hexdigest(), "user_id": i, "created_at": utcnow()}
                for i, t in zip(ids, tokens, strict=True)
            ],
        )
        db.session.commit()
    serializer = app.session_interface.get_signing_serializer(app)
    cookies = [
        serializer.dumps({"_user_id": str(i), "_fresh": False, SESSION_TOKEN_KEY: t})
        for i, t in zip(ids, tokens, strict=True)
    ]
    return ids, cookies


class Clients:
    """N WebSockets in one asyncio loop on its own thread; arrival times by notification."""

    def __init__(self, url: str, cookies: list[str]) -> None:
        self.url = url.replace("http://", "ws://") + "/ws"
        self.origin = url
        self.cookies = cookies
        self.arrivals: dict[tuple[int, str], float] = {}  # (socket index, title) → time
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.opened = 0
        self.error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),))

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            tasks = []
            # Open in waves: a thousand handshakes at once would only measure the listen backlog.
            for start in range(0, len(self.cookies), 100):
                wave = [
                    asyncio.create_task(self._socket(session, i))
                    for i in range(start, min(start + 100, len(self.cookies)))
                ]
                tasks += wave
                while self.opened < min(start + 100, len(self.cookies)):
                    failed = [t for t in wave if t.done()]
                    if failed:
                        self.error = failed[0].exception() or RuntimeError("a socket closed")
                        self.ready.set()
                        for task in tasks:
                            task.cancel()
                        return
                    await asyncio.sleep(0.01)  # polling a counter the socket tasks raise
            self.ready.set()
            await self._stop.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _socket(self, session: aiohttp.ClientSession, index: int) -> None:
        headers = {"Cookie": f"session={self.cookies[index]}", "Origin": self.origin}
        async with session.ws_connect(self.url, headers=headers, heartbeat=None) as ws:
            first = await ws.receive_json()
            assert first["type"] == "unread_count", first
            self.opened += 1
            async for message in ws:
                data = message.json()
                if data["type"] == "notification":
                    self.arrivals[(index, data["notification"]["title"])] = time.monotonic()

    def start(self) -> None:
        self.thread.start()
        if not self.ready.wait(300) or self.error is not None:
            raise RuntimeError(
                f"only {self.opened} of {len(self.cookies)} sockets opened: {self.error!r}"
            )

    def wait_for(self, keys: list[tuple[int, str]], timeout: float = 60) -> list[float]:
        deadline = time.monotonic() + timeout
        while True:
            times = [self.arrivals.get(key) for key in keys]
            if all(t is not None for t in times):
                return times
            if time.monotonic() > deadline:
                missing = sum(t is None for t in times)
                raise RuntimeError(f"{missing} of {len(keys)} messages never arrived")
            time.sleep(0.002)  # polling the arrivals the client thread records

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(30)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def worker_rss(server: psutil.Process) -> int:
    """Resident memory of the gunicorn worker (the master's only child)."""
    children = server.children()
    return sum(child.memory_info().rss for child in children)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=1000)
    # gthread is the Procfile's choice; gevent (pip install gevent) is here to compare against.
    parser.add_argument("--worker-class", default="gthread", choices=("gthread", "gevent"))
    parser.add_argument("--threads", type=int, default=0, help="gthread pool (default sockets+100)")
    parser.add_argument(
        "--thread-stack",
        type=int,
        default=0,
        help="gthread: stack size of the pool's threads in KiB (default: the platform's, 8 MiB)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="fan-out rounds")
    parser.add_argument("--singles", type=int, default=200, help="one-user notifications")
    args = parser.parse_args()
    # SIGTERM ends the run like Ctrl-C: the finally block below stops what was started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    raise_fd_limit(4 * args.sockets + 256)

    tmp = Path(tempfile.mkdtemp(prefix="bench-live-"))
    redis_port = free_port()
    redis = redis_server.start(tmp / "redis", port=redis_port)
    try:  # until the web process runs, redis is the one thing to stop on a failure
        settings = {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'bench.db'}",
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "SECRET_KEY": SECRET,
            "VAPID_SUBJECT": SUBJECT,
        }
        app = create_app(settings)
        user_ids, cookies = setup_database(app, args.sockets)

        port = free_port()
        threads = args.threads or args.sockets + 100
        argv = web_command(f"127.0.0.1:{port}", threads, args.worker_class)
        argv[argv.index("--access-logfile") + 1] = "/dev/null"
        # gthread accepts at most worker_connections at once, gevent's greenlets too: room for
        # every socket plus the bench's own requests.
        argv[argv.index("--worker-connections") + 1] = str(args.sockets + 200)
        if args.thread_stack:
            # The shared settings plus a post_fork hook: the pool's threads start after it.
            conf = tmp / "gunicorn_stack.py"
            conf.write_text(
                "from webpush_server.ops.gunicorn_conf import *  # noqa: F403\n"
                "def post_fork(server, worker):\n"
                "    import threading\n"
                f"    threading.stack_size({args.thread_stack * 1024})\n"
            )
            argv[argv.index("--config") + 1] = str(conf)
        env = {
            **os.environ,
            "DATABASE_URL": settings["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": settings["REDIS_URL"],
            "SECRET_KEY": SECRET,
            "VAPID_SUBJECT": SUBJECT,
            "PYTHONPATH": str(ROOT),
        }
        log = open(tmp / "web.log", "wb")  # noqa: SIM115 - closed below
        # Its own session, so that a stop that times out can take the whole group down.
        server = subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    except BaseException:
        stop(redis, signal.SIGTERM, 10)
        raise
    url = f"http://127.0.0.1:{port}"
    clients = None
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(url + "/login", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)  # polling a server that is not listening yet
        time.sleep(1)  # let the worker finish importing before the baseline is read
        load = os.getloadavg()
        before = worker_rss(psutil.Process(server.pid))
        clients = Clients(url, cookies)
        opened_at = time.monotonic()
        clients.start()
        opened_in = time.monotonic() - opened_at
        after = worker_rss(psutil.Process(server.pid))

        fanout = []
        for r in range(args.rounds):
            title = f"fan-out {r}"
            started = record_titled(app, user_ids, title)
            times = clients.wait_for([(i, title) for i in range(len(user_ids))])
            fanout += [t - started for t in times]
        singles = []
        for s in range(args.singles):
            index = random.randrange(len(user_ids))
            title = f"single {s}"
            started = record_titled(app, [user_ids[index]], title)
            (arrived,) = clients.wait_for([(index, title)])
            singles.append(arrived - started)

        stack = f", thread stack {args.thread_stack} KiB" if args.thread_stack else ""
        print(f"load average at the start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        print(
            f"worker class: {args.worker_class}"
            + (f", threads {threads}{stack}" * (args.worker_class == "gthread"))
        )
        print(f"sockets open: {args.sockets} in {opened_in:.1f} s")
        print(
            f"web process RSS: {before / 2**20:.1f} MiB before, {after / 2**20:.1f} MiB after; "
            f"{(after - before) / args.sockets / 1024:.1f} KiB per socket"
        )
        fan50, fan99 = percentile(fanout, 50) * 1000, percentile(fanout, 99) * 1000
        print(
            f"fan-out ({args.rounds} x {args.sockets} tabs, one commit each): "
            f"p50 {fan50:.1f} ms, p99 {fan99:.1f} ms"
        )
        one50, one99 = percentile(singles, 50) * 1000, percentile(singles, 99) * 1000
        print(
            f"single notifications ({args.singles}, one tab each): p50 {one50:.1f} ms, "
            f"p99 {one99:.1f} ms, mean {statistics.mean(singles) * 1000:.1f} ms"
        )
        print(
            f"RESULT sockets={args.sockets} worker={args.worker_class}"
            f" kib_per_socket={(after - before) / args.sockets / 1024:.1f}"
            f" fanout_p50={fan50:.0f} fanout_p99={fan99:.0f} one_p50={one50:.1f}"
            f" one_p99={one99:.1f}"
        )
        return 0
    finally:
        try:
            if clients is not None:
                clients.stop()
        finally:
            # SIGINT is gunicorn's quick shutdown: a graceful SIGTERM waits for every open
            # WebSocket's thread (thousands) and outlasts any sensible wait.
            try:
                stop(server, signal.SIGINT, 30)
            finally:
                log.close()
                try:
                    stop(redis, signal.SIGTERM, 10)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)


def stop(process: subprocess.Popen, first: int, timeout: float) -> None:
    """Stop a process with first; after timeout SIGKILL it. Its group goes down with it.

    Both gunicorn and redis-server lead their own session here: killing the group also ends a
    gunicorn worker that outlived its master (seen at 10,000 threads on a loaded host).
    """
    if process.poll() is None:
        process.send_signal(first)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    # Both were started with start_new_session: their group id is their pid, and the group
    # outlives a leader that has exited while members remain.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # nobody left in the group
    process.wait()


def record_titled(app, user_ids: list[int], title: str) -> float:
    """Record one notification titled title per user; return the time just before the commit."""
    from webpush_server.extensions import db
    from webpush_server.notifications.record import Notice, record_notices

    with app.app_context():
        record_notices(
            [
                Notice(
                    user_id=uid,
                    kind="book_available",
                    title=title,
                    body="Pick it up at the desk.",
                    url="/notifications",
                    dedupe_key=f"bench:{uuid.uuid4().hex}",
                )
                for uid in user_ids
            ]
        )
        started = time.monotonic()
        db.session.commit()
    return started


if __name__ == "__main__":
    sys.exit(main())
