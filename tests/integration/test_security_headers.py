"""Security headers on every response, caching rules, and pages that need no inline script."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from tests.factories import campaign_json
from tests.helpers import Api


def directives(response) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    return dict(part.strip().split(" ", 1) for part in policy.split(";"))


def test_every_response_carries_the_security_headers(client):
    for url in ("/login", "/api/push/vapid-public-key", "/static/css/app.css", "/nowhere"):
        response = client.get(url)
        response.close()  # a static file answers with an open file
        csp = directives(response)
        assert csp["script-src"] == "'self'", url
        assert csp["frame-ancestors"] == "'none'"
        assert csp["connect-src"] == "'self' ws://localhost wss://localhost"
        assert "'unsafe-inline'" not in csp["script-src"] + csp["default-src"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
        permissions = response.headers["Permissions-Policy"]
        for feature in ("camera=()", "microphone=()", "geolocation=()"):
            assert feature in permissions
        assert "Strict-Transport-Security" not in response.headers


def test_hsts_only_when_cookies_are_secure(make_app):
    secure = make_app(SESSION_COOKIE_SECURE=True).test_client()
    hsts = secure.get("/login", base_url="https://localhost").headers["Strict-Transport-Security"]
    assert hsts.startswith("max-age=31536000")


def test_authenticated_pages_and_the_api_are_not_stored(patron_api, client):
    assert patron_api.get("/notifications").headers["Cache-Control"] == "no-store"
    assert patron_api.get("/api/notifications").headers["Cache-Control"] == "no-store"
    assert client.get("/api/push/vapid-public-key").headers["Cache-Control"] == "no-store"
    with patron_api.get("/static/js/live.js") as static:
        assert "no-store" not in static.headers.get("Cache-Control", "")
    worker = patron_api.get("/service-worker.js")
    worker.close()
    assert worker.headers["Cache-Control"] == "no-cache"
    assert worker.headers["Service-Worker-Allowed"] == "/"


class ScriptAudit(HTMLParser):
    """Collect inline scripts and inline event handlers of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self._in_inline_script = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        names = dict(attrs)
        for name, _ in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=…>")
            if name in ("href", "src", "action") and (names[name] or "").startswith("javascript:"):
                self.problems.append(f"<{tag} {name}=javascript:…>")
        if tag == "script" and not names.get("src"):
            self._in_inline_script = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_inline_script = False

    def handle_data(self, data: str) -> None:
        if self._in_inline_script and data.strip():
            self.problems.append(f"inline <script>: {data.strip()[:60]}")


def test_no_page_needs_inline_script(app, make_user):
    make_user("boss@webpush-server.dev", role="admin")
    admin = Api(app.test_client())
    admin.login("boss@webpush-server.dev")
    campaign = admin.post("/api/funding/campaigns", json=campaign_json()).json["id"]
    book = admin.post(
        "/api/library/books", json={"title": "Dune", "author": "F. Herbert", "copies": 1}
    ).json["id"]
    pages = [
        "/",
        "/notifications",
        "/library/",
        f"/library/books/{book}",
        "/library/holds",
        "/library/loans",
        "/library/desk",
        "/funding/",
        f"/funding/campaigns/{campaign}",
        f"/funding/admin/campaigns/{campaign}/edit",
        "/funding/admin/campaigns/new",
        "/funding/pledges",
        "/funding/coupons",
        "/account/password",
        "/admin/audit",
        "/nowhere",
    ]
    for url in pages:
        response = admin.get(url)
        assert response.status_code in (200, 404), url
        audit = ScriptAudit()
        audit.feed(response.text)
        assert audit.problems == [], url
    anonymous = app.test_client().get("/login")
    audit = ScriptAudit()
    audit.feed(anonymous.text)
    assert audit.problems == []
    assert re.search(r'<script type="module" src="/static/js/', admin.get("/").text)
