"""E-mails and SMS per second through the pipeline, against local servers, with worker CPU.

Starts a counting SMTP server (aiosmtpd) and a local Twilio Messages API stand-in in this
process, a private redis-server, a fresh SQLite database and one `flask jobs worker`; creates
N users who chose e-mail (phase 1) and then SMS (phase 2) for announcements, records one
notice each and times until every delivery row of the phase has ended. In the same run a
naive loop sends M messages the simplest way (a new SMTP connection per e-mail, one urllib
POST per SMS) as the baseline; the ratios compare the two. Figures only: it fails on errors.

    .venv/bin/python bench/channels.py [--n 2000] [--naive 200]
"""

from __future__ import annotations

import argparse
import os
import smtplib
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import free_port  # noqa: E402 - after the path is set
from tests.mailserver import MailServer  # noqa: E402
from tests.twilioservice import TwilioStandIn  # noqa: E402


def cpu_seconds(pid: int) -> float:
    """Return user+system CPU seconds of a live process (Linux /proc), or 0.0."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_users(app, n: int) -> list[int]:
    """Create n users with a verified number who want announcements by e-mail and SMS."""
    from sqlalchemy import insert

    from webpush_server.auth.models import User
    from webpush_server.channels.models import Preference
    from webpush_server.extensions import db
    from webpush_server.timeutil import utcnow

    now = utcnow()
    with app.app_context():
        users = [
            {"email": f"u{i}@bench.test", "name": f"U{i}", "password_hash": "x", "role": "patron"}
            for i in range(n)
        ]
        ids = list(db.session.scalars(insert(User).returning(User.id), users))
        db.session.execute(
            insert(Preference),
            [
                {
                    "user_id": uid,
                    "language": "en",
                    "digest_hour": 8,
                    "kinds": {"announcement": {"push": False, "email": True, "sms": True}},
                    "phone_number": f"+8210{10000000 + i}",
                    "phone_verified_at": now,
                }
                for i, uid in enumerate(ids)
            ],
        )
        db.session.commit()
        return ids


def record(app, ids: list[int], channel: str, phase: str) -> None:
    from webpush_server.extensions import db
    from webpush_server.notifications.record import Notice, record_notices

    with app.app_context():
        notices = [
            Notice(
                user_id=uid,
                kind="announcement",
                title="The library closes early today",
                body="We close at 16:00 for a staff meeting.",
                url="/library/",
                dedupe_key=f"bench:{phase}:{uid}",
                push=False,
                channels=frozenset({channel}),
            )
            for uid in ids
        ]
        record_notices(notices)
        db.session.commit()


def wait_done(app, channel: str, n: int, timeout: float = 900) -> dict[str, int]:
    from sqlalchemy import func, select

    from webpush_server.extensions import db
    from webpush_server.notifications.models import Delivery

    deadline = time.monotonic() + timeout
    while True:
        with app.app_context():
            counts = dict(
                db.session.execute(
                    select(Delivery.status, func.count())
                    .where(Delivery.channel == channel)
                    .group_by(Delivery.status)
                ).all()
            )
        if sum(counts.values()) >= n and not (counts.get("pending") or counts.get("sending")):
            return counts
        if time.monotonic() > deadline:
            raise SystemExit(f"{channel}: not done after {timeout} s: {counts}")
        time.sleep(0.2)


def naive_email(url_port: int, m: int) -> float:
    started = time.perf_counter()
    for i in range(m):
        message = EmailMessage()
        message["Subject"], message["From"], message["To"] = "Hi", "a@bench.test", f"n{i}@b.test"
        message.set_content("The library closes early today.")
        with smtplib.SMTP("127.0.0.1", url_port) as client:
            client.send_message(message)
    return m / (time.perf_counter() - started)


def naive_sms(twilio: TwilioStandIn, m: int) -> float:
    import base64

    settings = twilio.settings()
    url = f"{twilio.base}/2010-04-01/Accounts/{settings['TWILIO_ACCOUNT_SID']}/Messages.json"
    auth = f"{settings['TWILIO_ACCOUNT_SID']}:{settings['TWILIO_AUTH_TOKEN']}"
    header = "Basic " + base64.b64encode(auth.encode()).decode()
    started = time.perf_counter()
    for i in range(m):
        data = urllib.parse.urlencode({"To": f"+8219{i:08d}", "From": "+1", "Body": "Hi"})
        request = urllib.request.Request(url, data=data.encode(), headers={"Authorization": header})
        with urllib.request.urlopen(request) as answer:
            answer.read()
    return m / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--naive", type=int, default=200)
    args = parser.parse_args(argv)
    from webpush_server import create_app, redis_server

    print(f"load average at start: {Path('/proc/loadavg').read_text().strip()}")
    with tempfile.TemporaryDirectory() as tmpdir, MailServer() as mail, TwilioStandIn() as sms:
        tmp = Path(tmpdir)
        port = free_port()  # for redis
        redis = redis_server.start(tmp / "redis", port=port)
        env = {
            "DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}",
            "REDIS_URL": f"redis://127.0.0.1:{port}/0",
            "VAPID_SUBJECT": "mailto:bench@webpush-server.dev",
            "SECRET_KEY": "bench",
            "MAIL_URL": mail.url,
            "PUBLIC_URL": "http://bench.test",
            "INSTANCE_PATH": str(tmp / "instance"),
            "PYTHONPATH": str(ROOT),
            **{k: str(v) for k, v in sms.settings().items()},
        }
        os.environ.update(env)
        flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
        subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, check=True, capture_output=True)
        subprocess.run([*flask, "vapid", "generate"], cwd=ROOT, check=True, capture_output=True)
        app = create_app()
        ids = make_users(app, args.n)
        log = open(tmp / "worker.log", "wb")  # noqa: SIM115 - closed at exit
        worker = subprocess.Popen(
            [*flask, "jobs", "worker"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            from redis import Redis
            from rq import Worker

            connection = Redis.from_url(env["REDIS_URL"])
            while not Worker.all(connection=connection):  # registered: imported, ready
                if worker.poll() is not None:
                    raise SystemExit(f"the worker exited; see {tmp / 'worker.log'}")
                time.sleep(0.1)
            rates = {}
            for channel in ("email", "sms"):
                cpu0, started = cpu_seconds(worker.pid), time.perf_counter()
                record(app, ids, channel, channel)
                counts = wait_done(app, channel, args.n)
                elapsed = time.perf_counter() - started
                cpu = cpu_seconds(worker.pid) - cpu0
                rates[channel] = args.n / elapsed
                print(
                    f"{channel}: {args.n} in {elapsed:.1f} s = {rates[channel]:.0f}/s; "
                    f"worker CPU {cpu * 1000 / args.n:.2f} ms per message; outcomes {counts}"
                )
            got_mail, got_sms = len(mail.received), len(sms.messages)
            assert got_mail == args.n and got_sms == args.n, (got_mail, got_sms)
            email_naive = naive_email(mail.port, args.naive)
            sms_naive = naive_sms(sms, args.naive)
            print(
                f"naive e-mail (a connection each): {email_naive:.0f}/s; "
                f"pipeline / naive = {rates['email'] / email_naive:.2f}"
            )
            print(
                f"naive SMS (one POST each, no DB): {sms_naive:.0f}/s; "
                f"pipeline / naive = {rates['sms'] / sms_naive:.2f}"
            )
        finally:
            worker.terminate()
            worker.wait(30)
            redis.terminate()
            redis.wait(10)
    print(f"load average at end: {Path('/proc/loadavg').read_text().strip()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
