"""The daily digest: `jobs run send-digests --param hour=…`, the real worker and SMTP server."""

from __future__ import annotations

from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.helpers import rows
from tests.service_api import bearer, make_key, notify_body
from webpush_server.auth.models import User
from webpush_server.channels.digest import send_digest
from webpush_server.notifications.models import Delivery
from webpush_server.timeutil import utcnow

ZONE = "America/New_York"


@pytest.fixture
def app(make_app, mail_server):
    mail_server.clear()
    return make_app(MAIL_URL=mail_server.url, PUBLIC_URL="http://public.test")


def test_one_digest_a_day_at_the_users_hour_lists_only_unread_digest_kinds(
    app, client, runner, login_as, mail_server, run_worker
):
    # The next whole UTC hour, and what it is on the readers' wall clock.
    at = (utcnow() + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    hour_param = at.astimezone(UTC).strftime("%Y-%m-%dT%H")
    local_hour = at.astimezone(ZoneInfo(ZONE)).hour
    digest_on = {"kinds": {"announcement": {"email": True, "digest": True}}, "timezone": ZONE}
    reader = login_as("digest@webpush-server.dev", name="Dee")
    reader.put("/api/preferences", digest_on | {"digest_hour": local_hour})
    idle = login_as("idle@webpush-server.dev")  # digest on, nothing unread: no e-mail
    idle.put("/api/preferences", digest_on | {"digest_hour": local_hour})
    other = login_as("other@webpush-server.dev")  # its digest hour is another one
    other.put("/api/preferences", digest_on | {"digest_hour": (local_hour + 3) % 24})
    ids = {u.email: u.id for u in rows(app, User)}
    secret = make_key(app)[1]
    for title in ("Closed on Monday", "New opening hours", "Already read"):
        for email in ("digest@webpush-server.dev", "other@webpush-server.dev"):
            body = notify_body({"user_id": ids[email]}, title=title)
            answer = client.post("/api/v1/notifications", json=body, headers=bearer(secret))
            assert answer.status_code == 202
    # Digest kinds are not e-mailed one by one.
    assert rows(app, Delivery, Delivery.channel == "email") == []
    inbox = reader.get("/api/notifications").json["notifications"]
    read = next(n["id"] for n in inbox if n["title"] == "Already read")
    assert reader.post(f"/api/notifications/{read}/read").status_code == 200

    result = runner.invoke(args=["jobs", "run", "send-digests", "--param", f"hour={hour_param}"])
    assert result.exit_code == 0, result.output
    assert "written 1" in result.output
    run_worker()
    (mail,) = mail_server.wait_for_count(1)
    assert mail.rcpt_tos == ["digest@webpush-server.dev"]
    day = at.astimezone(ZoneInfo(ZONE)).date()
    assert mail["Subject"] == f"Your notices of {day.day} {day:%b %Y}"
    assert "Closed on Monday" in mail.text and "New opening hours" in mail.text
    assert "Already read" not in mail.text and "New opening hours" in mail.html
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # Once a day: the same instance does not run again, and another run that day adds nothing.
    again = runner.invoke(args=["jobs", "run", "send-digests", "--param", f"hour={hour_param}"])
    assert again.exit_code == 0 and "already complete" in again.output
    with app.app_context():
        assert send_digest(ids["digest@webpush-server.dev"], at + timedelta(minutes=30)) == 0
    run_worker()
    assert len(mail_server.received) == 1
