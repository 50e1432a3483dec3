"""Scheduled jobs as Spring Batch instances: once only, resume after a kill, skips, restarts,
local-time daily occurrences across daylight saving, catch-up after downtime, `jobs runs`."""

from __future__ import annotations

import json
import os
import signal
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import distinct, func, select, update

from tests.factories import bulk_campaign, bulk_coupons, bulk_users
from tests.helpers import Process, count, process_env, rows, wait_until
from webpush_server.devrun import flask_command
from webpush_server.extensions import db
from webpush_server.funding.jobs import COUPON_REMINDER_TIME, notify_expiring_coupons
from webpush_server.funding.models import Coupon
from webpush_server.funding.services import remind_coupon_owners
from webpush_server.funding.timeutil import start_of_day
from webpush_server.jobs.batch import (
    BatchJob,
    Step,
    occurrence,
    run_id,
    scheduled_params,
    start_daily_jobs,
)
from webpush_server.jobs.models import JobExecution, JobInstance
from webpush_server.jobs.schedule import ScheduledJob, register, table
from webpush_server.library.jobs import expire_holds
from webpush_server.notifications.models import Notification
from webpush_server.timeutil import utcnow

SEOUL = ZoneInfo("Asia/Seoul")
NEW_YORK = ZoneInfo("America/New_York")


def coupons_ending(app, user_ids, last_day: date, zone: ZoneInfo, per_user: int = 1) -> int:
    """Insert coupons valid through last_day in zone; return their campaign's id."""
    campaign_id = bulk_campaign(app, title=f"Café {last_day}", status="succeeded")
    bulk_coupons(app, campaign_id, user_ids, per_user, start_of_day(last_day + timedelta(1), zone))
    return campaign_id


def executions(app, job: str) -> list[tuple[str, JobExecution]]:
    """Each execution of job with its instance's parameters, oldest first."""
    with app.app_context():
        found = db.session.execute(
            select(JobInstance.params_key, JobExecution)
            .join(JobExecution, JobExecution.instance_id == JobInstance.id)
            .where(JobInstance.name == job)
            .order_by(JobExecution.id)
        ).all()
        db.session.expunge_all()
        return [(params, execution) for params, execution in found]


def invoke(app, *args: str):
    return app.test_cli_runner().invoke(args=list(args))


# -- once only -------------------------------------------------------------------------------


def test_a_completed_instance_never_runs_again_but_a_run_by_hand_is_a_fresh_one(app):
    owners = bulk_users(app, "once", 3)
    today = utcnow().astimezone(SEOUL).date()
    coupons_ending(app, owners, today + timedelta(days=1), SEOUL)

    first = invoke(app, "jobs", "run", "notify-expiring-coupons", "--param", f"date={today}")
    assert first.exit_code == 0, first.output
    assert "notify-expiring-coupons: 3" in first.output
    assert "completed: read 3, written 3, skipped 0" in first.output
    again = invoke(app, "jobs", "run", "notify-expiring-coupons", "--param", f"date={today}")
    assert again.exit_code == 0, again.output
    assert f'notify-expiring-coupons {{"date":"{today}"}}: already complete' in again.output
    with app.app_context():
        # As the scheduler would start it, and twice: still the one completed instance.
        assert notify_expiring_coupons(params={"date": today.isoformat()}) == 0
        assert notify_expiring_coupons(params={"date": today.isoformat()}) == 0
    assert [params for params, _ in executions(app, "notify-expiring-coupons")] == [
        f'{{"date":"{today}"}}'
    ]

    # Without --param: a fresh instance (a run id) that runs now; the dedupe keys keep it
    # from sending what the dated instance sent.
    by_hand = invoke(app, "jobs", "run", "notify-expiring-coupons")
    assert by_hand.exit_code == 0 and "notify-expiring-coupons: 0" in by_hand.output
    assert "read 3, written 0" in by_hand.output
    (_, dated), (run_params, fresh) = executions(app, "notify-expiring-coupons")
    assert set(json.loads(run_params)) == {"run"} and fresh.status == "completed"
    assert count(app, Notification) == 3


