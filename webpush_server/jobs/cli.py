"""`flask jobs run|list|worker|scheduler`."""

from __future__ import annotations

import logging
import warnings

import click
from flask import Blueprint, current_app
from rq.utils import import_attribute

from .. import logs, metrics
from ..metrics import JOB_RUNS
from . import delivery
from .queues import QUEUES, connection
from .schedule import install, table
from .worker import Worker

bp = Blueprint("jobs", __name__, cli_group="jobs")


@bp.cli.command("list")
def list_jobs() -> None:
    """Print the schedule."""
    for entry in table().values():
        click.echo(f"{entry.id:28} {entry.cron:14} UTC  {entry.description}")


@bp.cli.command("run")
@click.argument("name")
def run(name: str) -> None:
    """Run one scheduled job now, in the foreground."""
    entries = table()
    if name not in entries:
        raise click.BadParameter(
            f"{name!r} is not a scheduled job; choose from {', '.join(sorted(entries))}.",
            param_hint="NAME",
        )
    status = "failed"
    try:
        result = import_attribute(entries[name].func)()
        status = "ok"
    finally:
        JOB_RUNS.labels(job=name, status=status).inc()
    click.echo(f"{name}: {result}")


@bp.cli.command("worker")
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
@click.option("--name", default=None)
def worker(burst: bool, name: str | None) -> None:
    """Run an RQ worker on the push and default queues."""
    _log_setup()
    _serve_metrics()
    w = Worker(list(QUEUES), connection=connection(), name=name)
    with current_app.app_context():
        # Build the sender and load the VAPID key now: a missing key fails here, not on the
        # first job.
        delivery.warm_up()
        w.work(burst=burst, with_scheduler=True, logging_level="INFO")


@bp.cli.command("scheduler")
@click.option("--burst", is_flag=True, help="Enqueue what is due and exit.")
def scheduler(burst: bool) -> None:
    """Install the cron table and run rq-scheduler."""
    _log_setup()
    # rq-scheduler calls crontab's next() in the form that warns about a future default; our
    # cron strings are UTC either way (use_local_timezone=False).
    warnings.filterwarnings("ignore", category=FutureWarning, module="rq_scheduler")
    install(connection(), table().values()).run(burst=burst)


def _log_setup() -> None:
    """Log at INFO with request ids; LOG_FORMAT (create_app) may already have set JSON."""
    if not current_app.config.get("LOG_FORMAT"):
        logs.configure("text")


def _serve_metrics() -> None:
    """With METRICS_PORT, serve this worker's metrics (a worker dyno without a web beside it)."""
    port = current_app.config.get("METRICS_PORT")
    if port:
        from prometheus_client import start_http_server

        start_http_server(int(port), registry=metrics.registry())
        logging.getLogger(__name__).info("metrics on :%s/metrics", port)
