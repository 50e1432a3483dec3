"""Firefox shows a patron's notification in the patron's language: Korean for `ko`, English
for `en` (recorded in the recipient's language, whatever page or job caused it)."""

from __future__ import annotations

import re

import pytest

from tests.factories import add_book
from tests.helpers import enable_push, log_in_firefox

pytestmark = pytest.mark.browser


@pytest.mark.parametrize(
    ("language", "title", "body"),
    [
        (
            "ko",
            "예약하신 책이 준비되었습니다: 채식주의자",
            r"\d+번 사본이 \d+월 \d+일 \([월화수목금토일]\) 오[전후] \d+:\d\d KST까지 "
            r"대출 데스크에서 기다립니다\.",
        ),
        (
            "en",
            "Your book is ready: 채식주의자",
            r"Copy \d+ is waiting for you at the desk until \w{3} \d+ \w{3}, \d\d:\d\d KST\.",
        ),
    ],
)
def test_firefox_shows_the_patrons_notification_in_their_language(
    firefox, live_server, live_worker, push_service, login_as, language, title, body, tmp_path
):
    desk = login_as("desk@webpush-server.dev", "librarian")
    book_id, _ = add_book(desk, copies=1, title="채식주의자")
    patron = login_as("patron@webpush-server.dev", name="Pat")
    assert patron.put("/api/preferences", {"language": language}).status_code == 200

    log_in_firefox(firefox, live_server, "patron@webpush-server.dev")
    endpoint = enable_push(firefox, live_server)
    assert firefox.script("return document.documentElement.lang") == language
    # Away from the site: with a visible tab the live channel would tell them instead.
    firefox.navigate("about:blank")

    # The hold is placed by another session asking in the other language: text follows
    # the recipient's preference, not the request.
    other = "en" if language == "ko" else "ko"
    placed = patron.post(f"/api/library/books/{book_id}/holds", headers={"Accept-Language": other})
    assert placed.status_code == 201 and placed.json["status"] == "ready", placed.text

    push_service.wait_for(lambda pushes: any(p.endpoint == endpoint for p in pushes), timeout=60)
    firefox.navigate(f"{live_server}/library/")
    shown = firefox.wait_for_notification(title, timeout=60)
    assert re.fullmatch(body, shown["body"]), shown["body"]
    firefox.screenshot(tmp_path / f"notification-{language}.png")
