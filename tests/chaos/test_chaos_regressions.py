"""Bugs the chaos scenarios found, each reduced to one deterministic test."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import chaos_tasks
import pytest
from chaos_bounded import call_within
from chaos_runner import kill_processes_mentioning, processes_mentioning
from waiting import wait_for

import dummy_queues
import pypoolparty
from pypoolparty import crash_points

LINGERING_JOB = """#!/bin/sh
# Attempt 1 ends without a result; attempt 2 writes it, then lingers (as a
# job in a slow epilogue would) until it is cancelled. The submitter's
# interpreter check (python -c ...) gets the real Python.
case "$1" in -c) exec "{python}" "$@";; esac
if mkdir "{marker}" 2>/dev/null; then exit 0; fi
"{python}" "$@" || exit 1
exec "{python}" -c "import time; time.sleep(120)" "$@"
"""


@pytest.mark.chaos
def test_a_job_resubmitted_just_before_the_map_finishes_is_cancelled(tmp_path):
    """Chaos seeds 103, 106 (sge) and 197 (htcondor): a job resubmitted after a
    late result, or one lingering after writing its result, was not cancelled
    when the map finished: it ran on (the chunk again) after the map returned."""
    fake_python = tmp_path / "python"
    fake_python.write_text(
        LINGERING_JOB.format(marker=tmp_path / "first-attempt", python=sys.executable)
    )
    fake_python.chmod(0o755)
    work_dir = tmp_path / "work"
    pool = pypoolparty.local.Pool(
        1,
        python_path=str(fake_python),
        work_dir=str(work_dir),
        missing_result_grace_period=0.2,
        # The result arrives well before the next poll sees the new job.
        polling_interval=2.0,
    )
    task = (3, False, 0.0)
    try:
        results = call_within(60, pool.map, chaos_tasks.compute, [task])
        assert results == [chaos_tasks.compute(task)]
        assert processes_mentioning(str(work_dir)) == []
    finally:
        kill_processes_mentioning(str(work_dir))


LINGER_AFTER_RESULT = """#!/bin/sh
# Write the result, then linger (as a job in a slow epilogue would). The
# submitter's interpreter check (python -c ...) gets the real Python.
case "$1" in -c) exec "{python}" "$@";; esac
"{python}" "$@" || exit 1
exec "{python}" -c "import time; time.sleep(120)" "$@"
"""

MAP_SCRIPT = """
import sys
import time
sys.path.insert(0, {tests_dir!r})
import chaos_tasks
import pypoolparty

pool = pypoolparty.local.Pool(1, python_path={python_path!r}, work_dir={work_dir!r})
print(pool.map(chaos_tasks.compute, [(5, False, 0.0)]))
"""


@pytest.mark.chaos
def test_a_resumed_map_cancels_the_jobs_its_killed_predecessor_left(tmp_path):
    """Chaos seed 25 (sge): the submitting process was killed after archiving
    a result while a job of that chunk was still in the queue; calling the map
    again finished at once and never cancelled that job."""
    fake_python = tmp_path / "python"
    fake_python.write_text(LINGER_AFTER_RESULT.format(python=sys.executable))
    fake_python.chmod(0o755)
    work_dir = tmp_path / "work"
    script = tmp_path / "map.py"
    script.write_text(
        MAP_SCRIPT.format(
            tests_dir=os.path.dirname(os.path.abspath(__file__)),
            python_path=str(fake_python),
            work_dir=str(work_dir),
        )
    )
    env = {k: v for k, v in os.environ.items() if k != crash_points.VARIABLE}
    try:
        killed = subprocess.run(
            [sys.executable, str(script)],
            env={**env, crash_points.VARIABLE: "during_fold"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        again = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60
        )
        assert again.returncode == 0, again.stderr
        assert again.stdout.strip() == str([chaos_tasks.compute((5, False, 0.0))])
        assert processes_mentioning(str(work_dir)) == []
    finally:
        kill_processes_mentioning(str(work_dir))


@pytest.mark.chaos
@pytest.mark.parametrize("kind", ["slurm_array", "slurm_job", "sge", "htcondor"])
def test_a_cancel_answered_with_garbage_does_not_leave_the_job_queued(kind, tmp_path, dummy_queue):
    """Chaos seed 253 (htcondor): a cancel command that printed garbage and
    exited 0 was taken for done; the held job it should have removed stayed
    in the queue after the map had failed."""
    dummy = dummy_queue(kind)
    dummy.set_faults(error_probability=1.0, garbage_commands={dummy.commands[2]: 1})
    pool = dummy_queues.make_pool(
        kind,
        work_dir=str(tmp_path / "work"),
        polling_interval=0.05,
        command_timeout=2.0,
        outage_timeout=20.0,
        max_num_resubmissions=1,
    )
    with pytest.raises(pypoolparty.ResubmissionsExhausted):
        call_within(60, pool.map, chaos_tasks.compute, [(1, False, 0.0)])
    assert dummy.queued_jobs() == []


SLEEPING_JOB = """universe = vanilla
executable = /bin/sleep
arguments = 0.5
log = {log}
queue 1
"""


@pytest.mark.chaos
def test_the_dummy_htcondor_ends_a_job_whose_log_directory_was_removed(tmp_path, dummy_htcondor):
    """Chaos seed 197: a map removed its work_dir while a duplicate job ran;
    writing that job's event log killed the dummy's runner, and the job
    stayed "running" in the dummy queue for good."""
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    submit_file = tmp_path / "job.sub"
    submit_file.write_text(SLEEPING_JOB.format(log=log_dir / "events.log"))
    assert dummy_htcondor.run("condor_submit", "-terse", str(submit_file)).returncode == 0
    shutil.rmtree(log_dir)
    wait_for(lambda: dummy_htcondor.queued_jobs() == [], 30)


@pytest.mark.chaos
def test_the_dummy_slurm_fails_a_job_whose_output_directory_is_gone(tmp_path, dummy_slurm):
    """A job left pending after its map removed the work_dir killed the dummy
    SLURM's runner when it started, and no later job ever ran."""
    for output in (tmp_path / "gone" / "out.txt", tmp_path / "out.txt"):
        submitted = dummy_slurm.run("sbatch", "--parsable", f"--output={output}", "--wrap", "true")
        assert submitted.returncode == 0, submitted.stderr
    wait_for(lambda: dummy_slurm.queued_jobs() == [], 30)
    assert (tmp_path / "out.txt").exists()
