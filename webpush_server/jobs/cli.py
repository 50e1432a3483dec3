"""`flask jobs run|list|worker|scheduler`."""

from __future__ import annotations

import gc
import json
import logging
import warnings

import click
from flask import Blueprint, current_app
from rq.utils import import_attribute

from .. import logs, metrics
from ..errors import refused_to_cli
from ..metrics import JOB_RUNS
from . import delivery
from .batch import BatchJob, latest_executions, parse_params, run_id
from .queues import QUEUES, connection
from .schedule import table
from .scheduler import run_scheduler
from .worker import Worker

bp = Blueprint("jobs", __name__, cli_group="jobs")


@bp.cli.command("list")
def list_jobs() -> None:
    """Print the schedule."""
    zone = current_app.config["APP_TIMEZONE"]
    for entry in table().values():
        click.echo(f"{entry.id:28} {entry.when(zone):26} {entry.description}")


@bp.cli.command("run")
@click.argument("name")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="An identifying parameter (date=YYYY-MM-DD, hour=…THH, minute=…THH:MM); "
    "without one, a fresh instance.",
)
def run(name: str, params: tuple[str, ...]) -> None:
    """Run one scheduled job now, in the foreground.

    A job instance runs once: a completed one says so and exits 0; a failed or killed one
    resumes from its last committed chunk.
    """
    entries = table()
    if name not in entries:
        raise click.BadParameter(
            f"{name!r} is not a scheduled job; choose from {', '.join(sorted(entries))}.",
            param_hint="NAME",
        )
    job = import_attribute(entries[name].func)
    if not isinstance(job, BatchJob):
        if params:
            raise click.BadParameter(f"{name} takes no parameters.", param_hint="--param")
        status = "failed"
        try:
            result = job()
            status = "ok"
        finally:
            JOB_RUNS.labels(job=name, status=status).inc()
        click.echo(f"{name}: {result}")
        return
    with refused_to_cli():
        outcome = job.launch(parse_params(params) or run_id())
    JOB_RUNS.labels(job=name, status=outcome.status).inc()
    click.echo(outcome.describe())
    # Last, as before executions existed: scripts read the result from the final line.
    if outcome.ran and outcome.status != "abandoned":
        click.echo(f"{name}: {job.result(outcome)}")
    if outcome.status in ("failed", "abandoned"):
        raise SystemExit(1)


@bp.cli.command("runs")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (a list of executions).")
@click.option("--limit", type=int, default=None, help="The newest N executions of all jobs.")
def runs(as_json: bool, limit: int | None) -> None:
    """List each job's latest execution (or the newest executions with --limit)."""
    found = latest_executions(limit)
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    click.echo(
        f"{'id':>6}  {'job':26} {'params':30} {'status':9} {'started':25} {'ended':25} "
        f"{'read':>7} {'written':>7} {'skipped':>7}  error"
    )
    for e in found:
        params = " ".join(f"{k}={v}" for k, v in e["params"].items())
        status = e["status"] + ("*" if e["late"] else "")
        click.echo(
            f"{e['id']:>6}  {e['job']:26} {params:30} {status:9} {e['started_at']:25} "
            f"{e['ended_at'] or '-':25} {e['read']:>7} {e['written']:>7} {e['skipped']:>7}  "
            f"{e['error'] or ''}"
        )
    if any(e["late"] for e in found):
        click.echo("* started late: the scheduler caught up on a missed occurrence")


@bp.cli.command("worker")
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
@click.option("--name", default=None)
def worker(burst: bool, name: str | None) -> None:
    """Run an RQ worker on the push and default queues."""
    _log_setup()
    _serve_metrics()
    w = Worker(
        list(QUEUES),
        connection=connection(),
        name=name,
        reconnect_max_seconds=float(current_app.config["REDIS_RECONNECT_MAX_SECONDS"]),
    )
    with current_app.app_context():
        # Build the sender and load the VAPID key now: a missing key fails here, not on the
        # first job.
        delivery.warm_up()
        # What is loaded now lives as long as the process: left out of every collection, a
        # full one no longer walks the whole app (160-180 ms with a delivery waiting).
        gc.freeze()
        # Retries due soon are sent by the worker's own lane threads, beside its jobs; a
        # burst worker, gone when the queues are empty, leaves them to RQ's scheduler.
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        with delivery.retry_lane(app, enabled=not burst):
            w.work(burst=burst, with_scheduler=True, logging_level="INFO")


@bp.cli.command("scheduler")
@click.option("--burst", is_flag=True, help="Enqueue what is due and exit.")
def scheduler(burst: bool) -> None:
    """Install the cron table and run rq-scheduler, reinstalling entries Redis loses."""
    _log_setup()
    # rq-scheduler calls crontab's next() in the form that warns about a future default; our
    # cron strings are UTC either way (use_local_timezone=False).
    warnings.filterwarnings("ignore", category=FutureWarning, module="rq_scheduler")
    config = current_app.config
    run_scheduler(
        connection(),
        table().values(),
        check_seconds=float(config["SCHEDULER_CHECK_SECONDS"]),
        reconnect_max_seconds=float(config["REDIS_RECONNECT_MAX_SECONDS"]),
        burst=burst,
    )


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
