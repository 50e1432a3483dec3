"""GET /api/me: the session's own account, as the OpenAPI document describes it."""

from __future__ import annotations

from openapi_schema_validator import OAS31Validator


def test_me_answers_the_session_s_own_account_and_401_without_one(app, client, login_as):
    assert client.get("/api/me").status_code == 401
    assert client.get("/api/me").json["error"]["code"]

    desk = login_as("desk@me.webpush-server.dev", role="librarian", name="Desk Kim")
    response = desk.get("/api/me")
    assert response.status_code == 200
    body = response.json
    assert set(body) == {"id", "email", "name", "role"}
    assert body["email"] == "desk@me.webpush-server.dev"
    assert (body["name"], body["role"]) == ("Desk Kim", "librarian")
    assert response.headers["Cache-Control"] == "no-store"
    patron = login_as("reader@me.webpush-server.dev")
    other = patron.get("/api/me").json
    assert other["role"] == "patron" and other["id"] != body["id"]

    spec = client.get("/api/openapi.json").json
    schema = spec["paths"]["/api/me"]["get"]["responses"]["200"]["content"]["application/json"]
    OAS31Validator(schema["schema"] | {"components": spec["components"]}).validate(body)
    assert "401" in spec["paths"]["/api/me"]["get"]["responses"]
