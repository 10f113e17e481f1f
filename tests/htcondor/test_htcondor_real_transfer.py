"""pypoolparty.htcondor.Pool(shared_file_system=False) against a real HTCondor pool.

The submitting script runs as root, with its work_dir in a directory only
root may enter (0700), while HTCondor runs every job as the ordinary job user
(``job_user.py``): so a job, or a shadow on its behalf, that opened any file
of the work_dir would fail, as on a pool whose nodes do not mount it. The
first test shows that a task that tries is refused.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import uuid
import zipfile

import job_user
import pytest
from real_schedulers import REPO_DIR, in_ci
from waiting import wait_for

pytestmark = pytest.mark.htcondor

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "transfer_driver.py")
SECRET = "not-in-any-submit-file-" + uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def job_python():
    job_user.require_job_user()
    if os.getuid() != 0:
        message = "hiding the work_dir from the HTCondor job user needs a submitter that is root"
        if in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return job_user.ensure_venv()


@pytest.fixture
def hidden_dir(tmp_path):
    """A directory of root's that the job user cannot enter."""
    path = tmp_path / "hidden"
    path.mkdir()
    path.chmod(0o700)
    return str(path)


@pytest.fixture
def batch_name():
    name = f"ppp-transfer-test-{uuid.uuid4().hex[:8]}"
    yield name
    # Nothing of the test may stay queued, whatever happened.
    subprocess.run(
        ["condor_rm", "-constraint", f'JobBatchName == "{name}"'], capture_output=True, check=False
    )


