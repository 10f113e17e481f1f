"""The progress display of a real map, as a user sees it on standard error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from waiting import wait_for

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = """
import os, sys, time
import pypoolparty

def slow(x):
    open(os.path.join({marks!r}, str(x)), "w").close()
    time.sleep(60)
    return x

if __name__ == "__main__":
    pool = pypoolparty.local.Pool(2, work_dir={work_dir!r}, verbose=True, polling_interval=0.05)
    pool.map(slow, range(4), chunksize=1)
"""


def test_no_progress_line_follows_the_map_stopped_line_after_ctrl_c(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(SCRIPT.format(marks=str(marks), work_dir=str(tmp_path / "work")))
    )
    process = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=REPO_DIR),
    )
    try:
        wait_for(lambda: len(os.listdir(marks)) == 2)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    lines = stderr.splitlines()
    (stopped,) = [i for i, line in enumerate(lines) if "map stopped" in line]
    progress_lines = [i for i, line in enumerate(lines) if "tasks done" in line]
    assert progress_lines, stderr
    assert max(progress_lines) < stopped, stderr
    assert "KeyboardInterrupt" in stderr
