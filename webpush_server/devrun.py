"""`make run`: the whole product on one machine, in the foreground.

Embedded Redis (when REDIS_URL is unset), migrations, a VAPID key, demo data, then web,
worker and scheduler as child processes. Ctrl-C stops every child and the embedded Redis.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from . import redis_server

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"
DEV_SUBJECT = "mailto:webpush-dev@webpush-server.dev"
# JSON logs for gunicorn's own lines, worker exits for metrics (ops/gunicorn_conf.py).
GUNICORN_CONFIG = "python:webpush_server.ops.gunicorn_conf"
WORKER_CLASS = "webpush_server.ops.asgi_worker.Worker"


def web_command(bind: str, threads: int, access_log: str = "-") -> list[str]:
    """Return the argv of the web server: gunicorn as in the Procfile.

    One uvicorn worker (ops/asgi_worker.py) serving asgi:app: pages on `threads` threads,
    open tabs (WebSocket, SSE) as coroutines. access_log is a file, or "-" for standard output.
    """
    return [
        sys.executable, "-m", "gunicorn", "--config", GUNICORN_CONFIG, "--bind", bind,
        "--worker-class", WORKER_CLASS, "--threads", str(threads),
        "--workers", "1", "--access-logfile", access_log, "asgi:app",
    ]  # fmt: skip


def flask_command(*args: str) -> list[str]:
    """Return the argv of `flask --app wsgi ARGS` run with this interpreter."""
    return [sys.executable, "-m", "flask", "--app", "wsgi", *args]


def _write_dev_config() -> None:
    """Give every flask command in this checkout a valid VAPID subject (development only)."""
    path = INSTANCE / "config.py"
    if not path.exists() and not os.environ.get("VAPID_SUBJECT"):
        path.write_text(
            "# Written by `make run` for local development; production sets VAPID_SUBJECT.\n"
            f"VAPID_SUBJECT = {DEV_SUBJECT!r}\n"
        )


def _setup(env: dict) -> None:
    subprocess.run(flask_command("db", "upgrade"), env=env, check=True, cwd=ROOT)
    if not env.get("VAPID_PRIVATE_KEY"):
        subprocess.run(
            flask_command("vapid", "generate"),
            env=env,
            check=True,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
    # Quiet: the banner below prints the demo logins once everything is up.
    subprocess.run(
        flask_command("seed-demo"), env=env, check=True, cwd=ROOT, stdout=subprocess.DEVNULL
    )


def _wait_for_web(url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url + "/login", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the web server did not come up; see its output above")


def main() -> int:
    """Start everything and supervise it until Ctrl-C."""
    INSTANCE.mkdir(exist_ok=True)
    _write_dev_config()
    env = dict(os.environ)
    # The demo: the login page lists the demo accounts (they scroll out of the terminal).
    env.setdefault("DEMO_ACCOUNTS", "1")
    port = env.get("PORT", "5000")
    # Links built outside a request (the push message's navigate) point at this server.
    env.setdefault("PUBLIC_URL", f"http://127.0.0.1:{port}")
    # Web, worker and scheduler write their metrics into one folder; /metrics merges it.
    # Emptied at each start: values of processes from an earlier run must not add up.
    metrics_dir = Path(env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(INSTANCE / "prometheus")))
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    children: list[tuple[str, subprocess.Popen]] = []
    redis_process = None
    mail_server = None
    stopping = False

    def stop(*_args) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        if not env.get("REDIS_URL"):
            if redis_server.is_running(str(INSTANCE)):
                print(
                    "webpush-server: another `make run` is using this checkout's Redis; "
                    "stop it first",
                    file=sys.stderr,
                )
                return 1
            socket = redis_server.socket_path(str(INSTANCE))
            redis_process = redis_server.start(INSTANCE / "redis", unix_socket=socket)
            print(f"embedded Redis on {socket}")
        env.setdefault("PUBLIC_URL", f"http://127.0.0.1:{port}")
        if not env.get("MAIL_URL"):
            # Every e-mail lands in instance/mail; admins read it at /admin/mail.
            from .channels.mailbox import start_embedded

            env["MAIL_KEEP_DIR"] = str(INSTANCE / "mail")
            mail_server, env["MAIL_URL"] = start_embedded(INSTANCE / "mail")
            print(f"embedded mail server on {env['MAIL_URL']} (read it at /admin/mail)")
        _setup(env)
        logs = INSTANCE / "logs"
        logs.mkdir(exist_ok=True)
        access_log = logs / "access.log"
        # Children get their own sessions: Ctrl-C reaches only us, and we stop them in order.
        specs = {
            # Each open tab holds a thread (its WebSocket or SSE stream): bench/live.py.
            # The access log goes to a file: the terminal keeps the URL and logins in view.
            "web": web_command(f"127.0.0.1:{port}", threads=32, access_log=str(access_log)),
            "worker": flask_command("jobs", "worker"),
            "scheduler": flask_command("jobs", "scheduler"),
        }
        for name, argv in specs.items():
            children.append(
                (name, subprocess.Popen(argv, env=env, cwd=ROOT, start_new_session=True))
            )
        url = f"http://127.0.0.1:{port}"
        _wait_for_web(url, children[0][1])
        from .demo import DEMO_PASSWORD, DEMO_USERS

        print(f"\n  webpush-server is running at {url}   (access log: {access_log})\n")
        for email, role, _name in DEMO_USERS:
            print(f"  {role:10} {email}  password: {DEMO_PASSWORD}")
        print("\n  Ctrl-C stops everything.\n", flush=True)
        while not stopping:
            for name, child in children:
                if child.poll() is not None:
                    print(
                        f"webpush-server: {name} exited with {child.returncode}; stopping",
                        file=sys.stderr,
                    )
                    stopping = True
            time.sleep(0.5)
        return 0
    finally:
        # Children first: a worker whose Redis vanished mid-shutdown only prints tracebacks.
        _shutdown([c for _, c in children])
        if mail_server is not None:
            mail_server.stop()
        if redis_process is not None:
            _shutdown([redis_process])
            redis_server.socket_path(str(INSTANCE)).unlink(missing_ok=True)
        print("webpush-server: stopped", flush=True)


def _shutdown(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


if __name__ == "__main__":
    sys.exit(main())
