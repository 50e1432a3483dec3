"""/healthz says the process is up; /readyz says whether the database and Redis answer."""

from __future__ import annotations

from tests.helpers import free_port
from webpush_server import redis_server


def test_healthz_answers_without_touching_dependencies(make_app):
    # Nothing listens on this Redis port and the database file's folder does not exist.
    app = make_app(
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
        SQLALCHEMY_DATABASE_URI="sqlite:////nonexistent/folder/db.sqlite",
    )
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_is_503_while_redis_is_down_and_200_when_it_is_back(make_app, tmp_path):
    port = free_port()
    redis = redis_server.start(tmp_path / "redis", port=port)
    try:
        app = make_app(REDIS_URL=f"redis://127.0.0.1:{port}/0")
        client = app.test_client()
        up = client.get("/readyz")
        assert up.status_code == 200, up.json
        assert up.json["checks"] == {"database": "ok", "redis": "ok"}

        redis.terminate()
        redis.wait(10)
        down = client.get("/readyz")
        assert down.status_code == 503
        assert down.json["down"] == ["redis"]
        assert down.json["checks"]["database"] == "ok"
        assert "redis" in down.json["checks"] and down.json["checks"]["redis"] != "ok"

        redis = redis_server.start(tmp_path / "redis", port=port)
        back = client.get("/readyz")
        assert back.status_code == 200, back.json
    finally:
        redis.terminate()
        redis.wait(10)


def test_readyz_names_the_database_when_it_is_down(make_app):
    app = make_app(SQLALCHEMY_DATABASE_URI="sqlite:////nonexistent/folder/db.sqlite")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["down"] == ["database"]
    assert response.json["checks"]["redis"] == "ok"
