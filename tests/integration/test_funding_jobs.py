"""Funding's scheduled jobs through `jobs run` and the real worker, pushes checked at the
local push service: closing, deadline reminders, coupon reminders and expiry, in time zones."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from tests.factories import (
    add_campaign,
    bulk_campaign,
    bulk_coupons,
    bulk_users,
    move_deadline,
    subscribe,
)
from tests.helpers import Process, count, process_env, rows, wait_until
from webpush_server.auth.services import find_user
from webpush_server.devrun import flask_command
from webpush_server.extensions import db
from webpush_server.funding.jobs import notify_expiring_coupons
from webpush_server.funding.models import Campaign, Coupon, Pledge
from webpush_server.funding.services import close_campaign
from webpush_server.funding.timeutil import start_of_day
from webpush_server.jobs.batch import start_daily_jobs
from webpush_server.jobs.delivery import notification_topic
from webpush_server.jobs.schedule import table
from webpush_server.notifications.models import Notification
from webpush_server.timeutil import utcnow

DAY = 86400


def run_job(app, name: str) -> str:
    result = app.test_cli_runner().invoke(args=["jobs", "run", name])
    assert result.exit_code == 0, result.output
    return result.output


def test_close_due_campaigns_issues_coupons_and_tells_every_backer(
    app, login_as, push_service, run_worker
):
    boss = login_as("boss@webpush-server.dev", "admin")
    pat = login_as("pat@webpush-server.dev")
    kim = login_as("kim@webpush-server.dev")
    (pat_device,), (kim_device,) = subscribe(pat, push_service), subscribe(kim, push_service)
    met = add_campaign(boss, title="Bee garden", goal_amount=50_000)
    missed = add_campaign(boss, title="Arcade", goal_amount=900_000)
    for api, campaign_id, amount in ((pat, met, 30_000), (kim, met, 20_000), (pat, missed, 5)):
        assert (
            api.post(
                f"/api/funding/campaigns/{campaign_id}/pledges", json={"amount": amount}
            ).status_code
            == 201
        )
    assert "'succeeded': 0, 'failed': 0" in run_job(app, "close-due-campaigns")  # not due yet
    for campaign_id in (met, missed):
        move_deadline(app, campaign_id, utcnow() - timedelta(seconds=1))

    output = run_job(app, "close-due-campaigns")
    assert "'succeeded': 1, 'failed': 1, 'notified': 3" in output
    run_worker()
    push_service.wait_for_count(3)
    statuses = {c["id"]: c["status"] for c in boss.get("/api/funding/campaigns").json["campaigns"]}
    assert statuses == {met: "succeeded", missed: "failed"}

    (pat_coupon,) = pat.get("/api/funding/coupons").json["coupons"]
    (kim_coupon,) = kim.get("/api/funding/coupons").json["coupons"]
    assert pat_coupon["code"] != kim_coupon["code"]
    by_title = {p.notification["title"]: p for p in push_service.pushes_for(pat_device.endpoint)}
    assert set(by_title) == {"Bee garden met its goal", "Arcade missed its goal"}
    won = by_title["Bee garden met its goal"]
    assert won.error is None and won.notification["kind"] == "campaign_succeeded"
    assert (
        pat_coupon["code"] in won.notification["body"]
        and won.notification["url"] == "/funding/coupons"
    )
    assert won.urgency == "normal" and won.topic == notification_topic(won.notification["id"])
    assert 7 * DAY - 120 < won.ttl <= 7 * DAY
    lost = by_title["Arcade missed its goal"]
    assert (
        lost.notification["kind"] == "campaign_failed"
        and lost.notification["url"] == f"/funding/campaigns/{missed}"
    )
    assert lost.urgency == "normal" and 7 * DAY - 120 < lost.ttl <= 7 * DAY
    (kim_push,) = push_service.pushes_for(kim_device.endpoint)
    assert kim_push.notification["title"] == "Bee garden met its goal"
    assert kim_coupon["code"] in kim_push.notification["body"]

    # A rerun finds nothing to close and sends nothing again.
    assert "'succeeded': 0, 'failed': 0, 'notified': 0" in run_job(app, "close-due-campaigns")
    run_worker()
    assert len(push_service.received) == 3
    assert count(app, Coupon) == 2


def test_a_campaign_closes_once_even_when_closed_twice(app, make_user):
    backers = bulk_users(app, "twice", 3)
    campaign_id = bulk_campaign(app, goal=300)
    with app.app_context():
        for user_id in backers:
            db.session.add(Pledge(campaign_id=campaign_id, user_id=user_id, amount=100))
        db.session.commit()
        assert close_campaign(campaign_id) == "succeeded"
        assert close_campaign(campaign_id) is None
    assert count(app, Coupon) == 3


def test_two_schedulers_close_every_campaign_exactly_once(app, settings, tmp_path):
    users = bulk_users(app, "race", 60)
    campaigns = []
    with app.app_context():
        pledges = []
        for k in range(40):
            goal = 60 * 100 if k % 2 else 10**9  # every other campaign meets its goal
            campaigns.append(bulk_campaign(app, title=f"Race {k}", goal=goal))
            pledges += [{"campaign_id": campaigns[-1], "user_id": u, "amount": 100} for u in users]
        db.session.execute(
            Pledge.__table__.insert(), [p | {"created_at": utcnow()} for p in pledges]
        )
        db.session.commit()
    env = process_env(settings, app.instance_path)
    runs = [
        Process(flask_command("jobs", "run", "close-due-campaigns"), env, tmp_path / f"run{i}.log")
        for i in range(2)
    ]
    try:
        for run in runs:
            wait_until(
                lambda run=run: run.process.poll() is not None, "a scheduler run", timeout=120
            )
            assert run.process.returncode == 0, run.output()
    finally:
        for run in runs:
            run.stop()
    outputs = [run.output() for run in runs]
    closed = sum(
        int(out.split("'succeeded': ")[1].split(",")[0])
        + int(out.split("'failed': ")[1].split(",")[0])
        for out in outputs
    )
    assert closed == 40, outputs
    assert count(app, Coupon) == 20 * 60
    assert count(app, Notification, Notification.kind == "campaign_succeeded") == 20 * 60
    assert count(app, Notification, Notification.kind == "campaign_failed") == 20 * 60
    assert count(app, Campaign, Campaign.notified_at.is_(None)) == 0


def run_at_hour(app, name: str, hour: datetime) -> str:
    """Run the hourly job's instance for hour (UTC), as the scheduler would at that moment."""
    return run_job_with(app, name, "--param", f"hour={hour:%Y-%m-%dT%H}")


