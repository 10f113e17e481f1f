"""The ``pypoolparty`` command line on work_dirs of real maps, run as a subprocess."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading

import pytest
from interpreters import skip_the_submitters_check
from waiting import wait_for

import pypoolparty
import pypoolparty.slurm.array
from pypoolparty import crash_points

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECRET_NAME = "CLI_TEST_SECRET"
SECRET_VALUE = "do-not-print-this-4711"
FAILING_TASKS = (4, 10)
NUM_TASKS = 12
CHUNKSIZE = 3


def chatty(x):
    """Prints to both streams, raises for FAILING_TASKS."""
    print(f"out {x}", flush=True)
    print(f"err {x}", file=sys.stderr, flush=True)
    if x in FAILING_TASKS:
        raise ValueError(f"bad task {x}")
    return x * 2


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != SECRET_NAME}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_DIR, env.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-m", "pypoolparty", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def session_dir_of(work_dir) -> str:
    (name,) = [n for n in os.listdir(work_dir) if n.startswith("map-")]
    return os.path.join(work_dir, name)


def snapshot(directory) -> dict:
    """Every file under ``directory`` with its size, mtime and content hash."""
    files = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            info = os.lstat(path)
            if os.path.islink(path):  # a claim (pypoolparty/claims.py)
                digest = os.readlink(path)
            else:
                with open(path, "rb") as file:
                    digest = hashlib.sha256(file.read()).hexdigest()
            files[os.path.relpath(path, directory)] = (info.st_size, info.st_mtime_ns, digest)
    return files


@pytest.fixture(scope="module")
def failed_map(tmp_path_factory) -> str:
    """A kept work_dir of a finished map in which two tasks raised."""
    work_dir = str(tmp_path_factory.mktemp("failed") / "work")
    os.environ[SECRET_NAME] = SECRET_VALUE  # exported into the work_dir's environment.sh
    try:
        pool = pypoolparty.local.Pool(2, work_dir=work_dir, keep_work_dir=True)
        with pytest.raises(ValueError, match="bad task 4"):
            pool.map(chatty, range(NUM_TASKS), chunksize=CHUNKSIZE)
    finally:
        del os.environ[SECRET_NAME]
    return work_dir


# -- status -------------------------------------------------------------------


@pytest.mark.parametrize("which", ["work_dir", "session_dir"])
def test_status_counts_chunks_tasks_and_jobs(failed_map, which):
    path = failed_map if which == "work_dir" else session_dir_of(failed_map)
    completed = run_cli("status", path)
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    assert out.startswith(os.path.basename(session_dir_of(failed_map)) + ": chatty, map of 12")
    assert "map:      finished, a task failed (task 4 raised)" in out
    assert "chunks:   4 done, 0 running, 0 pending, 0 held, 0 in error, 0 not yet submitted" in out
    assert "tasks:    12 done, 0 running, 0 pending, 0 held, 0 in error, 0 not yet submitted" in out
    assert "; 2 failed" in out
    assert "left:     0 chunks, 0 tasks" in out
    # One job per slot; the jobs claimed the other chunks.
    assert "jobs:     2 submitted, 0 failed at the scheduler, 0 resubmissions" in out
    assert "elapsed " in out and "1 call" in out


def test_status_reports_every_map_of_a_work_dir(tmp_path):
    work_dir = str(tmp_path / "work")
    pool = pypoolparty.local.Pool(2, work_dir=work_dir, keep_work_dir=True)
    assert pool.map(abs, [-1, -2, -3]) == [1, 2, 3]
    assert pool.map(str, range(5), chunksize=5) == [str(x) for x in range(5)]
    completed = run_cli("status", work_dir)
    assert completed.returncode == 0, completed.stderr
    headers = [line for line in completed.stdout.splitlines() if line.startswith("map-")]
    assert len(headers) == 2
    assert "abs, map of 3 tasks" in completed.stdout
    assert "str, map of 5 tasks in 1 chunks of 5" in completed.stdout
    assert completed.stdout.count("map:      finished\n") == 2


# -- errors -------------------------------------------------------------------


def test_errors_lists_failed_tasks_with_their_remote_tracebacks(failed_map):
    completed = run_cli("errors", failed_map)
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    host = socket.gethostname()
    assert f"task 4 (chunk 1) on host {host}: builtins.ValueError: bad task 4" in out
    assert f"task 10 (chunk 3) on host {host}: builtins.ValueError: bad task 10" in out
    assert out.index("task 4 (chunk 1)") < out.index("task 10 (chunk 3)")
    assert "Traceback (most recent call last):" in out
    assert "in chatty" in out and 'raise ValueError(f"bad task {x}")' in out
    assert "2 failed task(s)" in out
    assert "0 job(s) failed at the scheduler, 0 resubmitted" in out


def test_errors_shows_jobs_that_failed_at_the_scheduler_with_their_stderr(tmp_path, monkeypatch):
    skip_the_submitters_check(monkeypatch)  # the submit host's python_path is fine
    refusing_python = tmp_path / "python"
    refusing_python.write_text('#!/bin/sh\necho "node says no to chunk $4" >&2\nexit 3\n')
    refusing_python.chmod(0o755)
    pool = pypoolparty.local.Pool(
        1,
        python_path=str(refusing_python),
        work_dir=str(tmp_path / "work"),
        max_num_resubmissions=1,
    )
    with pytest.raises(pypoolparty.ResubmissionsExhausted):
        pool.map(abs, [-1])
    completed = run_cli("errors", tmp_path / "work")
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    assert "(chunk 0, attempt 1) failed at" in out and "(chunk 0, attempt 2) failed at" in out
    assert "exit code 3" in out
    job_lines = out.split("the map stopped")[0]
    assert job_lines.count("node says no to chunk 0") == 2  # the stderr tail of each attempt
    assert "; resubmitted as job" in out
    assert "2 job(s) failed at the scheduler, 1 resubmitted" in out
    assert "the map stopped at" in out and "ResubmissionsExhausted" in out

    status = run_cli("status", tmp_path / "work").stdout
    assert "map:      stopped by an error (ResubmissionsExhausted: 1 chunk(s) failed" in status
    assert "jobs:     2 submitted, 2 failed at the scheduler, 1 resubmissions" in status
    assert "1 failed at the scheduler" in status  # the chunk's state as last logged
    assert "left:     1 chunks, 1 tasks" in status

    attempt = run_cli("stderr", tmp_path / "work", 0, "--attempt", "2")
    assert attempt.returncode == 0, attempt.stderr
    assert attempt.stdout == "node says no to chunk 0\n"
    final = run_cli("stderr", tmp_path / "work", 0)
    assert final.returncode == 1
    assert "failed attempts archived: 1, 2 (pass --attempt N)" in final.stderr


def test_errors_shows_the_scheduler_states_of_failed_slurm_jobs(dummy_slurm, tmp_path):
    dummy_slurm.set_faults(seed=5, error_probability=1.0, error_states=["OUT_OF_MEMORY"])
    pool = pypoolparty.slurm.array.Pool(
        work_dir=str(tmp_path / "work"),
        polling_interval=0.05,
        missing_result_grace_period=0.5,
        max_num_resubmissions=2,
        **dummy_slurm.paths,
    )
    with pytest.raises(pypoolparty.ResubmissionsExhausted):
        pool.map(abs, range(4), chunksize=2)
    completed = run_cli("errors", tmp_path / "work")
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    failures = [line for line in out.splitlines() if ", attempt " in line]
    assert len(failures) >= 3 and all("OUT_OF_MEMORY; OutOfMemory" in line for line in failures)
    assert "(chunk 0, attempt 1)" in out and "(chunk 1, attempt 1)" in out
    assert "attempt 3)" in out  # one chunk failed 1 + 2 times
    assert "resubmitted as job" in out
    assert "the map stopped at" in out and "OUT_OF_MEMORY" in out

    status = run_cli("status", tmp_path / "work").stdout
    assert "map:      stopped by an error" in status
    assert "scheduler slurm" in status
    jobs = re.search(r"jobs: +(\d+) submitted, (\d+) failed at the scheduler, (\d+) resub", status)
    submitted, failed, resubmitted = map(int, jobs.groups())
    assert failed == len(failures) and resubmitted < failed and submitted == 2 + resubmitted
    assert " 0 running, 0 pending" in status  # stopping cancelled the jobs


# -- stdout and stderr --------------------------------------------------------


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_the_output_of_the_job_that_ran_a_task(failed_map, stream):
    completed = run_cli(stream, failed_map, 4)
    assert completed.returncode == 0, completed.stderr
    word = "out" if stream == "stdout" else "err"
    assert completed.stdout == f"{word} 3\n{word} 4\n{word} 5\n"  # chunk 1: tasks 3..5
    assert f"{stream} of task 4 (chunk 1, archive)" in completed.stderr


@pytest.mark.parametrize("task", ["12", "-1"])
def test_a_task_out_of_range_is_a_usage_error(failed_map, task):
    completed = run_cli("stdout", failed_map, task)
    assert completed.returncode == 2
    assert f"task {task} is out of range" in completed.stderr
    assert "has tasks 0..11" in completed.stderr
    assert completed.stdout == ""


def test_a_work_dir_of_several_maps_asks_which_one(tmp_path):
    work_dir = str(tmp_path / "work")
    pool = pypoolparty.local.Pool(2, work_dir=work_dir, keep_work_dir=True)
    pool.map(abs, [1])
    pool.map(abs, [2])
    completed = run_cli("stdout", work_dir, 0)
    assert completed.returncode == 2
    assert "holds 2 maps; pass one of their directories" in completed.stderr
    assert completed.stderr.count(os.path.join(work_dir, "map-")) == 2


# -- timeline -----------------------------------------------------------------


def test_timeline_shows_every_task_nested_in_its_chunk_on_a_slot(failed_map, tmp_path):
    trace_path = tmp_path / "trace.json"
    completed = run_cli("timeline", failed_map, "-o", trace_path)
    assert completed.returncode == 0, completed.stderr
    assert "12 task(s) in 4 chunk run(s) on 1 host(s)" in completed.stderr
    trace = json.loads(trace_path.read_text())
    events = trace["traceEvents"]
    chunks = [e for e in events if e["ph"] == "X" and e["cat"].startswith("chunk")]
    tasks = [e for e in events if e["ph"] == "X" and e["cat"].startswith("task")]
    assert sorted(e["name"] for e in chunks) == [f"chunk {i}" for i in range(4)]
    assert sorted(e["args"]["itask"] for e in tasks) == list(range(NUM_TASKS))
    failed = sorted(e["name"] for e in tasks if e["cat"] == "task,failed")
    assert failed == ["task 10 FAILED", "task 4 FAILED"]
    (process,) = [e for e in events if e["ph"] == "M" and e["name"] == "process_name"]
    assert process["args"]["name"] == socket.gethostname()
    assert {e["pid"] for e in chunks + tasks} == {process["pid"]}
    assert all(e["ts"] >= 0 and e["dur"] > 0 for e in chunks)
    assert [e["args"]["failed_tasks"] for e in sorted(chunks, key=lambda e: e["name"])] == [
        0,
        1,
        0,
        1,
    ]
    assert_lanes_do_not_overlap(chunks)
    by_chunk = {e["args"]["ichunk"]: e for e in chunks}
    for task in tasks:
        chunk = by_chunk[task["args"]["ichunk"]]
        assert task["args"]["itask"] // CHUNKSIZE == task["args"]["ichunk"]
        assert task["tid"] == chunk["tid"]  # the task's slice nests in its chunk's
        assert chunk["ts"] <= task["ts"] + 0.01
        assert task["ts"] + task["dur"] <= chunk["ts"] + chunk["dur"] + 0.01
    lanes = {e["tid"] for e in chunks}
    names = {e["tid"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert lanes == names


def assert_lanes_do_not_overlap(chunks: list[dict]) -> None:
    by_lane: dict[tuple, list[dict]] = {}
    for event in chunks:
        by_lane.setdefault((event["pid"], event["tid"]), []).append(event)
    for events in by_lane.values():
        events.sort(key=lambda e: e["ts"])
        for before, after in zip(events, events[1:]):
            assert after["ts"] >= before["ts"] + before["dur"] - 0.01


def test_overlapping_chunks_get_lanes_of_their_own(tmp_path):
    work_dir = str(tmp_path / "work")
    pool = pypoolparty.local.Pool(4, work_dir=work_dir, keep_work_dir=True)
    barrier_dir = tmp_path / "barrier"
    barrier_dir.mkdir()
    # Every task waits until all four have started: the chunks overlap for sure.
    pool.map(wait_for_all_four, [str(barrier_dir / str(i)) for i in range(4)], chunksize=1)
    trace_path = tmp_path / "trace.json"
    assert run_cli("timeline", work_dir, "-o", trace_path).returncode == 0
    events = json.loads(trace_path.read_text())["traceEvents"]
    chunks = [e for e in events if e["ph"] == "X" and e["cat"] == "chunk"]
    assert len(chunks) == 4
    assert sorted(e["tid"] for e in chunks) == [0, 1, 2, 3]
    assert_lanes_do_not_overlap(chunks)


def wait_for_all_four(marker: str) -> None:
    open(marker, "w").close()
    wait_for(lambda: len(os.listdir(os.path.dirname(marker))) == 4)


# -- a running map ------------------------------------------------------------


def wait_for_release(x: int) -> int:
    print(f"waiting {x}", flush=True)
    wait_for(lambda: os.path.exists(os.environ["CLI_TEST_RELEASE"]), timeout=300)
    return x


def test_status_and_output_of_a_map_while_it_runs(tmp_path, monkeypatch):
    release = tmp_path / "release"
    monkeypatch.setenv("CLI_TEST_RELEASE", str(release))
    work_dir = str(tmp_path / "work")
    pool = pypoolparty.local.Pool(2, work_dir=work_dir, polling_interval=0.02)
    outcome = {}
    thread = threading.Thread(
        target=lambda: outcome.update(results=pool.map(wait_for_release, range(4), chunksize=1))
    )
    thread.start()
    try:
        # A job per slot for chunks 0 and 1; 2 and 3 wait to be claimed.
        two_running = {0: "running", 1: "running"}
        wait_for(lambda: logged_states(work_dir) == two_running)
        wait_for(lambda: "waiting 1" in live_stdout(work_dir, 1))
        status = run_cli("status", work_dir)
        assert status.returncode == 0, status.stderr
        this_process = f"pid {os.getpid()} on host {socket.gethostname()}"
        assert f"map:      running ({this_process})" in status.stdout
        assert (
            "chunks:   0 done, 2 running, 0 pending, 0 held, 0 in error, 2 not yet" in status.stdout
        )
        assert "left:     4 chunks, 4 tasks" in status.stdout
        assert "  running:  job " in status.stdout and ": chunk 1 (tasks 1..1)" in status.stdout
        output = run_cli("stdout", work_dir, 1)
        assert output.returncode == 0, output.stderr
        assert output.stdout == "waiting 1\n"
        assert "task 1 is still running (chunk 1, job " in output.stderr
        assert "The stdout of its job so far follows, from " in output.stderr
        assert "1.stdout: " in output.stderr  # the chunk's own file, named
        not_started = run_cli("stdout", work_dir, 3)
        assert not_started.returncode == 1
        assert "has not started" in not_started.stderr
    finally:
        release.touch()
        thread.join(timeout=120)
    assert outcome["results"] == [0, 1, 2, 3]


def logged_states(work_dir: str) -> dict:
    states = {}
    if not os.path.isdir(work_dir):
        return states
    for path in [os.path.join(work_dir, n, "log.jsonl") for n in os.listdir(work_dir)]:
        if os.path.exists(path):
            with open(path) as file:
                for line in file:
                    event = json.loads(line) if line.endswith("\n") else {}
                    if event.get("event") == "job_state":
                        states[event["ichunk"]] = event["state"]
    return states


def live_stdout(work_dir: str, ichunk: int) -> str:
    """The chunk's output so far: a job that claims chunks writes each one's apart."""
    path = os.path.join(session_dir_of(work_dir), "outcomes", f"{ichunk}.stdout")
    if os.path.exists(path):
        with open(path) as file:
            return file.read()
    return ""


def test_status_of_jobs_held_in_the_queue(dummy_slurm, tmp_path):
    work_dir = str(tmp_path / "work")
    pool = pypoolparty.slurm.array.Pool(
        work_dir=work_dir, polling_interval=0.05, sbatch_arguments=["--hold"], **dummy_slurm.paths
    )
    outcome = {}
    thread = threading.Thread(
        target=lambda: outcome.update(results=pool.map(abs, range(-3, 3), chunksize=3))
    )
    thread.start()
    try:
        wait_for(lambda: logged_states(work_dir) == {0: "held", 1: "held"})
        status = run_cli("status", work_dir)
        assert status.returncode == 0, status.stderr
        assert "chunks:   0 done, 0 running, 0 pending, 2 held, 0 in error" in status.stdout
        assert "tasks:    0 done, 0 running, 0 pending, 6 held, 0 in error" in status.stdout
        for ichunk in (0, 1):
            assert re.search(
                rf"held: chunk {ichunk}, job \d+_{ichunk} \(.*JobHeldUser\)", status.stdout
            )
    finally:
        dummy_slurm.release_everything()
        thread.join(timeout=120)
    assert outcome["results"] == [3, 2, 1, 0, 1, 2]


CRASHING_MAP = """
import sys
import pypoolparty

