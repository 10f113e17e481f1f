"""The Pool on a real Grid Engine (start one with ``local_clusters/sge/start.sh``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest
from failing_maps import (
    HOUR_OF_GRACE_WOULD_HANG,
    events_after_resume,
    map_arguments,
    running_jobs_logged,
)
from interpreters import OTHER_VERSION, other_version_python, skip_the_submitters_check
from real_schedulers import require_scheduler
from session_logs import session_events
from waiting import wait_for

import pypoolparty
from pypoolparty.scheduler import SubmissionRejected
from pypoolparty.sun_grid_engine import parsing

pytestmark = pytest.mark.sge


@pytest.fixture(autouse=True)
def real_sge():
    require_scheduler("sge")


def make_pool(tmp_path, **options):
    from pypoolparty import sun_grid_engine

    settings = dict(work_dir=str(tmp_path / "work"), polling_interval=0.5)
    settings.update(options)
    return sun_grid_engine.Pool(**settings)


def queued_jobs() -> list[parsing.QstatEntry]:
    output = subprocess.run(["qstat", "-xml"], capture_output=True, text=True, check=True)
    return parsing.parse_qstat_xml(output.stdout)


def queued_job_names() -> list[str]:
    return [entry.name for entry in queued_jobs()]


def test_map_of_a_thousand_tasks(tmp_path):
    pool = make_pool(tmp_path, job_name_prefix="pppmap")
    assert pool.map(lambda x: x * x, range(1000)) == [x * x for x in range(1000)]
    # tasks that wrote their results may still be exiting ("r", or "dr" once cancelled)
    wait_for(lambda: not [n for n in queued_job_names() if n.startswith("pppmap")], 30)


def test_starmap_of_a_thousand_tasks(tmp_path):
    pool = make_pool(tmp_path, num_simultaneously_running_tasks=2)
    tasks = [(x, x + 1) for x in range(1000)]
    assert pool.starmap(lambda a, b: a * b, tasks) == [x * (x + 1) for x in range(1000)]


def exit_100_on_first_try(marker_dir):
    # A job that exits with 100 goes to Grid Engine's error state Eqw.
    def task(x):
        marker = os.path.join(marker_dir, f"{x}.tried")
        if x == 5 and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(100)
        return -x

    return task


def test_a_job_in_error_state_is_resubmitted_and_the_map_completes(tmp_path):
    pool = make_pool(tmp_path, keep_work_dir=True, max_num_resubmissions=2)
    task = exit_100_on_first_try(str(tmp_path))
    assert pool.map(task, range(12), chunksize=3) == [-x for x in range(12)]
    failures = [e for e in session_events(tmp_path / "work") if e["event"] == "job_failed"]
    assert len(failures) == 1
    assert failures[0]["reason"].startswith("Eqw")
    assert "exit_status of job start = 100" in failures[0]["reason"]


def test_exhausted_resubmissions_raise_and_leave_nothing_queued(tmp_path):
    pool = make_pool(tmp_path, max_num_resubmissions=1, job_name_prefix="pppexhaust")
    with pytest.raises(pypoolparty.ResubmissionsExhausted) as raised:
        pool.map(lambda x: os._exit(100), range(2))
    assert "Eqw" in str(raised.value) and "exit_status of job start = 100" in str(raised.value)
    wait_for(lambda: not [n for n in queued_job_names() if n.startswith("pppexhaust")], 30)


CTRL_C_SCRIPT = """
import sys, time
from pypoolparty import sge
pool = sge.Pool(work_dir=sys.argv[1], polling_interval=0.5, job_name_prefix="pppctrlc")
pool.map(time.sleep, [60] * 4)
"""


def test_ctrl_c_leaves_nothing_in_qstat(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-c", CTRL_C_SCRIPT, str(tmp_path / "work")],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        wait_for(lambda: any(n.startswith("pppctrlc") for n in queued_job_names()), 60)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode != 0 and "map interrupted" in stderr
    wait_for(lambda: not [n for n in queued_job_names() if n.startswith("pppctrlc")], 30)


def job_description(_):
    return subprocess.run(
        ["qstat", "-j", os.environ["JOB_ID"]], capture_output=True, text=True
    ).stdout


def test_resource_options_reach_the_job(tmp_path):
    pool = make_pool(
        tmp_path,
        queue_name="all.q",
        parallel_environment="smp",
        slots=1,
        resources={"h_rt": "0:10:00", "h_vmem": "1G"},
    )
    (description,) = pool.map(job_description, [0])
    lines = dict(line.split(":", 1) for line in description.splitlines() if ":" in line)
    assert set(lines["hard resource_list"].strip().split(",")) == {"h_rt=600", "h_vmem=1G"}
    assert lines["hard_queue_list"].strip() == "all.q"
    assert "smp" in lines["parallel environment"]


def test_a_bad_option_gives_qsubs_own_message(tmp_path):
    pool = make_pool(tmp_path, queue_name="nosuch.q")
    with pytest.raises(SubmissionRejected, match='unknown queue "nosuch.q"'):
        pool.map(abs, [1])


def test_a_held_job_is_left_alone_until_released(tmp_path):
    pool = make_pool(tmp_path, qsub_arguments=["-h"], keep_work_dir=True, job_name_prefix="ppphold")
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(results=pool.map(abs, [-1, -2])))
    thread.start()
    try:
        held = wait_for(
            lambda: [
                e
                for e in session_events(tmp_path / "work")
                if e["event"] == "job_state" and e["state"] == "held"
            ],
            60,
        )
        assert held[0]["scheduler_state"] == "hqw"
    finally:
        job_numbers = {e.job_number for e in queued_jobs() if e.name.startswith("ppphold")}
        subprocess.run(["qrls", *job_numbers], capture_output=True, check=False)
        thread.join(120)
    assert outcome["results"] == [1, 2]


# Issue 17, items 2, 4 and 22 (see tests/test_failure_handling.py for every pool).


def test_a_job_that_failed_is_resubmitted_at_once_as_qacct_tells(tmp_path):
    args = map_arguments(tmp_path, "pypoolparty.sun_grid_engine", {"polling_interval": 0.5}, "dies")
    done = subprocess.run(args, capture_output=True, text=True, timeout=HOUR_OF_GRACE_WOULD_HANG)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str([x + 100 for x in range(6)])
    (failure,) = [e for e in session_events(tmp_path / "work") if e["event"] == "job_failed"]
    assert failure["ichunk"] == 1 and "exit_status 3" in failure["reason"]


def test_continuing_after_ctrl_c_submits_the_cancelled_chunks_at_once(tmp_path):
    (tmp_path / "gate").touch()
    args = map_arguments(tmp_path, "pypoolparty.sun_grid_engine", {"polling_interval": 0.5}, "gate")
    interrupted = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: running_jobs_logged(tmp_path / "work"), timeout=60)
        interrupted.send_signal(signal.SIGINT)
        _, stderr = interrupted.communicate(timeout=60)
    finally:
        interrupted.kill()
    assert "KeyboardInterrupt" in stderr
    (tmp_path / "gate").unlink()
    again = subprocess.run(args, capture_output=True, text=True, timeout=HOUR_OF_GRACE_WOULD_HANG)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == str([x + 100 for x in range(6)])
    continued = events_after_resume(tmp_path / "work")
    assert continued[0]["adopted_jobs"] == 0
    # At once, in one submission: the lowest chunks, a job per slot, which
    # claim the others.
    submitting = [e["chunks"] for e in continued if e["event"] == "submitting"]
    assert len(submitting) == 1 and submitting[0][0][0] == 0
    assert not [e for e in continued if e["event"] == "job_failed"]


def test_a_missing_interpreter_ends_the_map_at_once(tmp_path, monkeypatch):
    # The interpreter exists where the pool is made, but not where the jobs run.
    skip_the_submitters_check(monkeypatch)
    interpreter = tmp_path / "python3"
    interpreter.symlink_to(sys.executable)
    pool = make_pool(
        tmp_path,
        python_path=str(interpreter),
        max_num_resubmissions=5,
        job_name_prefix="pppnopython",
        missing_result_grace_period=3600,
    )
    interpreter.unlink()
    with pytest.raises(pypoolparty.JobCannotRun) as raised:
        pool.map(abs, range(2))
    message = str(raised.value)
    assert "exit_status 127" in message and "python_path" in message
    assert str(interpreter) in message  # the job's stderr names it
    assert "call the same map" not in message
    wait_for(lambda: not [n for n in queued_job_names() if n.startswith("pppnopython")], 30)


def test_a_node_with_another_python_ends_the_map_at_once(tmp_path, monkeypatch):
    # Issue 16, item 4: the python_path passes the check on the submit host
    # (skipped in this process), but the nodes' interpreter at that path is
    # another Python: the worker's own check stops it before it unpickles.
    skip_the_submitters_check(monkeypatch)
    python = other_version_python(tmp_path)
    pool = make_pool(
        tmp_path,
        python_path=python,
        max_num_resubmissions=5,
        job_name_prefix="pppotherpython",
        missing_result_grace_period=3600,
    )
    with pytest.raises(pypoolparty.InterpreterMismatch) as raised:
        pool.map(abs, range(4), chunksize=1)
    message = str(raised.value)
    assert f"{python!r} is Python {OTHER_VERSION} in job" in message
    assert "No task ran" in message and "call the same map" not in message
    events = session_events(tmp_path / "work")
    assert len([e for e in events if e["event"] == "submitting"]) == 1  # never resubmitted
    assert len([e for e in events if e["event"] == "job_failed"]) == 1
    wait_for(lambda: not [n for n in queued_job_names() if n.startswith("pppotherpython")], 30)