def test_scheduled_occurrences_are_the_minute_the_hour_or_the_local_day(app):
    at = datetime(2027, 3, 14, 13, 7, 30, tzinfo=UTC)
    with app.app_context():
        entries = table()
        assert scheduled_params(entries["expire-holds"], at) == {"minute": "2027-03-14T13:07"}
        assert scheduled_params(entries["remind-holds"], at) == {"minute": "2027-03-14T13:07"}
        assert scheduled_params(entries["expire-coupons"], at) == {"hour": "2027-03-14T13"}
        assert scheduled_params(entries["notify-expiring-coupons"], at) == {"date": "2027-03-14"}
        # 23:30 UTC is already the next day in Seoul.
        late = at.replace(hour=23, minute=30)
        assert scheduled_params(entries["notify-expiring-coupons"], late) == {"date": "2027-03-15"}
        # rq-scheduler firing twice in one minute starts that minute's instance once.
        minute = {"minute": "2027-03-14T13:07"}
        assert expire_holds(params=minute) == 0
        assert expire_holds(params=minute) == 0
    assert len(executions(app, "expire-holds")) == 1


def test_bad_parameters_are_refused(app):
    for param, message in (
        ("date=14-03-2027", "date must look like 2027-03-14"),
        ("minute=2027-03-14 13:05", "minute must look like 2027-03-14T13:05"),
        ("date", "is not key=value"),
    ):
        result = invoke(app, "jobs", "run", "notify-expiring-coupons", "--param", param)
        assert result.exit_code == 1 and message in result.output, result.output
    plain = invoke(app, "jobs", "run", "sweep-outbox", "--param", "minute=2027-03-14T13:05")
    assert plain.exit_code == 2 and "takes no parameters" in plain.output
    assert count(app, JobInstance) == 0


def test_two_schedulers_starting_one_instance_at_once_run_it_once(app, settings, tmp_path):
    owners = bulk_users(app, "twin", 2000)
    today = utcnow().astimezone(SEOUL).date()
    coupons_ending(app, owners, today + timedelta(days=1), SEOUL, per_user=4)
    total = 2000 * 4
    env = process_env(settings, app.instance_path)
    argv = flask_command("jobs", "run", "notify-expiring-coupons", "--param", f"date={today}")
    runs = [Process(argv, env, tmp_path / f"run{i}.log") for i in range(2)]
    try:
        for run in runs:
            wait_until(lambda run=run: run.process.poll() is not None, "a run", timeout=180)
            assert run.process.returncode == 0, run.output()
    finally:
        for run in runs:
            run.stop()
    outputs = sorted(run.output() for run in runs)
    # One ran the instance; the other found it running or complete and did nothing.
    ran = [out for out in outputs if f"notify-expiring-coupons: {total}" in out]
    assert len(ran) == 1, outputs
    (other,) = [out for out in outputs if out not in ran]
    assert "running elsewhere" in other or "already complete" in other, other
    ((_, execution),) = executions(app, "notify-expiring-coupons")
    assert (execution.status, execution.read, execution.written) == ("completed", total, total)
    assert count(app, Notification) == total


# -- resume after a kill ---------------------------------------------------------------------


