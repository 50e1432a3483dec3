"""GET /metrics: who may read it, and that a web and a worker process add up in one scrape."""

from __future__ import annotations

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import subscribe
from tests.helpers import Process, process_env, start_web, wait_until
from webpush_server.devrun import flask_command
from webpush_server.jobs.queues import queue

TOKEN = "scrape-token-for-tests"


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a scrape, keyed by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_for_admins_and_the_token_only(make_app, login_as):
    app = make_app(METRICS_TOKEN=TOKEN)
    anonymous = app.test_client().get("/metrics")
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = app.test_client().get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403
    for role in ("patron", "librarian"):
        assert login_as(f"{role}@ops.dev", role=role, app=app).get("/metrics").status_code == 403
    admin = login_as("boss@ops.dev", role="admin", app=app).get("/metrics")
    assert admin.status_code == 200 and admin.mimetype == "text/plain"
    scraped = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert scraped.status_code == 200
    found = samples(scraped.text)
    assert found[("webpush_queue_depth", frozenset({("queue", "push")}))] == 0


def test_a_delivery_and_a_job_run_in_the_worker_show_in_the_web_scrape(
    app, settings, patron_api, push_service, tmp_path
):
    # One host: gunicorn and the worker share the multiprocess folder, as make run sets up.
    folder = tmp_path / "prometheus"
    folder.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(folder), "METRICS_TOKEN": TOKEN}
    url, web = start_web(settings, app.instance_path, tmp_path / "web.log", **env)
    worker = Process(
        flask_command("jobs", "worker"),
        process_env(settings, app.instance_path, **env),
        tmp_path / "worker.log",
    )

    def scrape() -> dict:
        answer = requests.get(
            f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
        )
        assert answer.status_code == 200, answer.text
        return samples(answer.text)

    origin = push_service.origin

    def key(name: str, **labels: str) -> tuple[str, frozenset]:
        return name, frozenset(labels.items())

    sent = key("webpush_deliveries_total", channel="push", outcome="sent", origin=origin)
    delivery_job = key("webpush_job_runs_total", job="deliver-batch", status="ok")
    sweep_job = key("webpush_job_runs_total", job="sweep-outbox", status="ok")
    try:
        assert sent not in scrape()
        (device,) = subscribe(patron_api, push_service)
        assert patron_api.post("/api/push/test").status_code == 202
        # Outcomes are counted as each sub-batch is written, the job when it ends: wait for both.
        wait_until(
            lambda: (now := scrape()).get(sent) == 1 and delivery_job in now,
            "the sent delivery and its job in the scrape",
        )
        found = scrape()
        assert found[delivery_job] == 1
        assert found[key("webpush_send_seconds_count", origin=origin)] == 1
        assert len(push_service.pushes_for(device.endpoint)) == 1

        with app.app_context():
            queue("default").enqueue("webpush_server.jobs.delivery.sweep_outbox")
        wait_until(lambda: scrape().get(sweep_job) == 1, "the sweep job run in the scrape")
        assert scrape()[key("webpush_queue_depth", queue="default")] == 0
    finally:
        worker.stop()
        web.stop()
