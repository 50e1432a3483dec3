"""bench/chaos.py, small: kills and a misbehaving push service lose nothing and repeat little."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.helpers import ROOT


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


def test_chaos_run_loses_nothing_and_repeats_at_most_a_sub_batch_per_kill():
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    env.pop("DATABASE_URL", None)  # chaos keeps its own SQLite file in its temp folder
    env["PYTHONPATH"] = str(ROOT)
    run = subprocess.run(
        [sys.executable, "bench/chaos.py", "--n", "200", "--worker-kills", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    figures = re.search(r"figures: lost=(\d+) duplicates=(\d+)", run.stdout)
    assert figures, run.stdout
    lost, duplicates = map(int, figures.groups())
    assert lost == 0
    # One worker and one Redis kill: each repeats at most the sub-batch in flight.
    assert duplicates <= 2 * 50, run.stdout
    assert "kill worker" in run.stdout and "kill redis" in run.stdout
    assert "early: 0" in run.stdout, run.stdout
    folder = re.search(r"in (\S+webpush-chaos-\S+)", run.stdout).group(1)
    assert processes_in(folder) == [], "chaos left processes behind"
