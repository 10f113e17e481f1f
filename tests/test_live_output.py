"""``pypoolparty stdout/stderr`` of a task that still runs: hand-built work_dirs, a real SLURM."""

import os
import pickle
import re
import socket
import subprocess
import sys
import threading
import uuid

import cloudpickle
import hand_built_sessions
import pytest
from real_schedulers import require_scheduler
from waiting import wait_for

import pypoolparty
import pypoolparty.slurm.array
from pypoolparty import archive, cli, event_log, task_records, work_dir
from pypoolparty.inspection import job_outputs
from pypoolparty.shell_commands import ShellResult, running_output_path
from pypoolparty.work_dir import LockHolder


def new_session(base, num_tasks, chunksize, function="simulate") -> work_dir.SessionDir:
    return hand_built_sessions.new_session(
        base, num_tasks, chunksize, function=function, scheduler="slurm"
    )


def submitted(session_dir, jobid, ichunk) -> str:
    """Log chunk ``ichunk``'s job as submitted; the path of its stdout file."""
    log = event_log.EventLog(session_dir.log_path)
    log.write(event_log.SESSION_STARTED, resuming=False, pid=1)
    log.write(
        event_log.SUBMITTED,
        submission="s-1",
        jobs=[event_log.job_row(jobid, ichunk, f"{ichunk}.out", f"{ichunk}.err")],
    )
    log.close()
    return os.path.join(session_dir.path, f"{ichunk}.out")


def record_finished(session_dir, ichunk, itasks) -> None:
    """Records of finished tasks, as the worker appends them while its chunk runs."""
    path = os.path.join(task_records.directory(session_dir.path), f"{ichunk}.node7.42.ab.records")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "ab") as file:
        for itask in itasks:
            entry = {"itask": itask, "start": 1.0, "end": 2.0, "result": cloudpickle.dumps(itask)}
            file.write(task_records.encode(itask, pickle.dumps(entry, protocol=4)))


def output(capsys, *args) -> tuple[int, str, str]:
    status = cli.main(list(map(str, args)))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


# -- a Python map ---------------------------------------------------------------


@pytest.fixture
def running_chunk(tmp_path):
    """Chunk 1 (tasks 3..5) runs in job 77: task 3 finished, task 4 runs, task 5 waits."""
    session_dir = new_session(str(tmp_path), num_tasks=9, chunksize=3)
    stdout_path = submitted(session_dir, "77", 1)
    with open(stdout_path, "w") as file:
        file.write("task 3 says hi\ntask 4 step 1\ntask 4 step 2\n")
    record_finished(session_dir, 1, [3])
    return session_dir, stdout_path


@pytest.mark.parametrize(
    "itask, state",
    [
        (4, "is still running"),
        (3, "has finished, and its job still runs the rest of its chunk"),
        (5, "has not started yet"),
    ],
)
def test_a_task_of_a_running_chunk_shows_its_jobs_output_so_far_and_says_where(
    running_chunk, capsys, itask, state
):
    session_dir, stdout_path = running_chunk
    status, out, err = output(capsys, "stdout", session_dir.path, itask)
    assert status == 0
    assert out == "task 3 says hi\ntask 4 step 1\ntask 4 step 2\n"
    assert f"task {itask} {state}" in err and "(chunk 1, job 77)" in err
    assert f"from {stdout_path}" in err
    assert "tasks 3..5 of chunk 1 write to it" in err


def test_only_the_end_of_a_huge_live_output_is_read(running_chunk, capsys, monkeypatch):
    session_dir, stdout_path = running_chunk
    monkeypatch.setattr(job_outputs, "MAX_SHOWN_BYTES", 10)
    with open(stdout_path, "a") as file:
        file.write("x" * 5000 + "last line\n")
    status, out, err = output(capsys, "stdout", session_dir.path, 4)
    assert status == 0
    assert out == "last line\n"
    assert "only its last 10 B are shown" in err and "before them are in the file" in err


