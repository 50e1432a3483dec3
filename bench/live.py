"""Open tabs per web process: N authenticated WebSockets, delivery latency and memory per socket.

Starts a private redis-server, a fresh SQLite database with N users, and one gunicorn web
process as the Procfile runs it (one uvicorn worker, asgi:app), then opens N WebSockets from
one asyncio process of its own (one per user, each with a signed session cookie), records
notifications in this process as a service would, and times from just before the commit to
the moment each socket has the message. Two loads: a fan-out (one notification to every user
in one commit, repeated) and single notifications to one user at a time. Memory per socket is
the web process's resident memory after opening the sockets minus before, over N. Loopback
only; prints figures, fails only on errors.

    .venv/bin/python bench/live.py [--sockets 1000] [--rounds 5] [--singles 200]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
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
import time
import urllib.request
import uuid
from pathlib import Path

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


class _Tab(asyncio.Protocol):
    """One WebSocket client, frames parsed by hand: the bench must cost less than the server.

    Records when each notification (by title) arrives; answers the server's pings.
    """

    def __init__(self, owner: _Tabs, index: int, request: bytes) -> None:
        self.owner, self.index, self.request = owner, index, request
        self.buffer = b""
        self.upgraded = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc) -> None:
        self.owner.lost += 1

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.buffer += data
        if not self.upgraded:
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            if not head.startswith(b"HTTP/1.1 101"):
                self.owner.failed.append(head[:200])
                return
            self.upgraded, self.buffer = True, rest
        while len(self.buffer) >= 2:
            opcode, length = self.buffer[0] & 0x0F, self.buffer[1] & 0x7F
            start = 2
            if length == 126:
                start, length = 4, int.from_bytes(self.buffer[2:4], "big")
            elif length == 127:
                start, length = 10, int.from_bytes(self.buffer[2:10], "big")
            if len(self.buffer) < start + length:
                return
            payload = self.buffer[start : start + length]
            self.buffer = self.buffer[start + length :]
            if opcode == 0x9:  # ping: a pong carries the same data, masked (RFC 6455 5.3)
                mask = os.urandom(4)
                body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
                self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + mask + body)
            elif opcode == 0x1:
                self.owner.frame(self.index, payload, now)


class _Tabs:
    """N WebSockets in one event loop, in a process of its own (not the recorder's GIL)."""

    def __init__(self, port: int, origin: str, cookies: list[str]) -> None:
        self.port, self.origin, self.cookies = port, origin, cookies
        self.opened = self.lost = 0
        self.failed: list[bytes] = []
        self.arrivals: dict[str, dict[int, float]] = {}

    def frame(self, index: int, payload: bytes, now: float) -> None:
        message = json.loads(payload)
        if message["type"] == "unread_count" and index not in self.hello:
            self.hello.add(index)
            self.opened += 1
        elif message["type"] == "notification":
            self.arrivals.setdefault(message["notification"]["title"], {})[index] = now

    def request(self, index: int) -> bytes:
        key = base64.b64encode(os.urandom(16)).decode()
        return (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {self.origin}\r\nCookie: session={self.cookies[index]}\r\n\r\n"
        ).encode()

    async def run(self, pipe) -> None:
        loop = asyncio.get_running_loop()
        self.hello: set[int] = set()
        transports = []
        # Open in waves: a thousand handshakes at once would only measure the listen backlog.
        for start in range(0, len(self.cookies), 100):
            wave = range(start, min(start + 100, len(self.cookies)))
            transports += await asyncio.gather(
                *(loop.create_connection(
                    lambda i=i: _Tab(self, i, self.request(i)), "127.0.0.1", self.port)
                  for i in wave)
            )  # fmt: skip
            deadline = time.monotonic() + 60
            while self.opened < wave.stop and not self.failed and time.monotonic() < deadline:
                await asyncio.sleep(0.01)  # polling the counter the tabs raise
            if self.opened < wave.stop:
                pipe.send(("failed", self.opened, [f.decode("latin-1") for f in self.failed]))
                return
        pipe.send(("opened", self.opened))
        while True:
            command = await loop.run_in_executor(None, pipe.recv)
            if command[0] == "stop":
                break
            _, title, indexes, timeout = command
            deadline = time.monotonic() + timeout
            while len(self.arrivals.get(title, ())) < len(indexes):
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.002)  # polling what the tabs record
            got = self.arrivals.pop(title, {})
            pipe.send(("arrived", [got.get(i) for i in indexes], self.lost))
        for transport, _ in transports:
            transport.close()


def _tabs_main(port: int, origin: str, cookies: list[str], pipe) -> None:
    import uvloop

    uvloop.run(_Tabs(port, origin, cookies).run(pipe))


