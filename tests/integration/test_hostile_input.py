"""Hostile input never earns a 5xx: every JSON endpoint, driven by Hypothesis, and the pages.

Huge and Unicode numbers, numbers past Python's 4,300-digit int limit, lone surrogates, JSON
nested 30,000 deep, dates at the end of the calendar, CR/LF in redirects: each is the client's
mistake, answered with a 4xx that names the field (where one input is at fault) and writes
nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.factories import add_book, add_campaign, add_device, campaign_json
from tests.helpers import count, csrf_from
from webpush_server.extensions import db
from webpush_server.funding.models import Campaign, Pledge
from webpush_server.library.models import Book
from webpush_server.push.models import Subscription

# Numbers that are not row ids: past 2^63 - 1, Unicode digits int() reads ("１０００") or
# refuses ("²"), and a 5,000-digit number, past Python's int-to-text limit.
HUGE = "9" * 5000
HOSTILE_PATH_INTS = [
    "9223372036854775808",
    "18446744073709551616",
    "99999999999999999999999",
    HUGE,
    "²",
    "１０００",
    "٣",
    "0",
    "00000000000000000000001",
]
HOSTILE_STRINGS = [
    "\ud800",
    "a\udfffb",
    "²",
    "１０００",
    HUGE,
    "9223372036854775808",
    "-9223372036854775809",
    "9999-12-31T23:59-12:00",
    "9999-12-31T23:59:59.999999-23:59",
    "0001-01-01T00:00+14:00",
    "/\r\nLocation: https://evil.example",
    "\x00",
    "",
    " ",
    "x" * 20_000,
]
# A raw JSON number literal per marker: json.dumps cannot write a 5,000-digit int.
RAW_NUMBERS = {
    "<<big>>": "9223372036854775808",
    "<<bigger>>": "18446744073709551616",
    "<<negative>>": "-9223372036854775809",
    "<<digits>>": HUGE,
    "<<exponent>>": "1e400",
    "<<fraction>>": "1.5",
}
DEEP = "[" * 30_000 + "]" * 30_000
DEEP_OBJECT = '{"a":' * 30_000 + "1" + "}" * 30_000
RAW_BODIES = [
    DEEP,
    DEEP_OBJECT,
    '{"title": "\\ud800", "author": "\\udc00"}',
    '"\\ud800"',
    "{" + '"a":' * 5 + "}",
    "[" + HUGE + "]",
    "NaN",
    "\xff\xfe",
]

hostile_scalar = st.one_of(
    st.sampled_from(HOSTILE_STRINGS),
    st.sampled_from(list(RAW_NUMBERS)),
    st.sampled_from([2**31, 2**63, -(2**63) - 1, 2**64, 10**30, -1, 0, True, None, 1.5]),
)
hostile_value = st.one_of(
    hostile_scalar,
    st.lists(hostile_scalar, max_size=3),
    st.dictionaries(st.sampled_from(["p256dh", "auth", "a"]), hostile_scalar, max_size=2),
)


@dataclass
class Tally:
    """What the property test tried and which answers were 5xx."""

    tried: int = 0
    failures: list[str] = field(default_factory=list)


def dump(body: object) -> str:
    """Return body as JSON text, the raw-number markers replaced by their literals."""
    text = json.dumps(body)
    for marker, literal in RAW_NUMBERS.items():
        text = text.replace(json.dumps(marker), literal)
    return text


@pytest.fixture
def world(make_app, login_as, push_service):
    """An admin (who passes every role check) and one row of each kind the routes name."""
    # Limits high enough never to answer 429 (RATELIMIT_ENABLED=False would switch off the
    # process-wide limiter for every app after this one).
    roomy = "100000 per minute"
    app = make_app(
        RATELIMIT_PUSH_TEST=roomy, RATELIMIT_SUBSCRIPTION_WRITES=roomy, RATELIMIT_PLEDGES=roomy
    )
    admin = login_as("root@webpush-server.dev", role="admin", app=app)
    book_id, copy_ids = add_book(admin, copies=2)
    campaign_id = add_campaign(admin)
    hold = admin.post(f"/api/library/books/{book_id}/holds")
    with app.app_context():
        user_id = db.session.scalar(select(Campaign.created_by))
    device = add_device(app, user_id, push_service)
    valid = {
        "book_id": str(book_id),
        "copy_id": str(copy_ids[0]),
        "campaign_id": str(campaign_id),
        "hold_id": str(hold.json.get("id", 1)),
        "notification_id": "1",
        "code": "ABCDEFGHJKLMNPQR",
    }
    bodies = {
        "title": "Piranesi",
        "author": "Susanna Clarke",
        "isbn": None,
        "copies": 1,
        "count": 1,
        "copy_id": copy_ids[1],
        "user_email": "root@webpush-server.dev",
        "amount": 1000,
        **campaign_json(),
        **device.as_json(oldEndpoint=device.endpoint),
    }
    return app, admin, valid, bodies


def json_routes(app) -> list[tuple[str, str]]:
    """Every (rule, method) under /api/."""
    return sorted(
        (rule.rule, method)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    )


def test_every_json_endpoint_answers_hostile_input_without_a_5xx(world, capsys):
    app, admin, valid, bodies = world
    routes = json_routes(app)
    assert len(routes) >= 30, routes
    tally = Tally()

    @settings(
        max_examples=600,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=st.data())
    def probe(data):
        rule, method = data.draw(st.sampled_from(routes), label="route")
        url = rule
        for name in valid:
            placeholder = next((p for p in (f"<int:{name}>", f"<{name}>") if p in url), None)
            if placeholder:
                value = data.draw(st.sampled_from([valid[name], *HOSTILE_PATH_INTS]), label=name)
                url = url.replace(placeholder, quote(value, safe=""))
        query = data.draw(
            st.dictionaries(
                st.sampled_from(["limit", "before", "after", "unread", "all", "q"]),
                st.sampled_from(HOSTILE_STRINGS[1:] + ["1", "50"]),
                max_size=3,
            ),
            label="query",
        )
        if data.draw(st.integers(0, 2), label="raw body") == 0:
            text = data.draw(st.sampled_from(RAW_BODIES), label="body")
        else:
            body = dict(bodies)
            for name in data.draw(
                st.lists(st.sampled_from(sorted(bodies)), min_size=1, max_size=6), label="fields"
            ):
                body[name] = data.draw(hostile_value, label=name)
            text = dump(body)
        headers = {"X-CSRFToken": admin.csrf, "Content-Type": "application/json"}
        after = query.get("after")
        if (
            after is not None
            and after.isascii()
            and after.isprintable()
            and data.draw(st.booleans(), label="as header")
        ):
            headers["Last-Event-ID"] = query.pop("after")
        response = admin.client.open(
            url,
            method=method,
            query_string={k: v.encode("utf-8", "surrogatepass") for k, v in query.items()},
            data=text.encode("utf-8", "surrogatepass"),
            headers=headers,
        )
        status = response.status_code
        response.close()
        tally.tried += 1
        if status >= 500:
            tally.failures.append(f"{method} {url[:80]} {query} {text[:80]!r} -> {status}")

    probe()
    with capsys.disabled():
        print(f"\nhostile input: {tally.tried} requests, {len(tally.failures)} answered 5xx")
    assert not tally.failures, "\n".join(tally.failures[:30])


# -- each kind of hostile input, by name ------------------------------------------------------


def post_raw(api, url: str, text: str, method: str = "POST"):
    """Send text as a JSON body (lone surrogates and all) with the session's CSRF header."""
    return api.client.open(
        url,
        method=method,
        data=text.encode("utf-8", "surrogatepass"),
        headers={"X-CSRFToken": api.csrf, "Content-Type": "application/json"},
    )


