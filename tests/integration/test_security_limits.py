"""Rate limits: login failures per account and address with a growing, capped delay; the test
push, subscription writes and pledges. 429 answers carry Retry-After and `rate_limited`."""

from __future__ import annotations

import statistics
import time

from tests.factories import campaign_json
from tests.helpers import PASSWORD, csrf_from

EMAIL = "limits@webpush-server.dev"


def attempt(client, email: str, password: str):
    token = csrf_from(client.get("/login").text)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


def test_failed_logins_earn_a_wait_then_429_with_retry_after(make_app):
    app = make_app(LOGIN_ACCOUNT_FREE_FAILURES=2, LOGIN_DELAY_BASE_SECONDS=30)
    with app.app_context():
        from webpush_server.auth.services import create_user

        create_user(EMAIL, PASSWORD)
    client = app.test_client()
    assert attempt(client, EMAIL, "wrong one").status_code == 401
    assert attempt(client, EMAIL, "wrong two").status_code == 401
    assert attempt(client, EMAIL, "wrong three").status_code == 401  # this one earns the wait
    refused = attempt(client, EMAIL, PASSWORD)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 30
    assert "One moment, please" in refused.text and "Too many failed logins" in refused.text
    # Another account from the same address is not slowed by this one's failures.
    with app.app_context():
        create_user("other@webpush-server.dev", PASSWORD)
    assert attempt(client, "other@webpush-server.dev", PASSWORD).status_code == 302


def test_the_delay_grows_with_failures_and_is_capped(make_app):
    from webpush_server.auth import throttle
    from webpush_server.jobs.queues import connection

    app = make_app(
        LOGIN_ACCOUNT_FREE_FAILURES=1,
        LOGIN_DELAY_BASE_SECONDS=2,
        LOGIN_ACCOUNT_DELAY_MAX_SECONDS=7,
    )
    with app.test_request_context():
        waits = []
        for _ in range(5):
            throttle.failed(EMAIL, None)
            key = throttle._keys(EMAIL, None)[0][1]
            until = connection().hget(key, "until")
            waits.append(None if until is None else round(float(until) - time.time()))
    # 1 free failure, then 2, 4, capped at 7.
    assert waits == [None, 2, 4, 7, 7]


def test_unknown_accounts_are_throttled_like_real_ones(make_app):
    app = make_app(LOGIN_ACCOUNT_FREE_FAILURES=1, LOGIN_DELAY_BASE_SECONDS=30)
    client = app.test_client()
    assert attempt(client, "nobody@webpush-server.dev", "x").status_code == 401
    assert attempt(client, "nobody@webpush-server.dev", "x").status_code == 401
    assert attempt(client, "nobody@webpush-server.dev", "x").status_code == 429


def test_per_address_failures_stop_guessing_across_accounts(make_app):
    app = make_app(
        LOGIN_ACCOUNT_FREE_FAILURES=100, LOGIN_ADDRESS_FREE_FAILURES=3, LOGIN_DELAY_BASE_SECONDS=30
    )
    client = app.test_client()
    for i in range(4):
        assert attempt(client, f"u{i}@webpush-server.dev", "x").status_code == 401
    assert attempt(client, "u9@webpush-server.dev", "x").status_code == 429
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    assert attempt(elsewhere, "u9@webpush-server.dev", "x").status_code == 401


def test_successful_logins_never_count_and_clear_the_accounts_failures(make_app):
    app = make_app(
        LOGIN_ACCOUNT_FREE_FAILURES=2, LOGIN_ADDRESS_FREE_FAILURES=2, LOGIN_DELAY_BASE_SECONDS=30
    )
    with app.app_context():
        from webpush_server.auth.services import create_user

        create_user(EMAIL, PASSWORD)
    client = app.test_client()
    for _ in range(6):
        assert attempt(client, EMAIL, PASSWORD).status_code == 302
    assert attempt(client, EMAIL, "wrong").status_code == 401
    assert attempt(client, EMAIL, PASSWORD).status_code == 302
    # The success cleared the account's failure: two more are free again.
    assert attempt(client, EMAIL, "wrong").status_code == 401
    assert attempt(client, EMAIL, "wrong").status_code == 401


def test_login_takes_as_long_for_unknown_e_mails(app, make_user):
    from webpush_server.auth.services import authenticate

    make_user(EMAIL)
    with app.app_context():
        authenticate(EMAIL, "warm up")

        def timed(email: str) -> float:
            start = time.perf_counter()
            assert authenticate(email, "not the password") is None
            return time.perf_counter() - start

        known = statistics.median(timed(EMAIL) for _ in range(5))
        unknown = statistics.median(timed("ghost@webpush-server.dev") for _ in range(5))
    # Without the dummy hash an unknown e-mail answered ~20x faster.
    assert unknown > known * 0.5, (known, unknown)


def test_the_test_push_is_limited_per_user_with_json_429(make_app, login_as):
    app = make_app(RATELIMIT_PUSH_TEST="2 per minute")
    api, other = login_as(EMAIL, app=app), login_as("other@webpush-server.dev", app=app)
    assert api.post("/api/push/test").status_code == 202
    assert api.post("/api/push/test").status_code == 202
    over = api.post("/api/push/test")
    assert over.status_code == 429
    assert over.json["error"]["code"] == "rate_limited"
    # The window is a minute (limits rounds its reset up by a second).
    assert 1 <= int(over.headers["Retry-After"]) <= 61
    assert other.post("/api/push/test").status_code == 202


def test_subscription_writes_share_one_budget(make_app, push_service, login_as):
    app = make_app(RATELIMIT_SUBSCRIPTION_WRITES="3 per minute")
    api = login_as(EMAIL, app=app)
    device = push_service.new_subscription()
    assert api.post("/api/push/subscriptions", json=device.as_json()).status_code == 201
    assert api.delete("/api/push/subscriptions", json={"endpoint": device.endpoint}).status_code
    assert api.post("/api/push/subscriptions", json=device.as_json()).status_code == 201
    over = api.delete("/api/push/subscriptions", json={"endpoint": device.endpoint})
    assert over.status_code == 429 and over.json["error"]["code"] == "rate_limited"
    assert "Retry-After" in over.headers
    # Reading the list is not a write.
    assert api.get("/api/push/subscriptions").status_code == 200


def test_pledges_from_the_api_and_the_page_share_one_budget(make_app, login_as):
    app = make_app(RATELIMIT_PLEDGES="2 per minute")
    boss = login_as("boss@webpush-server.dev", "admin", app=app)
    campaign = boss.post("/api/funding/campaigns", json=campaign_json()).json["id"]
    backer = login_as(EMAIL, app=app)
    api_url = f"/api/funding/campaigns/{campaign}/pledges"
    page_url = f"/funding/campaigns/{campaign}/pledge"
    assert backer.post(api_url, json={"amount": 1000}).status_code == 201
    page = backer.client.post(page_url, data={"csrf_token": backer.csrf, "amount": "1000"})
    assert page.status_code == 302
    over_api = backer.post(api_url, json={"amount": 1000})
    assert over_api.status_code == 429 and over_api.json["error"]["code"] == "rate_limited"
    over_page = backer.client.post(page_url, data={"csrf_token": backer.csrf, "amount": "1000"})
    assert over_page.status_code == 429 and "Retry-After" in over_page.headers
    assert "One moment, please" in over_page.text
