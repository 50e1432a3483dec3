"""bench/chaos.py, small: kills and a misbehaving push service lose nothing and repeat little.

Some recipients are e-mailed as well, through a real SMTP server: a killed worker loses no
e-mail either.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from sqlalchemy import create_engine, make_url, text

from tests.helpers import ROOT
from webpush_server.config import normalize_database_url


def processes_in(folder: str) -> list[int]:
    """Pids of the processes whose working folder is inside folder."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/cwd").startswith(folder):
                found.append(int(pid))
        except OSError:
            pass
    return found


def chaos_database(url: str) -> str:
    """Return the URL of a PostgreSQL database for chaos on the suite's server, made if new."""
    parts = make_url(normalize_database_url(url))
    name = f"{parts.database}_chaos"
    engine = create_engine(parts, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        known = connection.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if not known:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return parts.set(database=name).render_as_string(hide_password=False)


def test_chaos_run_loses_no_push_or_email_and_repeats_at_most_a_sub_batch_per_kill():
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    # On SQLite chaos keeps its own file in its temp folder; on PostgreSQL a database of its
    # own beside the suite's (the bench empties the one it is given).
    url = env.pop("DATABASE_URL", None)
    database = ["--database-url", chaos_database(url)] if url else []
    env["PYTHONPATH"] = str(ROOT)
    run = subprocess.run(
        [sys.executable, "bench/chaos.py", "--n", "200", "--worker-kills", "1", *database],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    figures = re.search(
        r"figures: lost=(\d+) duplicates=(\d+) mismatched=(\d+) emails=(\d+) email_lost=(\d+) "
        r"email_unreceived=(\d+) overdue=(\d+) gone_kept=(\d+) forbidden_removed=(\d+)",
        run.stdout,
    )
    assert figures, run.stdout
    lost, duplicates, mismatched, emails, email_lost, unreceived, overdue, gone, forbidden = map(
        int, figures.groups()
    )
    assert lost == 0
    # A fifth of the recipients are e-mailed too (tests/mailserver.py, some addresses refused
    # for a while): every e-mail delivery finished, and each one sent reached the server.
    assert emails == 40 and email_lost == 0 and unreceived == 0, run.stdout
    assert "e-mail: 40 deliveries by status" in run.stdout
    # Every copy of a repeat carries its notification's tag and Topic; nothing is left
    # pending past its due time at the end; 410s removed their device, 403s kept theirs.
    assert mismatched == 0 and overdue == 0 and gone == 0 and forbidden == 0, run.stdout
    # One worker and one Redis kill: each repeats at most the sub-batch in flight.
    assert duplicates <= 2 * 50, run.stdout
    assert "kill worker" in run.stdout and "kill redis" in run.stdout
    early = re.findall(r"early: (\d+)", run.stdout)
    assert early and set(early) == {"0"}, run.stdout
    folder = re.search(r"in (\S+webpush-chaos-\S+)", run.stdout).group(1)
    assert processes_in(folder) == [], "chaos left processes behind"
