"""Gunicorn settings shared by the Procfile's web dyno, `make run` and the tests' servers.

Loaded with ``gunicorn --config python:webpush_server.ops.gunicorn_conf``. It does what a WSGI
app cannot do for itself: once a worker has loaded the app it freezes the garbage collector's
view of it (post_worker_init); with LOG_FORMAT=json it makes gunicorn's own lines (startup,
errors, access) JSON like the app's, and with PROMETHEUS_MULTIPROC_DIR it tells
prometheus-client when a worker process has exited, so its live gauges stop counting.
"""

from __future__ import annotations

import gc
import os
from typing import Any

if os.environ.get("LOG_FORMAT") == "json":
    _json_handler = {
        "class": "logging.StreamHandler",
        "formatter": "json",
        "filters": ["context"],
        "stream": "ext://sys.stderr",
    }
    logconfig_dict = {
        "formatters": {"json": {"()": "webpush_server.logs.JsonFormatter"}},
        "filters": {"context": {"()": "webpush_server.logs.ContextFilter"}},
        "handlers": {"json": _json_handler},
        # The app adds its own root handler (logs.configure); gunicorn's lines go to ours.
        "root": {"level": "INFO", "handlers": []},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["json"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["json"], "propagate": False},
        },
    }


def post_worker_init(worker: Any) -> None:
    """Leave the loaded app's objects out of every later garbage collection (gc.freeze).

    A full collection walked every module, model and compiled statement of the app: 160 to
    180 ms with the request waiting, the p99 of bench/latency.py.
    """
    gc.freeze()


def child_exit(server: Any, worker: Any) -> None:
    """Drop the exited worker's live gauge values (prometheus-client multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
