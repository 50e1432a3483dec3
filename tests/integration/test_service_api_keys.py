"""API keys: the CLI, the admin page, and bearer authentication on /api/v1."""

from __future__ import annotations

import re

from tests.helpers import csrf_from, rows
from tests.service_api import bearer, make_key, notify_body
from webpush_server.service_api.keys import hash_key
from webpush_server.service_api.models import ApiKey, ApiRequest


def test_cli_creates_lists_and_revokes_keys_without_ever_listing_the_secret(runner, app, client):
    created = runner.invoke(args=["apikey", "create", "catalogue system", "--site", "library"])
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip().splitlines()[0]
    assert re.fullmatch(r"wps_[A-Za-z0-9_-]{43}", secret)
    (key,) = rows(app, ApiKey)
    assert key.key_hash == hash_key(secret) and secret not in (key.key_hash, key.prefix)
    assert key.site == "library" and key.last_used_at is None

    assert client.get("/api/v1/notifications/1", headers=bearer(secret)).status_code == 404
    listed = runner.invoke(args=["apikey", "list"])
    assert listed.exit_code == 0
    (line,) = listed.output.splitlines()
    assert line.split()[:4] == [str(key.id), "catalogue", "system", "library"]
    assert "last used never" not in line  # it was used just now
    assert secret not in listed.output

    revoked = runner.invoke(args=["apikey", "revoke", str(key.id)])
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    assert client.get("/api/v1/notifications/1", headers=bearer(secret)).status_code == 401
    again = runner.invoke(args=["apikey", "revoke", str(key.id)])
    assert again.exit_code == 1 and "already revoked" in again.output
    assert runner.invoke(args=["apikey", "revoke", "99"]).exit_code == 1
    assert runner.invoke(args=["apikey", "create", "x", "--site", "bank"]).exit_code == 2


def test_missing_unknown_malformed_and_revoked_keys_get_401(app, client, runner):
    key_id, secret = make_key(app)
    cases = {
        "missing": {},
        "unknown": bearer("wps_" + "A" * 43),
        "not bearer": {"Authorization": f"Basic {secret}"},
        "truncated": bearer(secret[:-1]),
    }
    for name, headers in cases.items():
        response = client.post("/api/v1/notifications", json=notify_body(), headers=headers)
        assert response.status_code == 401, name
        assert response.json["error"]["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    runner.invoke(args=["apikey", "revoke", str(key_id)])
    revoked = client.post("/api/v1/notifications", json=notify_body(), headers=bearer(secret))
    assert revoked.status_code == 401
    assert rows(app, ApiRequest) == []


def test_a_session_cookie_is_not_a_credential_and_needs_no_csrf_token(login_as, app, make_user):
    admin = login_as("boss@webpush-server.dev", role="admin")
    user_id = make_user("reader@webpush-server.dev")
    # Logged in, no key: 401 (not a CSRF refusal, not accepted through the session).
    no_key = admin.client.post("/api/v1/notifications", json=notify_body())
    assert no_key.status_code == 401
    # With a key and the session cookie but no CSRF token: the key alone decides.
    _, secret = make_key(app)
    response = admin.client.post(
        "/api/v1/notifications", json=notify_body({"user_id": user_id}), headers=bearer(secret)
    )
    assert response.status_code == 202, response.text
    # The session API still wants its CSRF token from the same client.
    assert admin.client.post("/api/notifications/read-all").status_code == 400


def test_admin_page_creates_a_key_shown_once_lists_and_revokes_it(login_as, app, client):
    admin = login_as("boss@webpush-server.dev", role="admin")
    page = admin.get("/admin/api-keys")
    assert page.status_code == 200 and "No keys yet" in page.text
    token = csrf_from(page.text)
    created = admin.client.post(
        "/admin/api-keys", data={"name": "payments", "site": "funding", "csrf_token": token}
    )
    assert created.status_code == 200
    secret = re.search(r'<code id="new-key-secret">(wps_[^<]+)</code>', created.text).group(1)
    (key,) = rows(app, ApiKey)
    assert key.key_hash == hash_key(secret) and key.site == "funding"
    listing = admin.get("/admin/api-keys").text
    assert secret not in listing and key.prefix in listing and "payments" in listing

    no_token = admin.client.post(f"/admin/api-keys/{key.id}/revoke")
    assert no_token.status_code == 400 and rows(app, ApiKey)[0].revoked_at is None
    revoked = admin.client.post(f"/admin/api-keys/{key.id}/revoke", data={"csrf_token": token})
    assert revoked.status_code == 302
    assert rows(app, ApiKey)[0].revoked_at is not None
    assert client.get("/api/v1/notifications/1", headers=bearer(secret)).status_code == 401

    refused = admin.client.post(
        "/admin/api-keys", data={"name": "", "site": "all", "csrf_token": token}
    )
    assert refused.status_code == 302 and len(rows(app, ApiKey)) == 1


def test_only_admins_see_the_api_keys_page(login_as, client):
    librarian = login_as("desk@webpush-server.dev", role="librarian")
    assert librarian.get("/admin/api-keys").status_code == 403
    assert client.get("/admin/api-keys").status_code == 302  # to the login form
