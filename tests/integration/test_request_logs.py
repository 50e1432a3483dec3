"""Request ids: taken or made, echoed, carried into jobs and the worker's log; JSON logs."""

from __future__ import annotations

import json

from redis import Redis
from rq import Queue

from tests.factories import subscribe
from tests.helpers import Process, process_env, start_web, wait_until
from webpush_server.devrun import flask_command
from webpush_server.jobs.queues import DELIVERY_QUEUE


def json_lines(text: str) -> list[dict]:
    """Every log line as JSON; fails on a line that is not."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_request_id_is_echoed_when_valid_and_made_otherwise(client):
    given = client.get("/healthz", headers={"X-Request-ID": "checkout-7f3a"})
    assert given.headers["X-Request-ID"] == "checkout-7f3a"
    for bad in ("x" * 201, "tab\there", " padded", "caf\u00e9"):
        made = client.get("/healthz", headers={"X-Request-ID": bad})
        assert made.headers["X-Request-ID"] not in (bad, "")
        assert len(made.headers["X-Request-ID"]) == 32
    first, second = client.get("/healthz"), client.get("/healthz")
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


def test_enqueued_delivery_jobs_carry_the_request_id(app, patron_api, push_service, redis_url):
    subscribe(patron_api, push_service)
    response = patron_api.post("/api/push/test", headers={"X-Request-ID": "req-enqueue-1"})
    assert response.status_code == 202
    (job,) = Queue(DELIVERY_QUEUE, connection=Redis.from_url(redis_url)).get_jobs()
    assert job.meta["request_id"] == "req-enqueue-1"


def test_json_web_log_lines_parse_and_carry_the_request_id(app, settings, tmp_path):
    url, server = start_web(settings, app.instance_path, tmp_path / "web.log", LOG_FORMAT="json")
    try:
        import requests

        answer = requests.get(f"{url}/healthz", headers={"X-Request-ID": "web-json-42"}, timeout=10)
        assert answer.headers["X-Request-ID"] == "web-json-42"
        wait_until(lambda: "web-json-42" in server.output(), "the access line")
    finally:
        server.stop()
    lines = json_lines(server.output())  # gunicorn's own lines are JSON too
    (access,) = [line for line in lines if line.get("request_id") == "web-json-42"]
    assert access["logger"] == "webpush_server.access"
    assert access["path"] == "/healthz" and access["status"] == 200
    assert {"time", "level", "message", "user_id"} <= access.keys()
    assert any(line["logger"] == "gunicorn.error" for line in lines)


def test_the_request_id_reaches_the_worker_log(app, settings, patron_api, push_service, tmp_path):
    (device,) = subscribe(patron_api, push_service)
    worker = Process(
        flask_command("jobs", "worker"),
        process_env(settings, app.instance_path, LOG_FORMAT="json"),
        tmp_path / "worker.log",
    )
    try:
        response = patron_api.post("/api/push/test", headers={"X-Request-ID": "req-to-worker"})
        assert response.status_code == 202
        wait_until(lambda: push_service.pushes_for(device.endpoint), "the push")
        wait_until(lambda: "req-to-worker" in worker.output(), "the worker's log line")
    finally:
        worker.stop()
    lines = [line for line in json_lines(worker.output()) if line["request_id"] == "req-to-worker"]
    claimed = [line for line in lines if line["logger"] == "webpush_server.jobs.delivery"]
    assert claimed and len(claimed[0]["delivery_ids"]) == 1
    assert claimed[0]["level"] == "info"