def run_job_with(app, name: str, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=["jobs", "run", name, *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_followers_who_have_not_backed_hear_48_and_24_hours_before_each_once(
    app, login_as, push_service, run_worker
):
    boss = login_as("boss@webpush-server.dev", "admin")
    fan = login_as("fan@webpush-server.dev")
    switcher = login_as("switcher@webpush-server.dev")
    backer = login_as("backer@webpush-server.dev")
    (fan_device,), (switcher_device,), (backer_device,) = (
        subscribe(api, push_service) for api in (fan, switcher, backer)
    )
    fridge = add_campaign(boss, title="Fridge")
    deadline = utcnow().replace(minute=0, second=0, microsecond=0) + timedelta(hours=72)
    move_deadline(app, fridge, deadline)
    for api in (fan, switcher, backer):
        assert api.put(f"/api/funding/campaigns/{fridge}/interest").status_code == 204
    backer.post(f"/api/funding/campaigns/{fridge}/pledges", json={"amount": 1000})
    job = "remind-campaign-deadlines"

    def hours_before(hours: int) -> datetime:
        return deadline - timedelta(hours=hours)

    assert f"{job}: 0" in run_at_hour(app, job, hours_before(49))
    # 48 h before: the two followers who have not backed, once.
    assert f"{job}: 2" in run_at_hour(app, job, hours_before(48))
    assert "already complete" in run_at_hour(app, job, hours_before(48))
    assert f"{job}: 0" in run_at_hour(app, job, hours_before(47))
    sending = utcnow()
    run_worker()
    push_service.wait_for_count(2)
    (first,) = push_service.pushes_for(fan_device.endpoint)
    assert first.notification["title"] == "Fridge closes within 2 days"
    assert first.notification["kind"] == "campaign_deadline_soon"
    assert first.notification["url"] == f"/funding/campaigns/{fridge}"
    assert first.urgency == "low" and first.topic == f"campaign-{fridge}"
    # TTL runs until the deadline, not a fixed day.
    # Between the time left when the worker started and when the push arrived (rounded up).
    assert deadline.timestamp() - first.received_at - 1 <= first.ttl
    assert first.ttl <= (deadline - sending).total_seconds() + 1
    (told,) = push_service.pushes_for(switcher_device.endpoint)
    assert told.notification["title"] == "Fridge closes within 2 days"
    assert push_service.pushes_for(backer_device.endpoint) == []

    # The switcher backs it after the first reminder: the second one is not for them.
    switcher.post(f"/api/funding/campaigns/{fridge}/pledges", json={"amount": 500})
    assert f"{job}: 0" in run_at_hour(app, job, hours_before(25))
    assert f"{job}: 1" in run_at_hour(app, job, hours_before(24))
    for hours in (23, 1, 0):
        assert f"{job}: 0" in run_at_hour(app, job, hours_before(hours))
    # A run by hand (now, 72 h before) finds nothing in either window.
    assert f"{job}: 0" in run_job(app, job)
    run_worker()
    push_service.wait_for_count(3)
    second = push_service.pushes_for(fan_device.endpoint)[1]
    assert second.notification["title"] == "Fridge closes within a day"
    assert "Back it before then." in second.notification["body"]
    assert second.topic == first.topic  # replaces the 48 h one if still undelivered
    assert len(push_service.pushes_for(switcher_device.endpoint)) == 1
    assert push_service.pushes_for(backer_device.endpoint) == []
    assert len(push_service.received) == 3
    assert count(app, Notification, Notification.kind == "campaign_deadline_soon") == 3


def test_a_campaign_first_followed_within_a_day_gets_only_the_24_hour_reminder(
    app, login_as, push_service, run_worker
):
    boss = login_as("boss@webpush-server.dev", "admin")
    fan = login_as("fan@webpush-server.dev")
    (device,) = subscribe(fan, push_service)
    lanterns = add_campaign(boss, title="Lanterns")
    deadline = utcnow().replace(minute=0, second=0, microsecond=0) + timedelta(hours=30)
    move_deadline(app, lanterns, deadline)
    # Followed only 20 hours before the deadline: the 48 h moment has passed unseen.
    fan.put(f"/api/funding/campaigns/{lanterns}/interest")
    job = "remind-campaign-deadlines"
    assert f"{job}: 1" in run_at_hour(app, job, deadline - timedelta(hours=20))
    assert f"{job}: 0" in run_at_hour(app, job, deadline - timedelta(hours=19))
    run_worker()
    (push,) = push_service.wait_for_count(1)
    assert push.endpoint == device.endpoint
    assert push.notification["title"] == "Lanterns closes within a day"


def test_the_creator_hears_once_when_the_campaign_closes_with_its_totals(
    app, login_as, push_service, run_worker
):
    boss = login_as("boss@webpush-server.dev", "admin")
    pat = login_as("pat@webpush-server.dev")
    kim = login_as("kim@webpush-server.dev")
    (boss_device,), (pat_device,) = subscribe(boss, push_service), subscribe(pat, push_service)
    met = add_campaign(boss, title="Bee garden", goal_amount=50_000)
    missed = add_campaign(boss, title="Arcade", goal_amount=900_000)
    for api, campaign_id, amount in (
        (pat, met, 30_000),
        (kim, met, 15_000),
        (kim, met, 5_000),
        (pat, missed, 7_000),
        (pat, missed, 500),
    ):
        response = api.post(
            f"/api/funding/campaigns/{campaign_id}/pledges", json={"amount": amount}
        )
        assert response.status_code == 201
    assert "'succeeded': 0, 'failed': 0" in run_job(app, "close-due-campaigns")
    run_worker()
    assert push_service.received == []  # nothing closed, nobody told
    closing = utcnow()
    for campaign_id in (met, missed):
        move_deadline(app, campaign_id, closing - timedelta(seconds=1))
    # The scheduler's next minute: its instant is past the deadline.
    minute = f"minute={closing + timedelta(minutes=1):%Y-%m-%dT%H:%M}"
    assert "'succeeded': 1, 'failed': 1" in run_job_with(
        app, "close-due-campaigns", "--param", minute
    )
    run_worker()
    push_service.wait_for_count(4)  # the creator twice, pat twice (kim has no device)
    by_title = {p.notification["title"]: p for p in push_service.pushes_for(boss_device.endpoint)}
    assert set(by_title) == {
        "Bee garden succeeded: ₩50,000 of ₩50,000",
        "Arcade failed: ₩7,500 of ₩900,000",
    }
    won = by_title["Bee garden succeeded: ₩50,000 of ₩50,000"]
    assert won.notification["kind"] == "campaign_closed"
    assert won.notification["body"] == "Raised ₩50,000 of ₩50,000 from 2 backers. 2 coupons issued."
    assert won.notification["url"] == f"/funding/campaigns/{met}"
    assert won.urgency == "normal" and 7 * DAY - 120 < won.ttl <= 7 * DAY
    lost = by_title["Arcade failed: ₩7,500 of ₩900,000"]
    assert (
        lost.notification["body"]
        == "Raised ₩7,500 of ₩900,000 from 1 backer. Nothing is charged; no coupons."
    )
    # The failed campaign's backer is told that nothing is charged, with their own total.
    (failed,) = [
        p
        for p in push_service.pushes_for(pat_device.endpoint)
        if p.notification["kind"] == "campaign_failed"
    ]
    assert failed.notification["body"] == (
        "It needed ₩900,000 by its deadline. "
        "Nothing is charged: your pledge of ₩7,500 is cancelled."
    )

    # Closing again, by the scheduler's next minute or by hand, tells the creator nothing new.
    later = f"minute={closing + timedelta(minutes=2):%Y-%m-%dT%H:%M}"
    assert "'succeeded': 0, 'failed': 0" in run_job_with(
        app, "close-due-campaigns", "--param", later
    )
    assert "'succeeded': 0, 'failed': 0" in run_job(app, "close-due-campaigns")
    run_worker()
    assert len(push_service.received) == 4
    assert count(app, Notification, Notification.kind == "campaign_closed") == 2


def _coupon_for(app, user_ids, last_day, zone: str = "Asia/Seoul", status: str = "active"):
    campaign_id = bulk_campaign(app, title=f"Café {last_day}", status="succeeded")
    expires_at = start_of_day(last_day + timedelta(days=1), ZoneInfo(zone))
    bulk_coupons(app, campaign_id, user_ids, 1, expires_at)
    if status != "active":
        with app.app_context():
            db.session.execute(
                Coupon.__table__.update()
                .where(Coupon.campaign_id == campaign_id)
                .values(status=status)
            )
            db.session.commit()
    return campaign_id


def test_coupon_owners_are_reminded_once_the_day_before_expiry(
    app, login_as, push_service, run_worker
):
    pat = login_as("pat@webpush-server.dev")
    (device,) = subscribe(pat, push_service)
    with app.app_context():
        pat_id = find_user("pat@webpush-server.dev").id
    today = utcnow().astimezone(ZoneInfo("Asia/Seoul")).date()
    tomorrow = today + timedelta(days=1)
    due = _coupon_for(app, [pat_id], tomorrow)
    _coupon_for(app, [pat_id], today + timedelta(days=3))  # not yet
    _coupon_for(app, [pat_id], tomorrow + timedelta(days=30), status="used")
    with app.app_context():
        coupon_id = db.session.scalar(select(Coupon.id).where(Coupon.campaign_id == due))

    assert "notify-expiring-coupons: 1" in run_job(app, "notify-expiring-coupons")
    run_worker()
    (push,) = push_service.wait_for_count(1)
    assert push.endpoint == device.endpoint and push.error is None
    assert (
        push.notification["title"]
        == f"Café {tomorrow} coupon expires on {tomorrow.day} {tomorrow:%b %Y}"
    )
    assert (
        push.notification["kind"] == "coupon_expiring"
        and push.notification["url"] == "/funding/coupons"
    )
    assert push.urgency == "normal" and push.topic == f"coupon-{coupon_id}"
    assert DAY - 120 < push.ttl <= DAY
    assert "notify-expiring-coupons: 0" in run_job(app, "notify-expiring-coupons")
    run_worker()
    assert len(push_service.received) == 1


def test_coupon_reminders_use_the_local_day_near_midnight(app):
    (owner,) = bulk_users(app, "midnight", 1)
    _coupon_for(app, [owner], datetime(2026, 3, 11).date())
    _coupon_for(app, [owner], datetime(2026, 3, 12).date())
    # 23:59 on 10 March in Seoul is 14:59 UTC: tomorrow is the 11th.
    with app.app_context():
        assert notify_expiring_coupons(datetime(2026, 3, 10, 14, 59, tzinfo=UTC)) == 1
        titles = [n.title for n in rows(app, Notification)]
        assert titles == ["Café 2026-03-11 coupon expires on 11 Mar 2026"]
        # Two minutes later it is the 11th in Seoul but still the 10th in UTC: tomorrow is
        # the 12th, whatever the UTC date says.
        assert notify_expiring_coupons(datetime(2026, 3, 10, 15, 1, tzinfo=UTC)) == 1
    assert [n.title for n in rows(app, Notification)][
        1
    ] == "Café 2026-03-12 coupon expires on 12 Mar 2026"


def test_coupon_reminders_in_another_time_zone(make_app):
    app = make_app(APP_TIMEZONE="America/New_York")
    (owner,) = bulk_users(app, "ny", 1)
    zone = "America/New_York"
    _coupon_for(app, [owner], datetime(2026, 3, 11).date(), zone)
    _coupon_for(app, [owner], datetime(2026, 3, 12).date(), zone)
    # 23:30 on 10 March in New York is 03:30 UTC on the 11th.
    with app.app_context():
        assert notify_expiring_coupons(datetime(2026, 3, 11, 3, 30, tzinfo=UTC)) == 1
    (row,) = rows(app, Notification)
    assert row.title == "Café 2026-03-11 coupon expires on 11 Mar 2026"
    assert row.dedupe_key.endswith(":2026-03-11")


def test_daily_run_starts_at_nine_in_app_timezone(make_app):
    # The daily job has no UTC cron line: the tick starts it at 09:00 on the app's wall clock.
    # (Both apps share one database: each zone gets a day of its own.)
    for zone, day, app in (
        ("America/New_York", date(2027, 1, 15), make_app(APP_TIMEZONE="America/New_York")),
        ("Asia/Seoul", date(2027, 1, 16), make_app()),
    ):
        nine = datetime.combine(day, time(9), tzinfo=ZoneInfo(zone)).astimezone(UTC)
        entry = table(app)["notify-expiring-coupons"]
        assert entry.cron is None and entry.when(zone) == f"daily 09:00 {zone}"
        with app.app_context():
            before = start_daily_jobs(nine - timedelta(minutes=1))["notify-expiring-coupons"]
            assert before == f"not due until {nine:%Y-%m-%d %H:%M} UTC"
            at_nine = start_daily_jobs(nine)["notify-expiring-coupons"]
            assert f'{{"date":"{day}"}}: execution' in at_nine and "completed" in at_nine
    assert (nine.hour, nine.minute) == (0, 0)  # 09:00 in Seoul is midnight UTC


def test_expire_coupons_marks_only_active_coupons_past_their_date(app):
    owners = bulk_users(app, "exp", 3)
    yesterday = utcnow().astimezone(ZoneInfo("Asia/Seoul")).date() - timedelta(days=1)
    past = _coupon_for(app, owners, yesterday)
    used = _coupon_for(app, owners, yesterday, status="used")
    future = _coupon_for(app, owners, yesterday + timedelta(days=10))
    assert "expire-coupons: 3" in run_job(app, "expire-coupons")
    assert "expire-coupons: 0" in run_job(app, "expire-coupons")
    for campaign_id, status in ((past, "expired"), (used, "used"), (future, "active")):
        assert count(app, Coupon, Coupon.campaign_id == campaign_id, Coupon.status == status) == 3
