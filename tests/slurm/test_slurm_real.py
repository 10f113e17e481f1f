"""Both SLURM pools against a real SLURM (CI: ``sudo bash local_clusters/slurm/start.sh``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import pytest
from failing_maps import (
    HOUR_OF_GRACE_WOULD_HANG,
    events_after_resume,
    map_arguments,
    running_jobs_logged,
)
from interpreters import OTHER_VERSION, other_version_python, skip_the_submitters_check
from real_schedulers import REPO_DIR, require_scheduler
from waiting import wait_for

import pypoolparty
import pypoolparty.slurm
import pypoolparty.slurm.array
from pypoolparty.errors import ResubmissionsExhausted
from pypoolparty.scheduler import JobState, Submission, SubmissionRejected

pytestmark = pytest.mark.slurm
POOLS = [pypoolparty.slurm.array.Pool, pypoolparty.slurm.Pool]


@pytest.fixture(autouse=True)
def real_slurm():
    require_scheduler("slurm")


@pytest.fixture
def prefix() -> str:
    """A job name prefix of this test alone, to find its jobs in the queue."""
    return f"ppp{uuid.uuid4().hex[:8]}"


def make_pool(pool_class, tmp_path, prefix, **options):
    defaults = dict(
        work_dir=str(tmp_path / "work"),
        polling_interval=0.2,
        missing_result_grace_period=1.0,
        job_name_prefix=prefix,
    )
    return pool_class(**{**defaults, **options})


def queue_of(prefix: str, states: str = "all") -> list[tuple[str, str, str]]:
    """(job id, state, reason) of every job whose name starts with ``prefix``."""
    out = subprocess.run(
        ["squeue", "-h", "--array", "-t", states, "-o", "%i|%j|%T|%r"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    fields = [line.split("|") for line in out.splitlines()]
    return [
        (jobid, state, reason) for jobid, name, state, reason in fields if name.startswith(prefix)
    ]


def events(tmp_path, kind: str) -> list[dict]:
    found = []
    for path in (tmp_path / "work").glob("map-*/log.jsonl"):
        found += [json.loads(line) for line in path.read_text().splitlines()]
    return [event for event in found if event.get("event") == kind]


@pytest.mark.parametrize("pool_class", POOLS)
def test_map_and_starmap_of_a_thousand_tasks(pool_class, tmp_path, prefix):
    pool = make_pool(pool_class, tmp_path, prefix)
    assert pool.map(lambda x: x * x, range(1000)) == [x * x for x in range(1000)]
    assert pool.starmap(divmod, [(x, 7) for x in range(1000)]) == [
        divmod(x, 7) for x in range(1000)
    ]
    # The session cancels jobs still waiting once their work is done; a job
    # that wrote the last result ends by itself.
    wait_for(lambda: not queue_of(prefix, "PD,R,CG"), timeout=30)
    jobs = queue_of(prefix)
    assert {state for _, state, _ in jobs} <= {"COMPLETED", "CANCELLED"}
    if pool_class is pypoolparty.slurm.array.Pool:
        assert len({jobid.split("_")[0] for jobid, _, _ in jobs}) == 2  # one array per map


@pytest.mark.parametrize("pool_class", POOLS)
def test_a_job_killed_from_outside_is_resubmitted(pool_class, tmp_path, prefix):
    pool = make_pool(pool_class, tmp_path, prefix, keep_work_dir=True)
    process_pool_done = {}

    def slow_square(x):
        time.sleep(3)
        return x * x

    thread = threading.Thread(
        target=lambda: process_pool_done.update(
            results=pool.map(slow_square, range(3), chunksize=1)
        )
    )
    thread.start()
    try:
        running = wait_for(lambda: [j for j, s, _ in queue_of(prefix, "R")], timeout=60)
        subprocess.run(["scancel", running[0]], check=True)
    finally:
        thread.join(timeout=120)
    assert process_pool_done["results"] == [0, 1, 4]
    failed = [event["jobid"] for event in events(tmp_path, "job_failed")]
    assert failed == [running[0]]
    assert (running[0], "CANCELLED", "None") in queue_of(prefix)


def test_exhausted_resubmissions_raise_with_slurms_reason(tmp_path, prefix):
    # A one-minute job that must end within 30 s: SLURM fails it at once (DEADLINE).
    hopeless = ["--time=0:01", "--deadline=now+30"]
    pool = make_pool(
        pypoolparty.slurm.array.Pool,
        tmp_path,
        prefix,
        sbatch_arguments=hopeless,
        max_num_resubmissions=1,
    )
    with pytest.raises(ResubmissionsExhausted, match="DEADLINE"):
        pool.map(abs, range(4), chunksize=2)
    assert {state for _, state, _ in queue_of(prefix)} == {"DEADLINE"}


@pytest.mark.parametrize("pool_class", POOLS)
def test_a_value_sbatch_rejects_raises_with_its_message(pool_class, tmp_path, prefix):
    pool = make_pool(pool_class, tmp_path, prefix, gpus=1)  # this cluster has no GPUs
    with pytest.raises(SubmissionRejected, match="Invalid generic resource"):
        pool.map(abs, range(3))
    assert queue_of(prefix) == []


CTRL_C_SCRIPT = """
import sys, time
import pypoolparty.slurm.array
pool = pypoolparty.slurm.array.Pool(work_dir=sys.argv[1], job_name_prefix=sys.argv[2],
                                    polling_interval=0.2)