def test_a_killed_execution_resumes_from_its_last_committed_chunk(app, settings, tmp_path):
    users, per_user = 3000, 8
    owners = bulk_users(app, "resume", users)
    today = utcnow().astimezone(SEOUL).date()
    coupons_ending(app, owners, today + timedelta(days=1), SEOUL, per_user=per_user)
    total = users * per_user
    env = process_env(settings, app.instance_path)
    argv = flask_command("jobs", "run", "notify-expiring-coupons", "--param", f"date={today}")

    job = Process(argv, env, tmp_path / "killed.log")
    try:

        def checkpointed() -> bool:
            found = executions(app, "notify-expiring-coupons")
            return bool(found) and found[0][1].read >= 2000

        wait_until(checkpointed, "a few committed chunks", timeout=120)
        os.killpg(job.process.pid, signal.SIGKILL)
        job.process.wait(10)
    finally:
        job.stop()
    recorded = count(app, Notification)
    assert 0 < recorded < total, f"not killed mid-run: {recorded} of {total}"

    rerun = Process(argv, env, tmp_path / "rerun.log")
    try:
        wait_until(lambda: rerun.process.poll() is not None, "the rerun", timeout=300)
    finally:
        rerun.stop()
    assert rerun.process.returncode == 0, rerun.output()
    assert f"notify-expiring-coupons: {total - recorded}" in rerun.output()
    (_, killed), (_, resumed) = executions(app, "notify-expiring-coupons")
    # The killed one's process is gone: taken for dead at once and marked failed.
    assert killed.status == "failed" and killed.error.startswith("abandoned"), killed.error
    assert resumed.status == "completed"
    # It resumed past the checkpoint: no gap, no overlap, only what was left was read again.
    assert resumed.read < total
    assert killed.read + resumed.read == total
    assert resumed.written == total - recorded
    with app.app_context():
        per_coupon = db.session.execute(
            select(func.count(), func.count(distinct(Notification.dedupe_key)))
        ).one()
    assert tuple(per_coupon) == (total, total)


# -- skipped items, the skip limit, restarts ------------------------------------------------


POISON = 99  # a coupon discount that the test-only processor below refuses


def _remind_unless_poisoned(coupon_ids: list[int]) -> int:
    discounts = db.session.scalars(select(Coupon.discount).where(Coupon.id.in_(coupon_ids)))
    if POISON in set(discounts):
        raise ValueError("poisoned coupon")
    return remind_coupon_owners(coupon_ids)


def _poison_steps(at: datetime) -> list[Step]:
    active = select(Coupon.id).where(Coupon.status == "active")
    return [Step("reminded", active, Coupon.id, _remind_unless_poisoned, 10, batch=True)]


remind_unless_poisoned = BatchJob("remind-unless-poisoned", _poison_steps)


def poison(app, coupon_ids: list[int], discount: int = POISON) -> None:
    with app.app_context():
        db.session.execute(
            update(Coupon).where(Coupon.id.in_(coupon_ids)).values(discount=discount)
        )
        db.session.commit()


def coupon_ids(app) -> list[int]:
    with app.app_context():
        return list(db.session.scalars(select(Coupon.id).order_by(Coupon.id)))


def test_a_poisoned_item_is_skipped_and_recorded_and_the_rest_of_its_chunk_commits(app):
    coupons_ending(app, bulk_users(app, "skip", 30), date(2027, 5, 1), SEOUL)
    ids = coupon_ids(app)
    poison(app, [ids[14]])
    with app.app_context():
        outcome = remind_unless_poisoned.launch(run_id())
    assert (outcome.status, outcome.read, outcome.written, outcome.skipped) == (
        "completed",
        30,
        29,
        1,
    )
    ((_, execution),) = executions(app, "remind-unless-poisoned")
    (skip,) = json.loads(execution.skips)
    assert skip["item"] == ids[14] and "poisoned coupon" in skip["error"]
    assert execution.status == "completed" and execution.skipped == 1
    # The other nine of its chunk were reminded; the poisoned one was not.
    reminded = {n.dedupe_key.split(":")[1] for n in rows(app, Notification)}
    assert reminded == {str(i) for i in ids if i != ids[14]}


