"""The gunicorn worker class of the web dyno: uvicorn running realtime.asgi's LiveApp.

gunicorn stays the process manager (its config, hooks and signals: ops/gunicorn_conf.py);
each worker is one event loop (uvloop) whose pages run on `--threads` threads.
"""

from __future__ import annotations

from typing import Any

from uvicorn_worker import UvicornWorker


class Worker(UvicornWorker):
    """uvicorn with the settings the live channel needs."""

    CONFIG_KWARGS: dict[str, Any] = {
        "loop": "uvloop",
        "http": "httptools",
        # The sans-I/O websockets protocol (the least memory per open socket, bench/README),
        # with one write per tab of a fan-out.
        "ws": "webpush_server.ops.ws_protocol:Protocol",
        # Compression would keep a zlib context per socket (tens of KiB) for short JSON.
        "ws_per_message_deflate": False,
        "ws_max_size": 4096,  # a tab only sends visibility reports
        # The app trusts forwarding headers itself (TRUSTED_PROXIES, headers.py), not uvicorn.
        "proxy_headers": False,
        "server_header": False,
        "lifespan": "on",
        # Open SSE streams would hold a stop forever; after this they are cut and reconnect.
        "timeout_graceful_shutdown": 5,
    }

    def load_wsgi(self) -> None:
        """Load the app; give it gunicorn's --threads for pages and the app's ping interval."""
        super().load_wsgi()
        app = self.wsgi
        if hasattr(app, "flask"):
            app.threads = self.cfg.threads
            # A client that misses a pong is closed, and its presence lapses.
            ping = app.flask.config["LIVE_PING_SECONDS"]
            self.config.ws_ping_interval = self.config.ws_ping_timeout = ping