def start_map(job_python, work_dir, scenario, extra_env=None, **options):
    env = dict(os.environ)
    env.update(
        PYTHONPATH=REPO_DIR,
        TRANSFER_TEST_WORK_DIR=work_dir,
        TRANSFER_TEST_SECRET=SECRET,
        **(extra_env or {}),
    )
    return subprocess.Popen(
        [sys.executable, DRIVER, scenario, work_dir, job_python, json.dumps(options)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def run_map(job_python, work_dir, scenario, extra_env=None, **options):
    process = start_map(job_python, work_dir, scenario, extra_env, **options)
    stdout, stderr = process.communicate(timeout=180)
    assert stdout.strip(), stderr
    return json.loads(stdout.strip().splitlines()[-1]), stderr


def session_dir(work_dir):
    (name,) = [name for name in os.listdir(work_dir) if name.startswith("map-")]
    return os.path.join(work_dir, name)


def events(work_dir, kind):
    with open(os.path.join(session_dir(work_dir), "log.jsonl")) as file:
        found = [json.loads(line) for line in file if line.strip()]
    return [event for event in found if event["event"] == kind]


def contents(path):
    """The bytes of a file, and of each member where it is a zip archive."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return b"".join(archive.read(name) for name in archive.namelist())
    with open(path, "rb") as file:
        return file.read()


def test_results_in_order_from_jobs_that_cannot_see_the_work_dir(
    job_python, hidden_dir, batch_name
):
    work_dir = os.path.join(hidden_dir, "work")
    outcome, stderr = run_map(
        job_python, work_dir, "square_where", batch_name=batch_name, keep_work_dir=True
    )
    results = outcome.get("results")
    assert results is not None, stderr
    assert [r[0] for r in results] == [x * x for x in range(6)]
    for _, cwd, reachable, secret in results:
        assert reachable is False  # the work_dir is out of the job's reach
        assert not cwd.startswith(hidden_dir)  # it ran in its scratch directory
        assert secret == SECRET  # the private environment file travelled
    session = session_dir(work_dir)
    for root, _dirs, files in os.walk(session):
        assert stat.S_IMODE(os.stat(root).st_mode) == 0o700, root
        for name in files:
            path = os.path.join(root, name)
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
            # The environment is in environment.sh alone; the tasks return the
            # value, so the results and outcomes hold it too.
            if name not in ("environment.sh", "results.zip") and "outcomes" not in root:
                assert SECRET.encode() not in contents(path), path
    status = subprocess.run(
        [sys.executable, "-m", "pypoolparty", "status", work_dir],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": REPO_DIR},
    )
    assert "6 done" in status.stdout, status.stdout + status.stderr


def test_a_task_that_raises_raises_here_with_its_remote_traceback(
    job_python, hidden_dir, batch_name
):
    work_dir = os.path.join(hidden_dir, "work")
    outcome, stderr = run_map(job_python, work_dir, "raise_on_3", batch_name=batch_name)
    assert outcome.get("error") == "ValueError", stderr
    assert "task 3 does not like 3" in outcome["message"]
    assert "RemoteTraceback" not in outcome["message"]
    assert "in raise_on_3" in outcome["cause"]  # the job's own traceback
    assert 'raise ValueError(f"task {x} does not like {x}")' in outcome["cause"]


def test_a_killed_submitter_is_continued_by_the_same_map(job_python, hidden_dir, batch_name):
    work_dir = os.path.join(hidden_dir, "work")
    slow = {"TRANSFER_TEST_SLEEP": "2"}
    first = start_map(job_python, work_dir, "slow_square", slow, batch_name=batch_name)
    try:
        # Killed once a chunk is done, while others still run or wait.
        wait_for(
            lambda: (
                os.path.isdir(work_dir)
                and any(n.startswith("map-") for n in os.listdir(work_dir))
                and os.path.exists(os.path.join(session_dir(work_dir), "log.jsonl"))
                and events(work_dir, "chunk_done")
            ),
            timeout=120,
            interval=0.2,
        )
        done_before = len(events(work_dir, "chunk_done"))
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
    assert done_before < 8
    outcome, stderr = run_map(
        job_python, work_dir, "slow_square", slow, batch_name=batch_name, keep_work_dir=True
    )
    assert outcome.get("results") == [x * x for x in range(8)], stderr
    assert "continuing this map" in stderr
    # Each chunk was done once: those done before the kill were reused, the
    # jobs that ended meanwhile had their outcomes fetched from the spool.
    assert sorted(e["ichunk"] for e in events(work_dir, "chunk_done")) == list(range(8))


def running_procs(batch_name):
    completed = subprocess.run(
        ["condor_q", "-constraint", f'JobBatchName == "{batch_name}"', "-af:j", "JobStatus"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [line.split() for line in completed.stdout.splitlines()]
    return [row[0] for row in rows if row[1:] == ["2"]]


@pytest.fixture
def markers():
    """A directory every user may write: the job user's tasks leave marks in it."""
    path = tempfile.mkdtemp(prefix="pypoolparty-transfer-markers-", dir="/var/tmp")
    os.chmod(path, 0o1777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def runs_of_tasks(markers):
    """How often each step of each task ran: ``{(itask, step): runs}``."""
    runs = {}
    for name in os.listdir(markers):
        _, itask, step, *_ = name.split("-")
        runs[int(itask), int(step)] = runs.get((int(itask), int(step)), 0) + 1
    return runs


def test_a_job_vacated_mid_run_goes_on_from_its_records_and_checkpoint(
    job_python, hidden_dir, batch_name, markers
):
    """One job of 4 tasks of two checkpointed steps is vacated once task 1's
    second step started: its task records and task 1's checkpoint go to the
    schedd's spool and come back to the job when it starts again
    (when_to_transfer_output = ON_EXIT_OR_EVICT), so neither task 0 nor task
    1's first step runs again."""
    work_dir = os.path.join(hidden_dir, "work")
    env = {"TRANSFER_TEST_SLEEP": "2", "TRANSFER_TEST_MARKERS": markers}
    process = start_map(job_python, work_dir, "counted_square", env, batch_name=batch_name)
    try:
        wait_for(lambda: (1, 1) in runs_of_tasks(markers), timeout=120, interval=0.2)
        (jobid,) = running_procs(batch_name)
        vacated = subprocess.run(
            ["condor_vacate_job", jobid], capture_output=True, text=True, check=False
        )
        assert vacated.returncode == 0, vacated.stderr
        stdout, stderr = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    outcome = json.loads(stdout.strip().splitlines()[-1])
    assert outcome.get("results") == [x * x for x in range(4)], stderr
    starts = subprocess.run(
        ["condor_history", jobid, "-af", "NumJobStarts", "-limit", "1"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(starts.stdout.split()[0]) >= 2, "the vacated job did not start again"
    runs = runs_of_tasks(markers)
    assert runs[0, 0] == runs[0, 1] == 1, f"task 0 ran again after the vacate: {runs}"
    assert runs[1, 0] == 1, f"task 1 did not go on from its checkpoint: {runs}"
    assert all(runs[itask, step] == 1 for itask in (2, 3) for step in (0, 1)), runs


def test_a_job_held_at_its_time_limit_ends_the_map_saying_a_whole_chunk_must_fit(
    job_python, hidden_dir, batch_name, markers
):
    """A chunk cannot go on in pieces without a shared file system: nothing of
    a held job comes back, so the map cannot tell what it finished."""
    work_dir = os.path.join(hidden_dir, "work")
    env = {"TRANSFER_TEST_SLEEP": "2", "TRANSFER_TEST_MARKERS": markers}
    outcome, stderr = run_map(
        job_python,
        work_dir,
        "counted_square",
        env,
        batch_name=batch_name,
        submit_directives={"allowed_job_duration": "5"},
    )
    assert outcome.get("error") == "TimeLimitTooShort", stderr
    message = outcome["message"]
    assert message.startswith("chunk 0 (tasks 0..3, job "), message
    assert "allowed_job_duration" in message and "Without a shared file system" in message
    assert "a whole chunk (4 task(s) here) fits" in message
    assert len(events(work_dir, "submitted")) == 1  # none was submitted again
    assert (1, 0) in runs_of_tasks(markers)  # the job had finished a task


def procs_of(batch_name):
    completed = subprocess.run(
        ["condor_q", "-constraint", f'JobBatchName == "{batch_name}"', "-af:j", "JobStatus"],
        capture_output=True,
        text=True,
        check=True,
    )
    return completed.stdout.split()


def test_ctrl_c_removes_the_maps_jobs_and_the_same_map_continues(
    job_python, hidden_dir, batch_name
):
    work_dir = os.path.join(hidden_dir, "work")
    slow = {"TRANSFER_TEST_SLEEP": "2"}
    process = start_map(job_python, work_dir, "slow_square", slow, batch_name=batch_name)
    try:
        wait_for(lambda: running_procs(batch_name), timeout=120, interval=0.2)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert "KeyboardInterrupt" in stderr
    # Removed (JobStatus 3) at once; a running proc leaves the queue once its
    # shadow has stopped it.
    assert set(procs_of(batch_name)[1::2]) <= {"3"}, "Ctrl-C left jobs of the map running"
    wait_for(lambda: procs_of(batch_name) == [], timeout=60, interval=0.5)
    outcome, stderr = run_map(job_python, work_dir, "slow_square", slow, batch_name=batch_name)
    assert outcome.get("results") == [x * x for x in range(8)], stderr
    assert "continuing this map" in stderr


def test_a_held_job_is_removed_and_its_chunk_resubmitted_while_the_others_run_on(
    job_python, hidden_dir, batch_name, markers
):
    """The held proc alone leaves the queue: the other proc of its cluster,
    running then, is not removed with it (it would run its tasks again)."""
    work_dir = os.path.join(hidden_dir, "work")
    process = start_map(
        job_python,
        work_dir,
        "held_beside_running",
        {"TRANSFER_TEST_MARKERS": markers},
        batch_name=batch_name,
        keep_work_dir=True,
        # Policy of many sites: a job killed by a signal is held (HoldReasonCode 3).
        submit_directives={"on_exit_hold": "ExitBySignal =?= true"},
    )
    try:
        # The session logs job_failed after it removed the held proc.
        wait_for(lambda: os.path.isdir(work_dir) and failed_jobs(work_dir), timeout=150)
    finally:
        open(os.path.join(markers, "release"), "w").close()
    stdout, stderr = process.communicate(timeout=150)
    outcome = json.loads(stdout.strip().splitlines()[-1])
    assert outcome.get("results") == [x * x for x in range(4)], stderr
    failures = events(work_dir, "job_failed")
    assert len(failures) == 1, failures  # chunk 0's first job
    assert "HoldReasonCode 3" in failures[0]["reason"]
    runs = sorted(name.split("-")[1] for name in os.listdir(markers) if name.startswith("ran-"))
    # Chunk 0 twice (its first job was held); chunk 1 once.
    assert runs.count("2") == 1 and runs.count("3") == 1, runs
    assert runs.count("1") == 2, runs


def failed_jobs(work_dir):
    """The job_failed events of the map in ``work_dir`` so far."""
    try:
        return events(work_dir, "job_failed")
    except (FileNotFoundError, ValueError):  # not started yet / a line being written
        return []


def test_input_files_travel_with_the_jobs_of_their_tasks(job_python, hidden_dir, batch_name):
    inputs = os.path.join(hidden_dir, "inputs")  # only root may read them
    os.mkdir(inputs, 0o700)
    for i in range(4):
        with open(os.path.join(inputs, f"in-{i}.txt"), "w") as file:
            file.write(f"content of input {i}")
        os.chmod(os.path.join(inputs, f"in-{i}.txt"), 0o600)
    work_dir = os.path.join(hidden_dir, "work")
    outcome, stderr = run_map(
        job_python,
        work_dir,
        "read_input",
        {"TRANSFER_TEST_INPUTS": inputs},
        batch_name=batch_name,
    )
    results = outcome.get("results")
    assert results is not None, stderr
    assert [content for content, _ in results] == [f"content of input {i}" for i in range(4)]
    for _, path in results:
        assert not path.startswith(hidden_dir)  # a copy in the job's scratch directory
        assert path.endswith(".txt") and "/input_files/" in path


def test_output_files_come_back_per_task_failed_apart_from_finished(
    job_python, hidden_dir, batch_name
):
    work_dir = os.path.join(hidden_dir, "work")
    outcome, stderr = run_map(job_python, work_dir, "write_output", batch_name=batch_name)
    assert outcome.get("error") == "ValueError", stderr
    outputs = os.path.join(session_dir(work_dir), "outputs")
    found = {}
    for root, _dirs, names in os.walk(outputs):
        for name in names:
            with open(os.path.join(root, name)) as file:
                found[os.path.relpath(os.path.join(root, name), outputs)] = file.read()
    assert found == {
        "done/0/out-0.txt": "output of task 0",
        "failed/1/out-1.txt": "output of task 1",
        "done/2/out-2.txt": "output of task 2",
        "done/3/out-3.txt": "output of task 3",
    }