print("mapping", flush=True)
pool.map(time.sleep, [60] * 6, chunksize=1)
"""


def test_ctrl_c_leaves_no_job_in_the_queue(tmp_path, prefix):
    env = dict(os.environ, PYTHONPATH=REPO_DIR)
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CTRL_C_SCRIPT), str(tmp_path / "work"), prefix],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: queue_of(prefix, "R"), timeout=60)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert "KeyboardInterrupt" in stderr
    wait_for(lambda: not queue_of(prefix, "PD,R,CG,S"), timeout=30)
    # Running tasks show CANCELLED; pending ones cancelled alone vanish.
    assert {state for _, state, _ in queue_of(prefix)} == {"CANCELLED"}


def test_resource_options_reach_the_job(tmp_path, prefix, stand_in_worker):
    pool = make_pool(
        pypoolparty.slurm.array.Pool,
        tmp_path,
        prefix,
        partition="debug",
        time="1:30:00",
        mem="200M",
        cpus_per_task=1,
        account="physics",
        qos="normal",  # accepted; without slurmdbd scontrol shows QOS=(null)
        sbatch_arguments=["--hold", "--nice=7"],
    )
    scheduler = pool._make_scheduler()
    directory = tmp_path / "submission"
    directory.mkdir()
    jobs = scheduler.submit(Submission([0, 1], f"{prefix}-1", stand_in_worker, str(directory)))
    try:
        shown = subprocess.run(
            ["scontrol", "show", "job", jobs[0].jobid], capture_output=True, text=True, check=True
        ).stdout
        for expected in [
            "Partition=debug",
            "TimeLimit=01:30:00",
            "mem=200M",
            "Account=physics",
            "Nice=7",
            "Reason=JobHeldUser",
            "ArrayTaskId=0",
        ]:
            assert expected in shown, f"{expected} not in {shown}"
        assert {s.state for s in scheduler.query(jobs).values()} == {JobState.HELD}
    finally:
        scheduler.cancel(jobs)
        scheduler.cancel(jobs)  # idempotent
    wait_for(lambda: not queue_of(prefix, "PD,R,CG"))


def test_the_job_sees_its_task_id_but_not_the_submitters_environment(
    tmp_path, prefix, stand_in_worker, monkeypatch
):
    monkeypatch.setenv("PPP_TEST_SECRET", "do-not-leak")
    scheduler = make_pool(pypoolparty.slurm.array.Pool, tmp_path, prefix)._make_scheduler()
    directory = tmp_path / "submission"
    directory.mkdir()
    scheduler.submit(Submission([5], f"{prefix}-1", stand_in_worker, str(directory)))
    path = os.path.join(stand_in_worker.session_dir, "chunk_5")
    wait_for(lambda: os.path.exists(path), timeout=60)
    with open(path) as file:
        environment = json.load(file)
    assert environment["SLURM_ARRAY_TASK_ID"] == "5"
    assert "PPP_TEST_SECRET" not in environment


def test_joblib_grid_search_matches_loky(tmp_path, prefix):
    """A small GridSearchCV and cross_val_score under the joblib backend on real SLURM."""
    joblib = pytest.importorskip("joblib")
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_iris
    from sklearn.model_selection import GridSearchCV, cross_val_score
    from sklearn.svm import SVC

    import pypoolparty.joblib

    pypoolparty.joblib.register()
    X, y = load_iris(return_X_y=True)
    grid = {"C": [0.1, 10]}

    def search():
        found = GridSearchCV(SVC(), grid, cv=2, n_jobs=-1).fit(X, y)
        scores = list(cross_val_score(SVC(), X, y, cv=2, n_jobs=-1))
        return found.best_params_, list(found.cv_results_["mean_test_score"]), scores

    with joblib.parallel_config(backend="loky", n_jobs=2):
        expected = search()
    pool = make_pool(pypoolparty.slurm.array.Pool, tmp_path, prefix)
    with joblib.parallel_config(backend="pypoolparty", pool=pool):
        assert search() == expected
    wait_for(lambda: not queue_of(prefix, "PD,R,CG"), timeout=30)


def test_executor_batches_submits_into_one_array(tmp_path, prefix):
    pool = make_pool(pypoolparty.slurm.array.Pool, tmp_path, prefix, keep_work_dir=True)
    with pool.executor(batch_window=5.0) as executor:
        futures = [executor.submit(divmod, x, 7) for x in range(40)]
        assert [f.result() for f in futures] == [divmod(x, 7) for x in range(40)]
    assert len(events(tmp_path, "submitting")) == 1
    wait_for(lambda: not queue_of(prefix, "PD,R,CG"), timeout=30)


def test_a_refused_array_leaves_a_record_that_the_corrected_call_never_adopts(tmp_path, prefix):
    """Real SLURM keeps a FAILED/BadConstraints record of a refused array under its name."""
    refused = make_pool(pypoolparty.slurm.array.Pool, tmp_path, prefix, mem="100G")
    with pytest.raises(SubmissionRejected) as raised:
        refused.map(abs, range(-3, 0), chunksize=1)
    assert "cancelled" not in str(raised.value).lower()
    assert {state for _, state, _ in queue_of(prefix)} == {"FAILED"}  # a record per task

    corrected = make_pool(pypoolparty.slurm.array.Pool, tmp_path, prefix, keep_work_dir=True)
    assert corrected.map(abs, range(-3, 0), chunksize=1) == [3, 2, 1]
    (log,) = (tmp_path / "work").glob("map-*/log.jsonl")
    events = [json.loads(line) for line in log.read_text().splitlines()]
    (resumed,) = [e for e in events if e["event"] == "session_resumed"]
    assert resumed["adopted_jobs"] == 0
    assert not [e for e in events if e["event"] == "job_failed"]  # BadConstraints is not ours


# Issue 17, items 2 and 22 (see tests/test_failure_handling.py for every pool).


@pytest.mark.parametrize("pool_class", POOLS)
def test_a_job_slurm_reports_failed_is_resubmitted_at_once(pool_class, tmp_path, prefix):
    options = {"job_name_prefix": prefix, "polling_interval": 0.2}
    args = map_arguments(tmp_path, pool_class.__module__, options, "dies")
    done = subprocess.run(args, capture_output=True, text=True, timeout=HOUR_OF_GRACE_WOULD_HANG)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str([x + 100 for x in range(6)])
    (failure,) = events(tmp_path, "job_failed")
    assert failure["ichunk"] == 1 and failure["reason"].startswith("FAILED")


def test_continuing_after_ctrl_c_submits_the_cancelled_chunks_at_once(tmp_path, prefix):
    (tmp_path / "gate").touch()
    options = {"job_name_prefix": prefix, "polling_interval": 0.2}
    args = map_arguments(tmp_path, "pypoolparty.slurm.array", options, "gate")
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


def test_a_job_held_by_an_admin_is_cancelled_and_resubmitted(tmp_path, prefix):
    # Issue 17, item 23: releasing a hold of SLURM or an admin is not ours to
    # do, and the job would wait for ever; a new job may run.
    # One job at a time, which waits a few seconds before it may start: the
    # test holds it while it waits.
    pool = make_pool(
        pypoolparty.slurm.array.Pool,
        tmp_path,
        prefix,
        keep_work_dir=True,
        num_simultaneously_running_tasks=1,
        sbatch_arguments=["--begin=now+4"],
    )
    outcome = {}
    thread = threading.Thread(
        target=lambda: outcome.update(results=pool.map(abs, range(-3, 1), chunksize=1))
    )
    thread.start()
    try:
        first = wait_for(lambda: [j for j, s, r in queue_of(prefix, "PD")], timeout=60)
        subprocess.run(["scontrol", "hold", first[0]], check=True)  # root: JobHeldAdmin
    finally:
        thread.join(timeout=120)
    assert outcome["results"] == [3, 2, 1, 0]
    (failure,) = events(tmp_path, "job_failed")
    assert failure["jobid"] == first[0] and "JobHeldAdmin" in failure["reason"]


@pytest.mark.parametrize("pool_class", POOLS)
def test_a_missing_interpreter_ends_the_map_at_once(pool_class, tmp_path, prefix, monkeypatch):
    # Issue 17, item 4: the interpreter exists where the pool is made, not
    # where the jobs run; a resubmission would fail the same way.
    skip_the_submitters_check(monkeypatch)
    interpreter = tmp_path / "python3"
    interpreter.symlink_to(sys.executable)
    pool = make_pool(
        pool_class,
        tmp_path,
        prefix,
        python_path=str(interpreter),
        max_num_resubmissions=5,
        missing_result_grace_period=3600,
    )
    interpreter.unlink()
    with pytest.raises(pypoolparty.JobCannotRun) as raised:
        pool.map(abs, range(2))
    message = str(raised.value)
    assert "ExitCode=127:0" in message and "python_path" in message
    assert str(interpreter) in message  # the job's stderr names it
    assert "call the same map" not in message
    assert len(events(tmp_path, "submitting")) == 1
    wait_for(lambda: not queue_of(prefix, "PD,R,CG"), timeout=30)


@pytest.mark.parametrize("pool_class", POOLS)
def test_a_node_with_another_python_ends_the_map_at_once(pool_class, tmp_path, prefix, monkeypatch):
    # Issue 16, item 4: the python_path passes the check on the submit host
    # (skipped in this process), but the nodes' interpreter at that path is
    # another Python: the worker's own check stops it before it unpickles.
    skip_the_submitters_check(monkeypatch)
    python = other_version_python(tmp_path)
    pool = make_pool(
        pool_class,
        tmp_path,
        prefix,
        python_path=python,
        max_num_resubmissions=5,
        missing_result_grace_period=3600,
    )
    with pytest.raises(pypoolparty.InterpreterMismatch) as raised:
        pool.map(abs, range(4), chunksize=1)
    message = str(raised.value)
    assert f"{python!r} is Python {OTHER_VERSION} in job" in message
    assert f"this process is Python {sys.version_info[0]}.{sys.version_info[1]}" in message
    assert "No task ran" in message and "call the same map" not in message
    assert len(events(tmp_path, "submitting")) == 1  # never resubmitted
    (failed,) = events(tmp_path, "job_failed")
    assert "interpreter mismatch" in failed["reason"]
    wait_for(lambda: not queue_of(prefix, "PD,R,CG"), timeout=30)