def test_past_the_skip_limit_it_fails_and_an_admin_restart_resumes_it(
    make_app, login_as, run_worker
):
    app = make_app(JOB_SKIP_LIMIT=1)
    register(
        app,
        ScheduledJob(
            "remind-unless-poisoned",
            "* * * * *",
            "tests.integration.test_job_executions.remind_unless_poisoned",
            "a test job whose processor refuses poisoned coupons",
        ),
    )
    coupons_ending(app, bulk_users(app, "limit", 30), date(2027, 5, 1), SEOUL)
    ids = coupon_ids(app)
    poison(app, [ids[12], ids[15]])  # two in the second chunk: one more than the limit

    failed = invoke(app, "jobs", "run", "remind-unless-poisoned", "--param", "date=2027-05-01")
    assert failed.exit_code == 1, failed.output
    assert "skip limit 1 exceeded in step reminded" in failed.output
    ((_, execution),) = executions(app, "remind-unless-poisoned")
    # It read two chunks; only the first was committed whole, so that is where it resumes.
    assert (execution.status, execution.read, execution.skipped) == ("failed", 20, 2)
    assert json.loads(execution.position) == {"step": 0, "after": ids[9]}

    runs = invoke(app, "jobs", "runs", "--json")
    assert runs.exit_code == 0, runs.output
    (listed,) = [e for e in json.loads(runs.output) if e["job"] == "remind-unless-poisoned"]
    assert {k: listed[k] for k in ("id", "params", "status", "read", "skipped")} == {
        "id": execution.id,
        "params": {"date": "2027-05-01"},
        "status": "failed",
        "read": 20,
        "skipped": 2,
    }
    assert set(listed) >= {"job", "started_at", "ended_at", "written", "error"}
    table_output = invoke(app, "jobs", "runs").output
    assert "remind-unless-poisoned" in table_output and "date=2027-05-01" in table_output

    # Anonymous: to the login form. A patron: 403. An admin: the table and the error.
    anonymous = app.test_client().get("/admin/jobs")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    patron = login_as("pat@webpush-server.dev", app=app)
    assert patron.get("/admin/jobs").status_code == 403
    restart_url = f"/admin/jobs/executions/{execution.id}/restart"
    assert patron.post(restart_url).status_code == 403
    admin = login_as("boss@webpush-server.dev", "admin", app=app)
    page = admin.get("/admin/jobs")
    assert page.status_code == 200
    assert f'data-execution="{execution.id}" data-status="failed"' in page.text
    assert "skip limit 1 exceeded" in page.text and restart_url in page.text
    # The restart is a form post: without the CSRF token it is refused.
    assert admin.client.post(restart_url).status_code == 400

    poison(app, [ids[12], ids[15]], discount=10)  # the data is fixed
    restarted = admin.client.post(
        restart_url, data={"csrf_token": admin.csrf}, follow_redirects=True
    )
    assert restarted.status_code == 200 and "will resume on the worker" in restarted.text
    run_worker()
    (_, first), (_, resumed) = executions(app, "remind-unless-poisoned")
    assert first.id == execution.id and first.status == "failed"
    # From the second chunk on: four of it were told before the failure, the dedupe keys skip
    # them now.
    assert (resumed.status, resumed.read, resumed.written) == ("completed", 20, 16)
    assert count(app, Notification) == 30
    assert "No failed executions waiting" in admin.get("/admin/jobs").text
    # A completed instance cannot be restarted.
    assert admin.post(f"/admin/jobs/executions/{resumed.id}/restart").status_code == 302
    run_worker()
    assert len(executions(app, "remind-unless-poisoned")) == 2


# -- daily jobs on the local wall clock ------------------------------------------------------


