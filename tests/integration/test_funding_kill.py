"""A batch job killed with SIGKILL halfway, then rerun, records every notification once."""

from __future__ import annotations

import os
import signal
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import distinct, func, select

from tests.factories import bulk_campaign, bulk_coupons, bulk_users
from tests.helpers import Process, count, process_env, wait_until
from webpush_server.devrun import flask_command
from webpush_server.extensions import db
from webpush_server.funding.timeutil import start_of_day
from webpush_server.notifications.models import Delivery, Notification
from webpush_server.timeutil import utcnow

USERS, PER_USER = 4000, 10


def test_notify_expiring_coupons_killed_midway_then_rerun_notifies_each_coupon_once(
    app, settings, push_service, tmp_path
):
    owners = bulk_users(app, "kill", USERS, push_service)  # one device each
    tomorrow = utcnow().astimezone(ZoneInfo("Asia/Seoul")).date() + timedelta(days=1)
    campaign_id = bulk_campaign(app, title="Kill", status="succeeded")
    bulk_coupons(
        app,
        campaign_id,
        owners,
        PER_USER,
        start_of_day(tomorrow + timedelta(days=1), ZoneInfo("Asia/Seoul")),
    )
    total = USERS * PER_USER
    env = process_env(settings, app.instance_path)

    job = Process(
        flask_command("jobs", "run", "notify-expiring-coupons"), env, tmp_path / "killed.log"
    )
    try:
        # Kill once some chunks are committed, long before the last one.
        wait_until(lambda: count(app, Notification) >= 1000, "the first chunks", timeout=120)
        os.killpg(job.process.pid, signal.SIGKILL)
        job.process.wait(10)
    finally:
        job.stop()
    assert job.process.returncode == -signal.SIGKILL
    recorded = count(app, Notification)
    assert 0 < recorded < total, f"not killed mid-run: {recorded} of {total}"

    rerun = Process(
        flask_command("jobs", "run", "notify-expiring-coupons"), env, tmp_path / "rerun.log"
    )
    try:
        wait_until(lambda: rerun.process.poll() is not None, "the rerun", timeout=300)
    finally:
        rerun.stop()
    assert rerun.process.returncode == 0, rerun.output()
    # The rerun recorded exactly what the killed run had not.
    assert f"notify-expiring-coupons: {total - recorded}" in rerun.output()
    with app.app_context():
        kinds = db.session.execute(
            select(func.count(), func.count(distinct(Notification.dedupe_key))).where(
                Notification.kind == "coupon_expiring"
            )
        ).one()
        assert tuple(kinds) == (total, total)
        # Every notification got its one delivery, none twice, none lost with the kill.
        per_delivery = db.session.execute(
            select(func.count(), func.count(distinct(Delivery.notification_id)))
        ).one()
        assert tuple(per_delivery) == (total, total)
    assert count(app, Delivery, Delivery.status == "pending") == total