# 2^31 and 2^63 - 1 are valid 64-bit integers but no INTEGER id: PostgreSQL answered 500.
@pytest.mark.parametrize(
    "ident",
    ["9223372036854775808", "9223372036854775807", "2147483648", HUGE, "٣", "１０００", "0"],
)
def test_ids_no_row_can_have_are_404_naming_the_parameter(world, ident):
    app, admin, _valid, _bodies = world
    before = count(app, Pledge)
    segment = quote(ident, safe="")
    for method, url, name in [
        ("POST", f"/api/funding/campaigns/{segment}/pledges", "campaign_id"),
        ("PUT", f"/api/funding/campaigns/{segment}/interest", "campaign_id"),
        ("POST", f"/api/library/books/{segment}/holds", "book_id"),
        ("POST", f"/api/library/copies/{segment}/return", "copy_id"),
        ("GET", f"/api/notifications/{segment}", "notification_id"),
        ("DELETE", f"/api/library/holds/{segment}", "hold_id"),
    ]:
        response = post_raw(admin, url, '{"amount": 1000}', method=method)
        assert response.status_code == 404, (url, response.text)
        assert response.json["error"]["field"] == name, url
    assert count(app, Pledge) == before
    for page in (f"/library/books/{segment}", f"/funding/campaigns/{segment}"):
        assert admin.get(page).status_code == 404, page


