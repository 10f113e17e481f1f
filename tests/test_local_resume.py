"""The submitting process dies (SIGKILL) at chosen moments; calling the
same map again must finish it without running any completed chunk twice."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from pypoolparty import crash_points

SCRIPT = """
import os, time
import pypoolparty

def record(x):
    path = os.path.join({side_effects!r}, str(x))
    with open(path, "a") as file:
        file.write("started\\n")
    time.sleep(0.2)
    with open(path, "a") as file:
        file.write("finished\\n")
    return x + 100

if __name__ == "__main__":
    pool = pypoolparty.local.Pool(2, work_dir={work_dir!r})
    print(pool.map(record, range(12), chunksize=1))
"""


def run_script(script, crash_at=None):
    env = {k: v for k, v in os.environ.items() if k != crash_points.VARIABLE}
    if crash_at is not None:
        env[crash_points.VARIABLE] = crash_at
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.mark.parametrize("crash_at", crash_points.POINTS)
def test_resume_after_sigkill_runs_no_completed_chunk_twice(tmp_path, crash_at):
    side_effects = tmp_path / "side_effects"
    side_effects.mkdir()
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            SCRIPT.format(side_effects=str(side_effects), work_dir=str(tmp_path / "work"))
        )
    )
    killed = run_script(script, crash_at=crash_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    finished = run_script(script)
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == str([x + 100 for x in range(12)])
    # A task the kill interrupted may start again; a finished one never runs again.
    finished_runs = {p.name: p.read_text().count("finished") for p in side_effects.iterdir()}
    assert finished_runs == {str(x): 1 for x in range(12)}
