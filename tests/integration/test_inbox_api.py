"""The inbox: list, paginate, read one, mark read; nobody sees another user's notifications."""

from __future__ import annotations

from tests.helpers import csrf_from
from webpush_server.extensions import db
from webpush_server.notifications.record import Notice, record_notices


def seed(app, user_id: int, count: int) -> list[int]:
    with app.app_context():
        ids = record_notices(
            [
                Notice(user_id, "test", f"n{i}", f"body {i}", f"/n/{i}", f"inbox:{user_id}:{i}")
                for i in range(count)
            ]
        )
        db.session.commit()
        return ids


def test_inbox_lists_newest_first_with_unread_count_and_keyset_pages(app, make_user, login_as):
    user_id = make_user("inbox@webpush-server.dev")
    api = login_as("inbox@webpush-server.dev")
    ids = seed(app, user_id, 5)
    first = api.get("/api/notifications?limit=2").json
    assert [n["id"] for n in first["notifications"]] == ids[::-1][:2]
    assert first["unread_count"] == 5
    assert set(first["notifications"][0]) == {
        "id",
        "kind",
        "title",
        "body",
        "url",
        "tag",
        "created_at",
        "read_at",
    }
    rest = api.get(f"/api/notifications?before={ids[3]}").json
    assert [n["id"] for n in rest["notifications"]] == ids[:3][::-1]


def test_mark_read_and_read_all(app, make_user, login_as):
    user_id = make_user("reader2@webpush-server.dev")
    api = login_as("reader2@webpush-server.dev")
    ids = seed(app, user_id, 3)
    marked = api.post(f"/api/notifications/{ids[0]}/read")
    assert marked.status_code == 200
    assert marked.json["read_at"] and marked.json["unread_count"] == 2
    unread = api.get("/api/notifications?unread=1").json
    assert [n["id"] for n in unread["notifications"]] == [ids[2], ids[1]]
    assert api.post("/api/notifications/read-all").json["marked"] == 2
    assert api.get("/api/notifications").json["unread_count"] == 0


def test_other_users_notifications_are_invisible(app, make_user, login_as):
    owner = make_user("owner@webpush-server.dev")
    (notification_id,) = seed(app, owner, 1)
    snoop = login_as("snoop@webpush-server.dev")
    assert snoop.get(f"/api/notifications/{notification_id}").status_code == 404
    assert snoop.post(f"/api/notifications/{notification_id}/read").status_code == 404
    assert snoop.get("/api/notifications").json == {"notifications": [], "unread_count": 0}


def test_bad_query_parameters_name_the_field(patron_api):
    for query, field in (("limit=0", "limit"), ("limit=abc", "limit"), ("before=-1", "before")):
        response = patron_api.get(f"/api/notifications?{query}")
        assert response.status_code == 400
        assert response.json["error"]["field"] == field


def test_inbox_needs_login(client):
    response = client.get("/api/notifications")
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"


def test_pages_redirect_to_login_and_back(client, make_user):
    response = client.get("/notifications")
    assert response.status_code == 302
    assert "/login?next=/notifications" in response.headers["Location"]


def test_login_refuses_wrong_password_and_foreign_next(app, make_user):
    make_user("login@webpush-server.dev")
    client = app.test_client()
    token = csrf_from(client.get("/login").text)
    wrong = client.post(
        "/login",
        data={"email": "login@webpush-server.dev", "password": "nope", "csrf_token": token},
    )
    assert wrong.status_code == 401
    assert "Wrong e-mail or password" in wrong.text
    no_csrf = client.post(
        "/login", data={"email": "login@webpush-server.dev", "password": "correct horse battery"}
    )
    assert no_csrf.status_code == 400
    ok = client.post(
        "/login",
        data={
            "email": "LOGIN@webpush-server.dev",
            "password": "correct horse battery",
            "csrf_token": token,
            "next": "//evil.example.org/",
        },
    )
    assert ok.status_code == 302
    assert ok.headers["Location"] == "/"


def test_logout_needs_post_with_csrf(patron_api):
    assert patron_api.client.get("/logout").status_code == 405
    assert patron_api.client.post("/logout").status_code == 400
    response = patron_api.client.post("/logout", data={"csrf_token": patron_api.csrf})
    assert response.status_code == 302
    assert patron_api.get("/api/notifications").status_code == 401


def test_service_worker_and_manifest_are_served_for_the_whole_scope(client):
    worker = client.get("/service-worker.js")
    assert worker.status_code == 200
    assert worker.headers["Service-Worker-Allowed"] == "/"
    assert "no-cache" in worker.headers["Cache-Control"]
    assert "javascript" in worker.headers["Content-Type"]
    assert "addEventListener" in worker.text
    worker.close()
    manifest = client.get("/manifest.webmanifest")
    assert manifest.status_code == 200
    assert manifest.headers["Content-Type"].startswith("application/manifest+json")
    assert manifest.json["start_url"] == "/" and manifest.json["icons"]
    manifest.close()


def test_every_page_carries_the_csrf_meta_tag(patron_api):
    for path in ("/", "/notifications", "/login"):
        html = patron_api.get(path).text
        assert '<meta name="csrf-token" content="' in html, path