def test_digits_that_are_not_decimal_match_no_route(world):
    _app, admin, _valid, _bodies = world
    # "²" is a digit to str.isdigit() but not to the route pattern: plain 404, no field.
    response = post_raw(admin, f"/api/library/books/{quote('²')}/holds", "{}")
    assert response.status_code == 404


def test_lone_surrogates_are_refused_naming_the_field_and_write_nothing(world):
    app, admin, _valid, bodies = world
    books = count(app, Book)
    response = post_raw(
        admin, "/api/library/books", '{"title": "Pira\\ud800nesi", "author": "A", "copies": 1}'
    )
    assert response.status_code == 400, response.text
    assert response.json["error"]["field"] == "title"
    response = post_raw(admin, "/api/library/books", '{"title": "P", "\\udc00": 1, "copies": 1}')
    assert response.status_code == 400, response.text
    assert count(app, Book) == books

    devices = count(app, Subscription)
    body = json.dumps(dict(bodies) | {"keys": {"p256dh": "\ud800", "auth": "x"}})
    response = post_raw(admin, "/api/push/subscriptions", body)
    assert response.status_code == 400, response.text
    assert response.json["error"]["field"] == "keys"
    assert count(app, Subscription) == devices


def test_nul_in_json_query_and_form_is_refused(world):
    app, admin, _valid, _bodies = world
    books = count(app, Book)
    response = post_raw(admin, "/api/library/books", '{"title": "a\\u0000b", "author": "A"}')
    assert response.status_code == 400
    assert response.json["error"]["field"] == "title"
    response = admin.get("/api/library/books?q=a%00b")
    assert response.status_code == 400
    assert response.json["error"]["field"] == "q"
    page = admin.client.post(
        "/library/desk/books",
        data={"title": "a\x00b", "author": "A", "copies": "1", "csrf_token": admin.csrf},
    )
    assert page.status_code < 500
    assert count(app, Book) == books


@pytest.mark.parametrize("text", [DEEP, DEEP_OBJECT])
def test_json_nested_30000_deep_is_a_400(world, text):
    app, admin, _valid, _bodies = world
    books = count(app, Book)
    for url in ("/api/library/books", "/api/funding/campaigns", "/api/push/subscriptions"):
        response = post_raw(admin, url, text)
        assert response.status_code == 400, (url, response.text)
        assert response.json["error"]["code"] == "invalid"
    assert count(app, Book) == books