def test_a_finished_chunk_shows_its_archived_output_as_before(running_chunk, capsys):
    session_dir, _ = running_chunk
    archive.append(session_dir.archive_path("stdout"), {work_dir.job_output_member(1): b"all\n"})
    status, out, err = output(capsys, "stdout", session_dir.path, 4)
    assert (status, out) == (0, "all\n")
    assert "stdout of task 4 (chunk 1, archive):" in err
    assert "running" not in err


# -- a task-list run ------------------------------------------------------------


@pytest.fixture
def tasklist_map(tmp_path):
    """A run of 3 lines whose map (lines 2, 5, 9 as tasks 0, 1, 2) is in progress."""
    base = str(tmp_path / "work")
    run_dir, session_dir = hand_built_sessions.task_list_map(base)
    return base, run_dir, session_dir


def test_a_running_command_of_a_task_list_shows_its_own_output_so_far(tasklist_map, capsys):
    base, run_dir, session_dir = tasklist_map
    path = running_output_path(session_dir.path, 1, "stderr")
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as file:
        file.write("50% done\n")
    runner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    lock = LockHolder(host=socket.gethostname(), pid=runner.pid)
    try:
        with open(os.path.join(run_dir.path, "runner.lock"), "w") as file:
            file.write(lock.to_json())  # a live runner
        status, out, err = output(capsys, "stderr", base, 5)
    finally:
        runner.kill()
        runner.wait()
    assert (status, out) == (0, "50% done\n")
    assert f"line 5 (task 1 of {session_dir.path}) is still running; its stderr so far" in err
    assert f"from {path}" in err

    status, out, err = output(capsys, "stderr", base, 5)  # the runner is gone
    assert (status, out) == (0, "50% done\n")
    assert "was running when the run stopped" in err


def test_a_command_that_finished_in_the_map_in_progress_shows_its_output(tasklist_map, capsys):
    base, _, session_dir = tasklist_map
    result = ShellResult("make", 2, b"built\n", b"failed\n")
    record_finished(session_dir, 0, [])
    path = os.path.join(task_records.directory(session_dir.path), "0.node7.42.ab.records")
    entry = {"itask": 2, "start": 1.0, "end": 2.0, "result": cloudpickle.dumps(result)}
    with open(path, "ab") as file:
        file.write(task_records.encode(2, pickle.dumps(entry, protocol=4)))
    status, out, err = output(capsys, "stdout", base, 9)
    assert (status, out) == (0, "built\n")
    assert "finished (exit status 2) in the map in progress" in err


def test_a_command_the_map_has_not_started_says_so(tasklist_map, capsys):
    base, _, _ = tasklist_map
    status, out, err = output(capsys, "stdout", base, 2)
    assert (status, out) == (1, "")
    assert "line 2 of the task list" in err and "waits in the map in progress" in err


# -- a Python map on a real SLURM -----------------------------------------------


def print_then_wait(release: str) -> str:
    """Prints, then waits until the test releases it."""
    print("started", flush=True)
    wait_for(lambda: os.path.exists(release), timeout=300)
    return "released"


@pytest.mark.slurm
def test_a_running_task_of_a_python_map_on_slurm_shows_its_jobs_output_so_far(tmp_path, capsys):
    require_scheduler("slurm")
    work = str(tmp_path / "work")
    release = str(tmp_path / "release")
    pool = pypoolparty.slurm.array.Pool(
        work_dir=work,
        polling_interval=0.5,
        missing_result_grace_period=5.0,
        job_name_prefix=f"ppp{uuid.uuid4().hex[:8]}",
    )
    outcome: dict = {}
    thread = threading.Thread(
        target=lambda: outcome.update(results=pool.map(print_then_wait, [release]))
    )
    thread.start()
    try:
        status, out, err = wait_for(
            lambda: (shown := output(capsys, "stdout", work, 0))[1] and shown, timeout=240
        )
    finally:
        open(release, "w").close()
        thread.join(timeout=240)
    assert (status, out) == (0, "started\n")
    assert re.search(r"task 0 is still running \(chunk 0, job \d+_0\)", err), err
    assert "The stdout of its job so far follows, from " in err
    assert outcome["results"] == ["released"]
