"""The operator commands of docs/api.md, and that running them leaves the checkout alone."""

from __future__ import annotations

import hashlib
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.helpers import ROOT, count, process_env
from webpush_server.auth.models import User
from webpush_server.devrun import flask_command
from webpush_server.extensions import db
from webpush_server.funding.models import Campaign, Coupon, Follow, Pledge
from webpush_server.library.models import Book, Copy, Hold, Loan
from webpush_server.notifications.models import Delivery, DeliveryAttempt, Notification
from webpush_server.push.models import Subscription
from webpush_server.push.vapid import key_path, load_private_key, public_key_b64


def checkout_instance() -> dict[str, tuple] | None:
    """Name, size and SHA-256 of everything in the checkout's instance/; None if it is absent."""
    folder = ROOT / "instance"
    if not folder.exists():
        return None
    found: dict[str, tuple] = {}
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        if path.is_file():
            found[name] = (path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest())
        else:
            found[name] = ("directory",) if path.is_dir() else ("other",)
    return found


@pytest.fixture
def instance_before() -> dict[str, tuple] | None:
    """The checkout's instance/ as it was before the test's app was made (request it first)."""
    return checkout_instance()


def test_cli_commands_leave_the_checkout_instance_folder_as_it_was(
    instance_before, app, runner, settings, tmp_path
):
    for args in (
        ["vapid", "generate"],
        ["vapid", "generate", "--force"],
        ["user", "create", "ops@webpush-server.dev", "--password", "long enough pw"],
        ["seed-demo"],
        ["jobs", "list"],
    ):
        result = runner.invoke(args=args)
        assert result.exit_code == 0, (args, result.output)
    # A flask command in a child process, as the tests' servers and workers are started.
    child = subprocess.run(
        flask_command("vapid", "generate", "--force"),
        env=process_env(settings, app.instance_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 0, child.stderr
    assert str(key_path(app.instance_path)) in child.stdout
    assert checkout_instance() == instance_before
    assert Path(app.instance_path).is_relative_to(tmp_path)


def test_user_create_then_exists(runner):
    args = [
        "user",
        "create",
        "desk@webpush-server.dev",
        "--password",
        "long enough pw",
        "--role",
        "librarian",
        "--name",
        "Desk",
    ]
    first = runner.invoke(args=args)
    assert first.exit_code == 0, first.output
    assert "created librarian desk@webpush-server.dev" in first.output
    again = runner.invoke(args=args)
    assert again.exit_code == 1
    assert "already exists" in again.output


def test_user_create_refuses_bad_role(runner):
    result = runner.invoke(
        args=[
            "user",
            "create",
            "x@webpush-server.dev",
            "--password",
            "long enough pw",
            "--role",
            "king",
        ]
    )
    assert result.exit_code == 2


def test_vapid_generate_keeps_an_existing_key_unless_forced(runner, app):
    path = key_path(app.instance_path)
    assert not path.exists()  # the test's own instance folder starts empty
    first = runner.invoke(args=["vapid", "generate"])
    assert first.exit_code == 0
    public = public_key_b64(load_private_key(path.read_text()))
    assert first.output.strip().endswith(public)
    again = runner.invoke(args=["vapid", "generate"])
    assert "exists" in again.output and again.output.strip().endswith(public)
    forced = runner.invoke(args=["vapid", "generate", "--force"])
    assert not forced.output.strip().endswith(public)
    assert oct(path.stat().st_mode & 0o777) == "0o600"


# What `flask seed-demo` creates (webpush_server/demo.py, library/demo.py, funding/demo.py).
DEMO_ROWS = {
    "users": 9,  # 3 demo accounts, 4 readers, 2 backers
    "books": 32,
    "copies": 51,
    "loans": 8,  # every copy of the 6 popular books is out
    "holds": 12,  # 1 + 2 + 3 + 1 + 2 + 3 readers queue for them
    "campaigns": 5,
    "pledges": 13,
    "follows": 2,  # followers who pledged nothing
    "coupons": 6,  # 3 backers of each of the 2 campaigns that succeeded
    # A day of delivery history (ops/demo.py, a seeded random source): 4 readers, 6 devices.
    "devices": 6,
    "notifications": 240,
    "deliveries": 360,
    "attempts": 387,
}
DEMO_STATUSES = {
    "users": {"patron": 7, "librarian": 1, "admin": 1},
    "copies": {"loaned": 8, "shelf": 43},
    "holds": {"waiting": 12},
    "campaigns": {"open": 2, "succeeded": 2, "failed": 1},
    "coupons": {"active": 5, "used": 1},
    "deliveries": {"sent": 311, "gone": 26, "failed": 14, "dead": 9},
    "attempts": {"sent": 311, "gone": 26, "transient": 24, "config_error": 11, "rate_limited": 15},
}


def demo_rows(app) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Count the rows seed-demo makes, and split the stateful ones by status (or role)."""
    models = {
        "users": User,
        "books": Book,
        "copies": Copy,
        "loans": Loan,
        "holds": Hold,
        "campaigns": Campaign,
        "pledges": Pledge,
        "follows": Follow,
        "coupons": Coupon,
        "devices": Subscription,
        "notifications": Notification,
        "deliveries": Delivery,
        "attempts": DeliveryAttempt,
    }
    columns = {
        "users": User.role,
        "copies": Copy.status,
        "holds": Hold.status,
        "campaigns": Campaign.status,
        "coupons": Coupon.status,
        "deliveries": Delivery.status,
        "attempts": DeliveryAttempt.outcome,
    }
    totals = {name: count(app, model) for name, model in models.items()}
    with app.app_context():
        statuses = {
            name: dict(Counter(db.session.scalars(select(column))))
            for name, column in columns.items()
        }
    return totals, statuses


def test_seed_demo_is_safe_to_run_twice(runner, app):
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0 and "records created" in first.output
    assert demo_rows(app) == (DEMO_ROWS, DEMO_STATUSES)
    second = runner.invoke(args=["seed-demo"])
    assert second.exit_code == 0 and "demo data present" in second.output
    assert demo_rows(app) == (DEMO_ROWS, DEMO_STATUSES)  # the second run added nothing


# `flask jobs list`: every scheduled job, when it runs (a UTC cron line, or a daily time in
# APP_TIMEZONE) and what it does.
JOBS_LIST = [
    "sweep-outbox                 * * * * * UTC              "
    "re-enqueue deliveries left pending or claimed by a dead worker",
    "start-daily-jobs             * * * * * UTC              "
    "start each daily job once its local time has come today in APP_TIMEZONE",
    "prune                        30 18 * * * UTC            "
    "delete old delivery attempts, finished deliveries and read notifications",
    "detect-available-books       * * * * * UTC              "
    "give free copies to waiting holds the event path missed",
    "expire-holds                 * * * * * UTC              "
    "end ready holds past their pickup deadline and pass the copy on",
    "remind-holds                 */10 * * * * UTC           "
    "tell patrons one day before a ready hold lapses",
    "close-due-campaigns          * * * * * UTC              "
    "close campaigns past their deadline: coupons and notices to backers",
    "remind-campaign-deadlines    0 * * * * UTC              "
    "remind followers who have not backed, 48 h and 24 h before the deadline",
    "expire-coupons               5 * * * * UTC              "
    "mark coupons past their expiry as expired",
    "notify-expiring-coupons      daily 09:00 Asia/Seoul     "
    "remind coupon owners of coupons expiring today or tomorrow",
    "remind-loans                 daily 09:00 Asia/Seoul     "
    "remind borrowers before the due date and 1, 7 and 14 days after",
    "resume-holds                 daily 06:00 Asia/Seoul     "
    "resume suspended holds and expire holds past their not-needed-after date",
    "release-scheduled            * * * * * UTC              "
    "show and send service API notifications whose send_at has come",
    "send-digests                 15 * * * * UTC             "
    "e-mail each user their unread digest kinds at their digest hour",
]


def test_jobs_list_and_unknown_job(runner):
    listed = runner.invoke(args=["jobs", "list"])
    assert "sweep-outbox" in listed.output
    assert listed.exit_code == 0, listed.output
    # The whole table; the order follows which package registers first, so it is not compared.
    assert sorted(listed.output.splitlines()) == sorted(JOBS_LIST)
    unknown = runner.invoke(args=["jobs", "run", "nope"])
    assert unknown.exit_code == 2