def test_the_daily_job_fires_at_nine_in_new_york_on_both_dst_change_days(make_app):
    app = make_app(APP_TIMEZONE="America/New_York")
    owners = bulk_users(app, "dst", 2)
    spring, autumn = date(2027, 3, 14), date(2027, 11, 7)
    # 09:00 EDT is 13:00 UTC on the day clocks spring forward; 09:00 EST 14:00 on the day
    # they fall back.
    assert occurrence(spring, COUPON_REMINDER_TIME, NEW_YORK) == datetime(
        2027, 3, 14, 13, 0, tzinfo=UTC
    )
    assert occurrence(autumn, COUPON_REMINDER_TIME, NEW_YORK) == datetime(
        2027, 11, 7, 14, 0, tzinfo=UTC
    )
    for day in (spring, autumn):
        for last_day in (day, day + timedelta(1), day + timedelta(2)):
            coupons_ending(app, owners, last_day, NEW_YORK)

    # The spring day by hand, as `--param date=` names it; then the tick finds it complete.
    by_hand = invoke(app, "jobs", "run", "notify-expiring-coupons", "--param", "date=2027-03-14")
    assert by_hand.exit_code == 0 and "notify-expiring-coupons: 4" in by_hand.output
    with app.app_context():
        tick = start_daily_jobs(datetime(2027, 3, 14, 13, 1, tzinfo=UTC))
        assert "already complete" in tick["notify-expiring-coupons"]
        # The autumn day from the tick: not at 08:59 EST (13:59 UTC), once at 09:00.
        early = start_daily_jobs(datetime(2027, 11, 7, 13, 59, tzinfo=UTC))
        assert early["notify-expiring-coupons"] == "not due until 2027-11-07 14:00 UTC"
        due = start_daily_jobs(datetime(2027, 11, 7, 14, 0, 5, tzinfo=UTC))
        assert "completed: read 4, written 4" in due["notify-expiring-coupons"]
        again = start_daily_jobs(datetime(2027, 11, 7, 14, 1, tzinfo=UTC))
        assert "already complete" in again["notify-expiring-coupons"]
    again = invoke(app, "jobs", "run", "notify-expiring-coupons", "--param", "date=2027-11-07")
    assert again.exit_code == 0 and "already complete" in again.output

    with app.app_context():
        # The tick starts the other daily jobs (remind-loans, resume-holds) too.
        coupon_jobs = select(JobInstance).where(JobInstance.name == "notify-expiring-coupons")
        instances = {i.params_key: i.at for i in db.session.scalars(coupon_jobs).all()}
    assert instances == {
        '{"date":"2027-03-14"}': datetime(2027, 3, 14, 13, 0, tzinfo=UTC),
        '{"date":"2027-11-07"}': datetime(2027, 11, 7, 14, 0, tzinfo=UTC),
    }
    assert not any(e.late for _, e in executions(app, "notify-expiring-coupons"))
    # Each day reminded its own and the next day's coupons, each once.
    # The title shows the last day as the suite's English formatter writes it: "14 Mar 2027".
    titles = sorted(
        datetime.strptime(n.title.split(" expires on ")[1], "%d %b %Y").date()
        for n in rows(app, Notification)
    )
    assert titles == sorted(
        d for d in (spring, spring + timedelta(1), autumn, autumn + timedelta(1)) for _ in owners
    )


def test_a_scheduler_back_after_nine_runs_today_once_late_and_never_past_days(make_app):
    app = make_app(APP_TIMEZONE="America/New_York")
    owners = bulk_users(app, "late", 2)
    coupons_ending(app, owners, date(2027, 3, 16), NEW_YORK)
    # Down from 3 to 15 March; back at 11:30 EDT on the 15th.
    back = datetime.combine(date(2027, 3, 15), time(11, 30), tzinfo=NEW_YORK)
    with app.app_context():
        first = start_daily_jobs(back)["notify-expiring-coupons"]
        assert '{"date":"2027-03-15"}: execution' in first and "written 2" in first
        later = start_daily_jobs(back + timedelta(minutes=1))["notify-expiring-coupons"]
        assert "already complete" in later
        # The next morning on time: not late.
        next_day = datetime.combine(date(2027, 3, 16), time(9, 0, 30), tzinfo=NEW_YORK)
        assert "completed" in start_daily_jobs(next_day)["notify-expiring-coupons"]
    found = executions(app, "notify-expiring-coupons")
    assert [(params, e.late) for params, e in found] == [
        ('{"date":"2027-03-15"}', True),
        ('{"date":"2027-03-16"}', False),
    ]
    assert count(app, Notification) == 2  # the 16th's run found them already told