class Clients:
    """The tabs' process, and what the bench asks of it."""

    def __init__(self, url: str, cookies: list[str]) -> None:
        import multiprocessing

        port = int(url.rsplit(":", 1)[1])
        context = multiprocessing.get_context("spawn")
        self.pipe, child = context.Pipe()
        self.process = context.Process(target=_tabs_main, args=(port, url, cookies, child))
        self.count = len(cookies)

    def start(self) -> None:
        self.process.start()
        if not self.pipe.poll(600):
            raise RuntimeError("the tabs did not open within 10 minutes")
        answer = self.pipe.recv()
        if answer[0] != "opened":
            raise RuntimeError(f"only {answer[1]} of {self.count} sockets opened: {answer[2][:3]}")

    def wait_for(self, title: str, indexes: list[int], timeout: float = 60) -> list[float]:
        self.pipe.send(("wait", title, indexes, timeout))
        _, times, lost = self.pipe.recv()
        missing = sum(t is None for t in times)
        if missing:
            raise RuntimeError(f"{missing} of {len(indexes)} messages never arrived ({lost} lost)")
        return times

    def stop(self) -> None:
        if self.process.is_alive():
            try:
                self.pipe.send(("stop",))
            except OSError:
                pass
            self.process.join(30)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def worker_rss(server: psutil.Process) -> int:
    """Resident memory of the gunicorn worker (the master's only child)."""
    children = server.children()
    return sum(child.memory_info().rss for child in children)


def worker_cpu(server: psutil.Process) -> tuple[float, float]:
    """(user, system) CPU seconds of the web workers (the master's children)."""
    times = [child.cpu_times() for child in server.children()]
    return sum(t.user for t in times), sum(t.system for t in times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=32, help="the web process's page threads")
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
        argv = web_command(f"127.0.0.1:{port}", args.threads)
        argv[argv.index("--access-logfile") + 1] = "/dev/null"
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

        fanout, round_p99s, cpu_per_round, system_per_round = [], [], [], []
        tabs_cpu = []  # the clients' process: reading 10,000 sockets is not free either
        tabs = psutil.Process(clients.process.pid)
        for r in range(args.rounds):
            title = f"fan-out {r}"
            cpu_before = worker_cpu(psutil.Process(server.pid))
            tabs_before = sum(tabs.cpu_times()[:2])
            started = record_titled(app, user_ids, title)
            times = clients.wait_for(title, list(range(len(user_ids))))
            cpu_after = worker_cpu(psutil.Process(server.pid))
            tabs_cpu.append(sum(tabs.cpu_times()[:2]) - tabs_before)
            cpu_per_round.append(sum(cpu_after) - sum(cpu_before))
            system_per_round.append(cpu_after[1] - cpu_before[1])
            fanout += [t - started for t in times]
            round_p99s.append(percentile([t - started for t in times], 99) * 1000)
        published_ms = statistics.median(t for t, _ in PUBLISHED[: args.rounds]) * 1000
        recorder_ms = statistics.median(c for _, c in PUBLISHED[: args.rounds]) * 1000
        singles = []
        for s in range(args.singles):
            index = random.randrange(len(user_ids))
            title = f"single {s}"
            started = record_titled(app, [user_ids[index]], title)
            (arrived,) = clients.wait_for(title, [index])
            singles.append(arrived - started)

        print(f"load average at the start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        print(f"web: one gunicorn + uvicorn worker (asgi:app), {args.threads} page threads")
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
        # The web process's CPU per fan-out steadies a comparison on a noisy host: the
        # latency also holds the recorder's and the clients' share of the two cores.
        cpu_ms = statistics.median(cpu_per_round) * 1000
        system_ms = statistics.median(system_per_round) * 1000
        print(
            f"  per round p99 {', '.join(f'{p:.0f}' for p in round_p99s)} ms;"
            f" web CPU per fan-out (median) {cpu_ms:.0f} ms ({system_ms:.0f} in the kernel),"
            f" {cpu_ms * 1000 / args.sockets:.1f} µs per tab;"
            f" commit and publish (median) {published_ms:.0f} ms, {recorder_ms:.0f} ms CPU;"
            f" the tabs' client {statistics.median(tabs_cpu) * 1000:.0f} ms CPU"
        )
        one50, one99 = percentile(singles, 50) * 1000, percentile(singles, 99) * 1000
        print(
            f"single notifications ({args.singles}, one tab each): p50 {one50:.1f} ms, "
            f"p99 {one99:.1f} ms, mean {statistics.mean(singles) * 1000:.1f} ms"
        )
        print(
            f"RESULT sockets={args.sockets} worker=uvicorn"
            f" kib_per_socket={(after - before) / args.sockets / 1024:.1f}"
            f" fanout_p50={fan50:.0f} fanout_p99={fan99:.0f} one_p50={one50:.1f}"
            f" one_p99={one99:.1f} fanout_cpu_ms={cpu_ms:.0f}"
        )
        return 0
    finally:
        try:
            if clients is not None:
                clients.stop()
        finally:
            # SIGTERM: uvicorn closes every socket (1012) and stops.
            try:
                stop(server, signal.SIGTERM, 30)
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
        started, cpu = time.monotonic(), time.process_time()
        db.session.commit()  # publishes to the live channels after the commit
        PUBLISHED.append((time.monotonic() - started, time.process_time() - cpu))
    return started


# (seconds, CPU seconds) from each commit's start to its live messages sent
PUBLISHED: list[tuple[float, float]] = []


if __name__ == "__main__":
    sys.exit(main())
