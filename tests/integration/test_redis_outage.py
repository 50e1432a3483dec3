"""Redis goes away and comes back empty: the worker and the scheduler carry on.

Each test has a redis-server of its own (no persistence), which it SIGKILLs and starts
again on the same port, as a crashed or redeployed Redis comes back: empty.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from redis import Redis
from rq import Worker
from rq_scheduler import Scheduler

from tests.factories import add_device
from tests.helpers import Process, delivery_statuses, free_port, process_env, wait_until
from tests.pushservice import Reply
from webpush_server import redis_server
from webpush_server.devrun import flask_command
from webpush_server.extensions import db
from webpush_server.jobs import schedule
from webpush_server.notifications.record import Notice, record_notices


class OwnRedis:
    """A redis-server on a fixed port that a test kills and starts again, empty."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.process = redis_server.start(self.folder, port=self.port)

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture
def own_redis(tmp_path):
    server = OwnRedis(tmp_path / "redis")
    yield server
    server.stop()


def notify(app, user_id: int, key: str) -> int:
    """Record one `test` notification for user_id (enqueued on the app's Redis); its id."""
    with app.app_context():
        [notification_id] = record_notices([Notice(user_id, "test", key, "body", "/", key)])
        db.session.commit()
    return notification_id


def test_a_worker_outlives_a_redis_restart_and_runs_new_and_scheduled_jobs(
    make_app, make_user, settings, push_service, own_redis, tmp_path
):
    app = make_app(REDIS_URL=own_redis.url)
    patient = make_user("slow@outage.webpush-server.dev")
    slow = add_device(app, patient, push_service)
    later = make_user("later@outage.webpush-server.dev")
    retried = add_device(app, later, push_service)
    env = process_env(
        settings,
        app.instance_path,
        REDIS_URL=own_redis.url,
        FLASK_REDIS_RECONNECT_MAX_SECONDS="1",
    )
    worker = Process(flask_command("jobs", "worker", "--name", "outlives"), env, tmp_path / "w.log")
    connection = Redis.from_url(own_redis.url)
    try:
        wait_until(lambda: len(Worker.all(connection=connection)) == 1, "the worker listening")
        # Redis dies while a job is in flight: RQ's bookkeeping after it fails, which
        # used to end the worker ("found an unhandled exception, quitting").
        push_service.respond(slow.endpoint, Reply(201, delay=2))
        first = notify(app, patient, "in flight")
        wait_until(lambda: delivery_statuses(app, first) == ["sending"], "the job in flight")
        own_redis.kill()
        wait_until(lambda: delivery_statuses(app, first) == ["sent"], "the slow push written")
        wait_until(
            lambda: "Redis unreachable" in worker.output() or worker.process.poll() is not None,
            "the worker waiting for Redis",
        )
        assert worker.process.poll() is None, worker.output()[-3000:]
        own_redis.start()
        wait_until(
            lambda: len(Worker.all(connection=connection)) == 1, "the worker registered again"
        )
        # A new job runs, and its retry (RQ's scheduler, forked by the worker) too.
        push_service.respond(retried.endpoint, Reply(503))
        second = notify(app, later, "after the restart")
        wait_until(
            lambda: delivery_statuses(app, second) == ["sent"], "the retried push sent", timeout=30
        )
        assert worker.process.poll() is None, worker.output()[-3000:]
    finally:
        worker.stop()
        connection.close()
    statuses = [p.status for p in push_service.pushes_for(retried.endpoint)]
    assert statuses == [503, 201]
    assert "working again" in worker.output() or "Redis is back" in worker.output()


def test_a_worker_registers_again_when_redis_comes_back_empty_without_an_error(
    make_app, make_user, settings, push_service, own_redis, tmp_path
):
    # A Redis restarted within redis-py's own retry of a command: the worker sees no error,
    # only an empty Redis. Emptying it between two commands is that, every time.
    app = make_app(REDIS_URL=own_redis.url)
    user = make_user("emptied@outage.webpush-server.dev")
    add_device(app, user, push_service)
    env = process_env(settings, app.instance_path, REDIS_URL=own_redis.url)
    worker = Process(flask_command("jobs", "worker", "--name", "emptied"), env, tmp_path / "w.log")
    connection = Redis.from_url(own_redis.url)
    try:
        wait_until(lambda: len(Worker.all(connection=connection)) == 1, "the worker listening")
        connection.flushall()
        assert Worker.all(connection=connection) == []
        notification = notify(app, user, "after the flush")
        wait_until(lambda: delivery_statuses(app, notification) == ["sent"], "the push sent")
        wait_until(
            lambda: [w.name for w in Worker.all(connection=connection)] == ["emptied"],
            "the worker registered again",
        )
        assert worker.process.poll() is None, worker.output()[-3000:]
    finally:
        worker.stop()
        connection.close()
    assert "Redis lost its registration; registering again" in worker.output()


def cron_ids(connection: Redis) -> set[str]:
    return {job.id for job in Scheduler(connection=connection).get_jobs()}


@pytest.mark.filterwarnings("ignore::FutureWarning:rq_scheduler")
def test_the_scheduler_outlives_redis_and_reinstalls_every_cron_entry_it_lost(
    make_app, settings, own_redis, tmp_path
):
    app = make_app(REDIS_URL=own_redis.url)
    wanted = {entry.id for entry in schedule.cron_entries(schedule.table(app).values())}
    assert "sweep-outbox" in wanted
    env = process_env(
        settings,
        app.instance_path,
        REDIS_URL=own_redis.url,
        FLASK_REDIS_RECONNECT_MAX_SECONDS="1",
        FLASK_SCHEDULER_CHECK_SECONDS="1",
    )
    scheduler = Process(flask_command("jobs", "scheduler"), env, tmp_path / "scheduler.log")
    connection = Redis.from_url(own_redis.url)
    try:
        wait_until(lambda: cron_ids(connection) == wanted, "the cron table installed")
        # Redis dies and comes back empty.
        own_redis.kill()
        wait_until(lambda: "Redis unreachable" in scheduler.output(), "the scheduler waiting")
        own_redis.start()
        wait_until(lambda: cron_ids(connection) == wanted, "the cron table reinstalled")
        # Emptied between two looks (no error seen): the periodic check finds it.
        connection.flushall()
        wait_until(lambda: cron_ids(connection) == wanted, "the cron table reinstalled again")
        assert scheduler.process.poll() is None, scheduler.output()[-3000:]
    finally:
        scheduler.stop()
        connection.close()
    assert scheduler.output().count("cron entries missing from Redis, reinstalled") >= 2
    # A stop asked while it runs is a clean one.
    assert scheduler.process.returncode == 0, scheduler.output()[-3000:]