@pytest.mark.parametrize(
    "deadline",
    ["9999-12-31T23:59-12:00", "0001-01-01T00:00+14:00", "9999-12-31T23:59:59+00:00"],
)
def test_deadlines_at_the_ends_of_the_calendar_are_refused(world, deadline):
    app, admin, valid, _bodies = world
    campaigns = count(app, Campaign)
    response = admin.post("/api/funding/campaigns", json=campaign_json(deadline=deadline))
    assert response.status_code == 400, response.text
    assert response.json["error"]["field"] == "deadline"
    campaign_id = valid["campaign_id"]
    response = admin.put(
        f"/api/funding/campaigns/{campaign_id}", json=campaign_json(deadline=deadline)
    )
    assert response.status_code == 400, response.text
    assert response.json["error"]["field"] == "deadline"
    # The admin form reads a deadline without offset in APP_TIMEZONE.
    form = admin.client.get("/funding/admin/campaigns/new")
    fields = campaign_json(deadline=deadline[:16]) | {"csrf_token": csrf_from(form.text)}
    page = admin.client.post("/funding/admin/campaigns/new", data=fields)
    assert page.status_code == 400 and "deadline" in page.text
    assert count(app, Campaign) == campaigns


@pytest.mark.parametrize(
    "target", ["/\r\nLocation: https://evil.example", "/\nSet-Cookie: x=1", "/\tevil"]
)
def test_crlf_in_next_and_back_never_reaches_a_header(make_app, login_as, target):
    make_app()
    librarian = login_as("desk@webpush-server.dev", role="librarian")
    book_id, _copies = add_book(librarian, copies=1)
    librarian.post(f"/api/library/books/{book_id}/holds")
    reader = login_as("crlf@webpush-server.dev")
    hold = reader.post(f"/api/library/books/{book_id}/holds").json["id"]
    response = reader.client.post(
        f"/library/holds/{hold}/cancel", data={"back": target, "csrf_token": reader.csrf}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/library/holds"

    token = csrf_from(reader.client.get("/login").text)
    response = reader.client.post(
        "/login",
        data={
            "email": "crlf@webpush-server.dev",
            "password": "correct horse battery",
            "next": target,
            "csrf_token": token,
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


@pytest.mark.parametrize("after", ["²", "１０００", "9223372036854775808", HUGE, "-1", "x"])
def test_a_bad_replay_cursor_is_a_400_naming_it(make_app, login_as, after):
    make_app()
    reader = login_as("cursor@webpush-server.dev")
    origin = "http://localhost"
    response = reader.get(f"/ws?after={quote(after)}", headers={"Origin": origin})
    assert response.status_code == 400, response.text
    assert response.json["error"]["field"] == "after"
    response = reader.get(f"/api/notifications/stream?after={quote(after)}")
    assert response.status_code == 400, response.text
    assert response.json["error"]["field"] == "after"
    response = reader.get("/api/notifications/stream", headers={"Last-Event-ID": after})
    if after.isascii():
        assert response.status_code == 400, response.text
        assert response.json["error"]["field"] == "Last-Event-ID"


def test_every_page_answers_hostile_input_without_a_5xx(world):
    app, admin, valid, _bodies = world
    fields = [
        "title", "author", "isbn", "copies", "count", "copy_id", "book_id", "email", "amount",
        "goal_amount", "deadline", "description", "coupon_discount", "coupon_valid_days",
        "follow", "back", "next", "current_password", "new_password", "q", "limit", "before",
    ]  # fmt: skip
    values = ["9223372036854775808", HUGE, "²", "１０００", "9999-12-31T23:59", "/\r\nX: y", ""]
    failures = []
    tried = 0
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(("/api/", "/static/", "/ws")) or rule.endpoint == "auth.logout":
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for value, in_path in [(v, p) for v in values for p in (True, False)]:
                if in_path and "<" not in rule.rule:
                    continue
                url = rule.rule
                for name in valid:
                    for placeholder in (f"<int:{name}>", f"<{name}>"):
                        url = url.replace(placeholder, quote(value if in_path else valid[name]))
                form = {name: value for name in fields} | {"csrf_token": admin.csrf}
                if method == "GET":
                    response = admin.client.get(url, query_string=form)
                else:
                    response = admin.client.open(url, method=method, data=form)
                response.close()  # static files stream from an open file
                tried += 1
                if response.status_code >= 500:
                    failures.append(f"{method} {url[:60]} {value[:20]!r} -> {response.status_code}")
    assert tried > 100
    assert not failures, "\n".join(failures)
