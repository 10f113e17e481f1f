"""pypoolparty.htcondor.Pool against a real HTCondor pool.

Start one with ``sudo bash local_clusters/htcondor/start.sh``. The maps run in
a small driver script as the ordinary job user (see ``job_user.py``), as a
real user runs them: HTCondor never runs jobs as root.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid

import job_user
import pytest
from waiting import wait_for

pytestmark = pytest.mark.htcondor

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "htcondor_driver.py")
# Policy of many sites: a job killed by a signal is held (HoldReasonCode 3).
HOLD_ON_SIGNAL = {"on_exit_hold": "ExitBySignal =?= true"}


@pytest.fixture(scope="module")
def condor_user():
    return job_user.require_job_user()


@pytest.fixture(scope="module")
def job_python(condor_user):
    return job_user.ensure_venv()


@pytest.fixture
def shared_dir(condor_user):
    path = job_user.make_shared_dir(condor_user)
    yield path
    job_user.remove_shared_dir(path)


def unique_batch_name() -> str:
    return f"ppp-test-{uuid.uuid4().hex[:8]}"


def run_map(
    condor_user, job_python, shared_dir, scenario, timeout=180, work_name="work", **options
):
    process = job_user.popen(
        condor_user,
        [job_python, DRIVER, scenario, os.path.join(shared_dir, work_name), json.dumps(options)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout, stderr = process.communicate(timeout=timeout)
    assert stdout.strip(), stderr
    return json.loads(stdout.strip().splitlines()[-1]), stderr


def batch_in_queue(batch_name: str) -> list[str]:
    completed = subprocess.run(
        ["condor_q", "-constraint", f'JobBatchName == "{batch_name}"', "-af:j", "JobStatus"],
        capture_output=True,
        text=True,
        check=True,
    )
    return completed.stdout.split("\n")[:-1]


def assert_left_the_queue(batch_name: str) -> None:
    """Every job of the batch is removed (JobStatus 3) or done; HTCondor takes
    removed jobs off the queue once their starters have cleaned up."""
    remaining = batch_in_queue(batch_name)
    assert all(line.endswith(" 3") or line.endswith(" 4") for line in remaining), remaining
    wait_for(lambda: batch_in_queue(batch_name) == [], timeout=60)


def batches_in_queue(prefix: str) -> list[str]:
    completed = subprocess.run(
        ["condor_q", "-af", "JobBatchName"], capture_output=True, text=True, check=True
    )
    return [name for name in completed.stdout.split() if name.startswith(prefix)]


def test_map_of_1000_tasks(condor_user, job_python, shared_dir):
    outcome, stderr = run_map(condor_user, job_python, shared_dir, "map_squares")
    assert outcome.get("results") == [x * x for x in range(1000)], stderr


def test_starmap_of_1000_tasks_in_a_work_dir_with_spaces_and_quotes(
    condor_user, job_python, shared_dir
):
    outcome, stderr = run_map(
        condor_user, job_python, shared_dir, "starmap_powers", work_name='work dir\'s "q"'
    )
    assert outcome.get("results") == [x**2 for x in range(1000)], stderr


def test_a_held_proc_is_removed_and_resubmitted(condor_user, job_python, shared_dir):
    batch = unique_batch_name()
    outcome, stderr = run_map(
        condor_user,
        job_python,
        shared_dir,
        "killed_once",
        submit_directives=HOLD_ON_SIGNAL,
        batch_name=batch,
        keep_work_dir=True,
    )
    assert outcome.get("results") == [1000, 1001, 1002, 1003], stderr
    failures = session_events(shared_dir, "job_failed")
    assert failures, "no proc was held, so nothing was tested"
    assert all("HoldReasonCode 3" in f["reason"] for f in failures)
    assert_left_the_queue(batch)


def session_events(shared_dir: str, kind: str) -> list[dict]:
    work = os.path.join(shared_dir, "work")
    (session,) = [name for name in os.listdir(work) if name.startswith("map-")]
    with open(os.path.join(work, session, "log.jsonl")) as file:
        events = [json.loads(line) for line in file if line.strip()]
    return [event for event in events if event["event"] == kind]


def test_exhausted_resubmissions_raise_with_the_hold_reason(condor_user, job_python, shared_dir):
    batch = unique_batch_name()
    outcome, stderr = run_map(
        condor_user,
        job_python,
        shared_dir,
        "always_killed",
        submit_directives=HOLD_ON_SIGNAL,
        batch_name=batch,
        max_num_resubmissions=1,
    )
    assert outcome.get("error") == "ResubmissionsExhausted", stderr
    assert "OnExitHold" in outcome["message"]
    assert "HoldReasonCode 3" in outcome["message"]
    assert_left_the_queue(batch)


def test_ctrl_c_leaves_nothing_in_condor_q(condor_user, job_python, shared_dir):
    batch = unique_batch_name()
    options = {"batch_name": batch, "polling_interval": 0.2}
    process = job_user.popen(
        condor_user,
        [job_python, DRIVER, "sleep_long", os.path.join(shared_dir, "work"), json.dumps(options)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: any(line.endswith(" 2") for line in batch_in_queue(batch)), timeout=60)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    outcome = json.loads(stdout.strip().splitlines()[-1])
    assert outcome["error"] == "KeyboardInterrupt", stderr
    assert "cancelled" in outcome["message"]
    assert_left_the_queue(batch)


def test_resource_requests_reach_the_job_ad(condor_user, job_python, shared_dir):
    batch = unique_batch_name()
    outcome, stderr = run_map(
        condor_user,
        job_python,
        shared_dir,
        "one_task",
        batch_name=batch,
        request_cpus=1,
        request_memory="300MB",
        request_disk="2GB",
        submit_directives={"+ProjectName": '"pypoolparty-test"'},
    )
    assert outcome.get("results") == [49], stderr
    completed = subprocess.run(
        [
            "condor_history",
            "-constraint",
            f'JobBatchName == "{batch}"',
            "-af",
            "RequestCpus",
            "RequestMemory",
            "RequestDisk",
            "ProjectName",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert completed.stdout.split() == ["1", "300", str(2 * 1024 * 1024), "pypoolparty-test"]


def test_a_work_dir_the_job_user_cannot_enter_ends_the_map_at_once(condor_user, tmp_path):
    # As in issue 17: root submits, HTCondor runs the jobs as another user, who
    # cannot enter root's private work_dir. Every proc is held with
    # HoldReasonCode 14; resubmitting cannot help.
    import pypoolparty.htcondor

    if os.geteuid() != 0:
        pytest.skip("needs a submitter whose work_dir the job user cannot enter (root)")
    batch = unique_batch_name()
    work_dir = tmp_path / "private"
    work_dir.mkdir(mode=0o700)
    pool = pypoolparty.htcondor.Pool(
        work_dir=str(work_dir), batch_name=batch, polling_interval=0.2, max_num_resubmissions=5
    )
    with pytest.raises(pypoolparty.JobCannotRun) as raised:
        pool.map(abs, range(3), chunksize=1)
    message = str(raised.value)
    assert "Cannot access initial working directory" in message
    assert "HoldReasonCode 14" in message
    # The advice that works for root: another work_dir would fail the same way.
    assert "Submit as the user the jobs run as" in message
    assert "shared_file_system=False" in message
    assert "call the same map" not in message
    (session,) = [p for p in work_dir.iterdir() if p.name.startswith("map-")]
    with open(session / "log.jsonl") as file:
        events = [json.loads(line) for line in file if line.strip()]
    assert [e["event"] for e in events].count("submitting") == 1  # never resubmitted
    assert_left_the_queue(batch)


def test_recovery_by_job_name_never_adopts_another_user_s_job(condor_user, shared_dir, tmp_path):
    # Issue 17, item 1: this pool lists every user's jobs (CONDOR_Q_ONLY_MY_JOBS
    # is False), and a schedd that does not run as root owns them all itself.
    import sys

    from pypoolparty import commands
    from pypoolparty.htcondor import submitfile
    from pypoolparty.htcondor.options import ClusterOptions
    from pypoolparty.htcondor.scheduler import CommandPaths, HTCondorScheduler
    from pypoolparty.scheduler import Submission, WorkerCall

    name = unique_batch_name()
    foreign_file = os.path.join(shared_dir, "foreign.sub")
    with open(foreign_file, "w") as file:
        file.write(
            f"executable = /bin/true\nhold = True\nlog = {shared_dir}/events.log\n"
            f'+PypoolpartyJobName = "{name}"\n+JobBatchName = "{name}"\nqueue 1\n'
        )
    os.chmod(foreign_file, 0o644)
    submitted = job_user.popen(condor_user, ["condor_submit", foreign_file])
    assert submitted.wait(timeout=60) == 0
    directory = tmp_path / name
    directory.mkdir(mode=0o700)
    ours = Submission(
        [0], name, WorkerCall(sys.executable, "/no/worker.py", str(tmp_path)), str(directory), None
    )
    scheduler = HTCondorScheduler(
        ClusterOptions(submit_directives={"hold": "True"}),
        commands.RetryPolicy(timeout=30.0),
        CommandPaths(),
    )
    try:
        assert batch_in_queue(name)  # the other user's job of that name
        assert scheduler.recover(ours) == []
        mine = scheduler.submit(ours)
        # Without its event log, only the queue can tell.
        os.remove(submitfile.event_log_path(str(directory)))
        assert [job.jobid for job in scheduler.recover(ours)] == [job.jobid for job in mine]
    finally:
        subprocess.run(["condor_rm", "-constraint", f'JobBatchName == "{name}"'], check=False)


def test_a_proc_that_exited_non_zero_is_resubmitted_at_once(condor_user, job_python, shared_dir):
    # Issue 17, item 22: HTCondor says how the job ended; with an hour of grace
    # for late results, a map that waited for it would not end in time.
    batch = unique_batch_name()
    outcome, stderr = run_map(
        condor_user,
        job_python,
        shared_dir,
        "exits_once",
        batch_name=batch,
        keep_work_dir=True,
        missing_result_grace_period=3600,
    )
    assert outcome.get("results") == [1000, 1001], stderr
    failures = session_events(shared_dir, "job_failed")
    assert len(failures) == 2 and all("exit code 3" in f["reason"] for f in failures)
    assert_left_the_queue(batch)


def test_a_node_with_another_python_ends_the_map_at_once(condor_user, job_python, shared_dir):
    # Issue 16, item 4: the worker's own check on the node, never resubmitted.
    batch = unique_batch_name()
    outcome, stderr = run_map(
        condor_user,
        job_python,
        shared_dir,
        "other_python_on_the_nodes",
        batch_name=batch,
        max_num_resubmissions=5,
        missing_result_grace_period=3600,
    )
    assert outcome.get("error") == "InterpreterMismatch", stderr
    message = outcome["message"]
    assert "is Python 3." in message and "in job" in message and "on host" in message
    assert "No task ran" in message and "call the same map" not in message
    assert len(session_events(shared_dir, "submitting")) == 1  # never resubmitted
    assert len(session_events(shared_dir, "job_failed")) == 1
    assert_left_the_queue(batch)