def third_fails(x):
    if x == 1:
        raise KeyError(f"no key {x}")
    return x

if __name__ == "__main__":
    pool = pypoolparty.local.Pool(1, work_dir=sys.argv[1])
    pool.map(third_fails, range(3), chunksize=int(sys.argv[2]))
"""


def run_crashing_map(tmp_path, chunksize: int, crash_at: str | None):
    script = tmp_path / "crashing_map.py"
    script.write_text(CRASHING_MAP)
    env = {k: v for k, v in os.environ.items() if k != crash_points.VARIABLE}
    if crash_at is not None:
        env[crash_points.VARIABLE] = crash_at
    return subprocess.run(
        [sys.executable, str(script), str(tmp_path / "work"), str(chunksize)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_status_of_a_map_killed_before_it_submitted(tmp_path):
    killed = run_crashing_map(tmp_path, chunksize=1, crash_at="before_submit")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    status = run_cli("status", tmp_path / "work")
    assert status.returncode == 0, status.stderr
    assert "map:      interrupted (pid " in status.stdout and "is gone" in status.stdout
    assert "chunks:   0 done, 0 running, 0 pending, 0 held, 0 in error, 3 not yet" in status.stdout
    assert "left:     3 chunks, 3 tasks" in status.stdout
    assert "jobs:     0 submitted" in status.stdout


def test_a_map_killed_between_archiving_and_logging_a_chunk_counts_it_done(tmp_path):
    killed = run_crashing_map(tmp_path, chunksize=3, crash_at="during_fold")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    session_dir = session_dir_of(tmp_path / "work")
    outcomes = os.listdir(os.path.join(session_dir, "outcomes"))
    assert [n for n in outcomes if n.endswith(".pickle")] == ["0.pickle"]  # not deleted yet

    status = run_cli("status", tmp_path / "work")
    assert status.returncode == 0, status.stderr
    assert "map:      interrupted" in status.stdout
    assert "chunks:   1 done" in status.stdout and "; 1 failed" in status.stdout
    errors = run_cli("errors", tmp_path / "work")
    assert errors.stdout.count("task 1 (chunk 0)") == 1  # from the outcome, not twice
    assert "builtins.KeyError: 'no key 1'" in errors.stdout

    continued = run_crashing_map(tmp_path, chunksize=3, crash_at=None)
    assert "KeyError" in continued.stderr
    status = run_cli("status", tmp_path / "work").stdout
    assert "map:      finished, a task failed (task 1 raised)" in status
    assert ", 2 calls" in status and "chunks:   1 done" in status and "; 1 failed" in status


# -- a stopped map ------------------------------------------------------------


def write_stopped_map(session_dir, cancelled_jobs: int) -> None:
    """The files of a map of two chunks stopped with one job running and one pending.

    The events are those the session logs; ``cancelled_jobs`` is how many jobs
    it cancelled as it stopped.
    """
    os.makedirs(session_dir)
    metadata = {"function": "f", "num_tasks": 2, "chunksize": 1, "num_chunks": 2}
    with open(os.path.join(session_dir, "session.json"), "w") as file:
        json.dump(metadata, file)
    events = [
        {"event": "session_started", "resuming": False, "pid": 1},
        {"event": "submitting", "submission": "f-1", "chunks": [[0, 1]]},
        {
            "event": "submitted",
            "submission": "f-1",
            "jobs": [["7", 0, "o0", "e0"], ["8", 1, "o1", "e1"]],
        },
        {"event": "job_state", "jobid": "7", "ichunk": 0, "state": "running"},
        {"event": "job_state", "jobid": "8", "ichunk": 1, "state": "pending"},
        {
            "event": "session_aborted",
            "error": "KeyboardInterrupt: ",
            "cancelled_jobs": cancelled_jobs,
        },
    ]
    with open(os.path.join(session_dir, "log.jsonl"), "w") as file:
        file.writelines(json.dumps({"time": 1000.0 + n, **e}) + "\n" for n, e in enumerate(events))


@pytest.mark.parametrize(
    "cancelled_jobs, chunks",
    [
        (2, "0 running, 0 pending, 0 held, 0 in error, 2 cancelled when the map stopped, 0 not"),
        # Cancelling failed: the jobs may still be in the queue, as last logged.
        (0, "1 running, 1 pending, 0 held, 0 in error, 0 not yet submitted"),
    ],
)
def test_a_stopped_map_counts_its_chunks_cancelled_if_it_cancelled_their_jobs(
    tmp_path, cancelled_jobs, chunks
):
    write_stopped_map(tmp_path / "map-0", cancelled_jobs)
    status = run_cli("status", tmp_path / "map-0")
    assert status.returncode == 0, status.stderr
    # Ctrl-C is no error
    assert "map:      interrupted (KeyboardInterrupt)\n" in status.stdout
    assert f"chunks:   0 done, {chunks}" in status.stdout


def test_status_without_a_work_dir_reads_the_pools_default_one(tmp_path):
    write_stopped_map(tmp_path / ".pypoolparty" / "map-0", 2)
    status = run_cli("status", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "map:      interrupted (KeyboardInterrupt)\n" in status.stdout


# -- files in the middle of being written -------------------------------------


def test_a_torn_log_line_and_an_archive_cut_mid_append_are_read(failed_map, tmp_path):
    copy = str(tmp_path / "copy")
    shutil.copytree(session_dir_of(failed_map), copy, symlinks=True)
    log_path = os.path.join(copy, "log.jsonl")
    with open(log_path) as file:
        lines = file.readlines()
    # Killed after folding chunk 0 but before logging it, and mid-line later.
    kept = [line for line in lines if '"chunk_done","ichunk":0,' not in line]
    assert len(kept) == len(lines) - 1
    with open(log_path, "w") as file:
        file.writelines(kept)
        file.write('{"time":1,"event":"job_st')
    for kind in ("results", "exceptions", "stdout"):
        cut_central_directory(os.path.join(copy, f"{kind}.zip"))
    before = snapshot(copy)

    status = run_cli("status", copy)
    assert status.returncode == 0, status.stderr
    assert "chunks:   4 done" in status.stdout and "; 2 failed" in status.stdout
    errors = run_cli("errors", copy)
    assert errors.returncode == 0, errors.stderr
    assert "bad task 4" in errors.stdout and "2 failed task(s)" in errors.stdout
    output = run_cli("stdout", copy, 0)
    assert output.returncode == 0 and output.stdout == "out 0\nout 1\nout 2\n"
    trace_path = tmp_path / "trace.json"
    assert run_cli("timeline", copy, "-o", trace_path).returncode == 0
    events = json.loads(trace_path.read_text())["traceEvents"]
    assert len([e for e in events if e["ph"] == "X" and e["cat"].startswith("chunk")]) == 4
    assert len([e for e in events if e["ph"] == "X" and e["cat"].startswith("task")]) == 12
    assert snapshot(copy) == before  # nothing repaired, nothing written


def cut_central_directory(path: str) -> None:
    """Leave only the local entries, as an append killed while rewriting the directory."""
    with open(path, "rb") as file:
        content = file.read()
    directory_offset = struct.unpack("<4s4H2LH", content[-22:])[6]
    with open(path, "wb") as file:
        file.write(content[:directory_offset])


# -- what the command line never does -----------------------------------------


def test_commands_write_nothing_and_never_print_the_environment(failed_map, tmp_path):
    session_dir = session_dir_of(failed_map)
    with open(os.path.join(session_dir, "environment.sh")) as file:
        exported = SECRET_VALUE in file.read()
    assert exported, "the secret was not exported, so this test would prove nothing"
    before = snapshot(failed_map)
    outputs = [
        run_cli("status", failed_map),
        run_cli("errors", failed_map),
        run_cli("stdout", failed_map, 0),
        run_cli("stderr", failed_map, 11),
        run_cli("timeline", failed_map, "-o", "-"),
    ]
    assert all(c.returncode == 0 for c in outputs), [c.stderr for c in outputs]
    for completed in outputs:
        assert SECRET_VALUE not in completed.stdout + completed.stderr
    assert snapshot(failed_map) == before


@pytest.mark.parametrize("kind", ["empty", "missing", "file"])
def test_a_path_that_is_not_a_work_dir_is_a_usage_error(tmp_path, kind):
    path = tmp_path / "elsewhere"
    if kind == "empty":
        path.mkdir()
    elif kind == "file":
        path.write_text("not a directory")
    for command in (["status"], ["errors"], ["stdout", "0"], ["timeline", "-o", "-"]):
        args = [command[0], path, *command[1:]]
        completed = run_cli(*args)
        assert completed.returncode == 2, (command, completed.stderr)
        assert "Pass the work_dir given to the Pool" in completed.stderr
        assert completed.stdout == ""


def test_usage_errors_exit_with_2():
    assert run_cli().returncode == 2
    assert run_cli("status").returncode == 2
    assert run_cli("stdout", ".", "three").returncode == 2
    assert "pypoolparty" in run_cli("--version").stdout


def say_and_square(x: int) -> int:
    print(f"task {x} says hello", flush=True)
    return x * x


def test_the_commands_find_each_task_in_chunks_that_shrink(tmp_path):
    work_dir = str(tmp_path / "work")
    pool = pypoolparty.local.Pool(2, work_dir=work_dir, keep_work_dir=True)
    assert pool.map(say_and_square, range(100)) == [x * x for x in range(100)]
    status = run_cli("status", work_dir)
    assert status.returncode == 0, status.stderr
    # pypoolparty.chunking.guided_bounds(100, 2): 7 tasks first, 1 at the end.
    assert "map of 100 tasks in 39 chunks of 7 down to 1 " in status.stdout
    assert "tasks:    100 done" in status.stdout
    for itask in (0, 6, 7, 50, 99):
        output = run_cli("stdout", work_dir, itask)
        assert output.returncode == 0, output.stderr
        assert f"task {itask} says hello\n" in output.stdout
