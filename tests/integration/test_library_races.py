"""Concurrent check-ins and the scheduled scan never give one copy to two holds, skip a
patron, or notify anyone twice: real processes, real row-level concurrency."""

from __future__ import annotations

import subprocess
import threading

import requests
from sqlalchemy import select, update

from tests.helpers import process_env
from webpush_server.devrun import flask_command
from webpush_server.extensions import db
from webpush_server.library import services
from webpush_server.library.models import Copy, Hold, Loan
from webpush_server.notifications.models import Notification
from webpush_server.timeutil import utcnow

ROUNDS = 4


def _check_in(start: threading.Barrier, answers: list, web: requests.Session, url: str) -> None:
    start.wait()
    answers.append(web.post(url, timeout=60))


def _scan(start: threading.Barrier, answers: list, env: dict, cwd) -> None:
    start.wait()
    answers.append(
        subprocess.run(
            flask_command("jobs", "run", "detect-available-books"),
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
        )
    )


def test_concurrent_check_ins_and_scan_give_each_copy_once_in_queue_order(
    app, make_user, live_server, settings, tmp_path, login_as
):
    make_user("desk1@webpush-server.dev", role="librarian")
    make_user("desk2@webpush-server.dev", role="librarian")
    readers = [make_user(f"reader{i}@webpush-server.dev") for i in range(6)]
    desks = [login_as(f"desk{i}@webpush-server.dev", server=live_server) for i in (1, 2)]
    env = process_env(settings, app.instance_path)
    for round_number in range(ROUNDS):
        with app.app_context():
            book, copy_ids = services.add_book(f"Race {round_number}", "Tester", None, 3)
            book_id = book.id
            for copy_id, reader in zip(copy_ids[:2], readers[:2], strict=True):
                services.check_out(copy_id, f"reader{readers.index(reader)}@webpush-server.dev")
            # The third copy is out too, then returned "by hand" below, for the scan to find.
            services.check_out(copy_ids[2], "reader5@webpush-server.dev")
            queue = [services.place_hold(user_id, book_id).id for user_id in readers[2:5]]
            db.session.execute(
                update(Loan).where(Loan.copy_id == copy_ids[2]).values(returned_at=utcnow())
            )
            db.session.execute(update(Copy).where(Copy.id == copy_ids[2]).values(status="shelf"))
            db.session.commit()

        start = threading.Barrier(3)
        answers: list = []
        threads = [
            threading.Thread(
                target=_check_in,
                args=(
                    start,
                    answers,
                    desks[i],
                    f"{live_server}/api/library/copies/{copy_ids[i]}/return",
                ),
            )
            for i in (0, 1)
        ] + [threading.Thread(target=_scan, args=(start, answers, env, tmp_path))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(180)
        statuses = [a.status_code if hasattr(a, "status_code") else a.returncode for a in answers]
        assert sorted(statuses) == [0, 200, 200], [getattr(a, "text", a) for a in answers]

        with app.app_context():
            holds = db.session.scalars(
                select(Hold).where(Hold.id.in_(queue)).order_by(Hold.created_at, Hold.id)
            ).all()
            # Three copies, three patrons waiting in order: all three ready, none skipped.
            assert [h.status for h in holds] == ["ready", "ready", "ready"]
            held = [h.copy_id for h in holds]
            assert sorted(held) == sorted(copy_ids)  # each copy to exactly one hold
            copies = db.session.scalars(select(Copy).where(Copy.book_id == book_id)).all()
            assert {c.status for c in copies} == {"held"}
            keys = db.session.scalars(
                select(Notification.dedupe_key).where(Notification.kind == "book_available")
            ).all()
            for hold_id in queue:
                assert keys.count(f"hold-ready:{hold_id}") == 1


def test_two_scans_at_once_notify_each_patron_once(app, make_user, settings, tmp_path):
    readers = [make_user(f"scan{i}@webpush-server.dev") for i in range(4)]
    with app.app_context():
        book, copy_ids = services.add_book("Scanned twice", "Tester", None, 2)
        for copy_id, user_id in zip(copy_ids, readers[:2], strict=True):
            services.check_out(copy_id, f"scan{readers.index(user_id)}@webpush-server.dev")
        queue = [services.place_hold(user_id, book.id).id for user_id in readers[2:]]
        db.session.execute(update(Loan).values(returned_at=utcnow()))
        db.session.execute(update(Copy).values(status="shelf"))
        db.session.commit()
    env = process_env(settings, app.instance_path)
    scans = [
        subprocess.Popen(
            flask_command("jobs", "run", "detect-available-books"),
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [scan.communicate(timeout=120)[0] for scan in scans]
    assert [scan.returncode for scan in scans] == [0, 0], outputs
    counts = sorted(int(out.strip().rsplit(":", 1)[1]) for out in outputs)
    assert sum(counts) == 2, outputs  # between them they readied two holds, not four
    with app.app_context():
        assert [db.session.get(Hold, h).status for h in queue] == ["ready", "ready"]
        assert len(db.session.scalars(select(Notification)).all()) == 2
