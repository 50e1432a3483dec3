"""GET /api/openapi.json describes every JSON endpoint; /api/docs renders it from our files."""

from __future__ import annotations

import re

from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from tests.factories import add_device
from tests.service_api import bearer, make_key, notify_body
from webpush_server.service_api.openapi import NOT_JSON


def test_the_document_is_valid_openapi_3_1_and_lists_every_api_route(app, client, login_as):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    spec = response.json
    validate(spec)  # raises on an invalid document
    assert spec["openapi"].startswith("3.1")
    documented = {
        (path, method) for path, operations in spec["paths"].items() for method in operations
    }
    routes = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        if getattr(app.view_functions[rule.endpoint], NOT_JSON, False):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        routes.update((path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"})
    assert routes - documented == set(), "undocumented /api/ routes"
    outside = {path for path in spec["paths"] if not path.startswith("/api/")}
    assert documented - routes == {(path, "get") for path in outside}
    # What the not-JSON marker leaves out: the docs page and its files, nothing else.
    left_out = {
        r.rule
        for r in app.url_map.iter_rules()
        if r.rule.startswith("/api/") and getattr(app.view_functions[r.endpoint], NOT_JSON, False)
    }
    assert left_out == {"/api/docs", "/api/docs/vendor/<path:filename>"}
    # Outside /api/: every GET that answers JSON is documented, and nothing else is. An
    # admin asks, so that no page is hidden behind a login redirect.
    assert outside == {"/healthz", "/readyz", "/i18n/{language}.json"}
    admin = login_as("ops@openapi.webpush-server.dev", "admin")
    answered_json = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(("/api/", "/static/", "/admin/rq/", "/ws")) or rule.arguments:
            continue
        if "GET" not in rule.methods:
            continue
        with admin.get(rule.rule) as answer:  # a file response holds its file open
            assert answer.status_code < 400, rule.rule
            if answer.mimetype == "application/json":
                answered_json.add(rule.rule)
    assert client.get("/i18n/ko.json").mimetype == "application/json"
    assert answered_json | {"/i18n/{language}.json"} == outside

    trigger = spec["paths"]["/api/v1/notifications"]["post"]
    assert trigger["security"] == [{"apiKey": []}]
    body = trigger["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body == "#/components/schemas/TriggerRequest"
    assert {"202", "400", "401", "403", "422", "429"} <= set(trigger["responses"])
    assert "Idempotency-Key" in {p["name"] for p in trigger["parameters"]}
    inbox = spec["paths"]["/api/notifications"]["get"]
    assert inbox["security"] == [{"session": [], "csrf": []}]
    assert {"unread", "limit", "before"} <= {p["name"] for p in inbox["parameters"]}
    schemes = spec["components"]["securitySchemes"]
    assert schemes["apiKey"]["scheme"] == "bearer" and schemes["csrf"]["in"] == "header"
    error = spec["components"]["schemas"]["Error"]
    assert set(error["properties"]) == {"code", "message", "field"}


def _validator(spec: dict, path: str, method: str, status: int) -> OAS31Validator:
    schema = spec["paths"][path][method]["responses"][str(status)]["content"]["application/json"]
    return OAS31Validator(schema["schema"] | {"components": spec["components"]})


def test_real_answers_match_the_documented_shapes(app, client, login_as, make_user, push_service):
    """The document says what the code answers: real responses validate against it."""
    spec = client.get("/api/openapi.json").json
    reader_id = make_user("reader@webpush-server.dev")
    add_device(app, reader_id, push_service)
    _, key = make_key(app)
    headers = bearer(key, **{"Idempotency-Key": "shape"})
    sent = client.post(
        "/api/v1/notifications",
        json=notify_body({"user_id": reader_id}, data={"a": 1}),
        headers=headers,
    )
    checks = [
        ("/api/v1/notifications", "post", sent),
        (
            "/api/v1/notifications/{request_id}",
            "get",
            client.get(f"/api/v1/notifications/{sent.json['id']}", headers=bearer(key)),
        ),
    ]
    reader = login_as("reader@webpush-server.dev")
    checks += [
        ("/api/notifications", "get", reader.get("/api/notifications")),
        ("/api/push/subscriptions", "get", reader.get("/api/push/subscriptions")),
        ("/api/push/test", "post", reader.post("/api/push/test")),
        ("/api/library/books", "get", reader.get("/api/library/books")),
        ("/api/funding/campaigns", "get", reader.get("/api/funding/campaigns")),
        ("/api/notifications/read-all", "post", reader.post("/api/notifications/read-all")),
        (
            "/api/v1/notifications",
            "post",
            client.post("/api/v1/notifications", json={}, headers=bearer(key)),
        ),
        ("/api/notifications/{notification_id}", "get", reader.get("/api/notifications/999")),
        ("/healthz", "get", client.get("/healthz")),
        ("/readyz", "get", client.get("/readyz")),
        ("/i18n/{language}.json", "get", client.get("/i18n/ko.json")),
        ("/i18n/{language}.json", "get", client.get("/i18n/xx.json")),
    ]
    for path, method, response in checks:
        _validator(spec, path, method, response.status_code).validate(response.json)


def test_the_docs_page_uses_only_our_own_scripts(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page.text, re.S)
    assert scripts and all(not body.strip() for _, body in scripts), "inline script"
    sources = [re.search(r'src="([^"]+)"', attrs).group(1) for attrs, _ in scripts]
    assert all(src.startswith("/") and not src.startswith("//") for src in sources)
    for src in sources + re.findall(r'<link rel="stylesheet" href="([^"]+)"', page.text):
        with client.get(src) as asset:
            assert asset.status_code == 200 and len(asset.data) > 100, src
    assert "swagger-ui-bundle.js" in " ".join(sources)
