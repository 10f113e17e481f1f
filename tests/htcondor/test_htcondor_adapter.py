"""The adapter alone (submit, query, cancel) against the dummy HTCondor."""

from __future__ import annotations

import os
import pwd
import stat
import sys

import pytest
from waiting import wait_for

from dummy_queues import DummyHTCondor
from pypoolparty import commands
from pypoolparty.htcondor import eventlog, submitfile
from pypoolparty.htcondor.options import ClusterOptions
from pypoolparty.htcondor.scheduler import CommandPaths, HTCondorScheduler
from pypoolparty.scheduler import JobState, Submission, SubmissionRejected, WorkerCall

TINY_WORKER = """\
import os, sys, time
work_dir, ichunk = sys.argv[1], sys.argv[3]
sleep_file = os.path.join(work_dir, "sleep_seconds")
time.sleep(float(open(sleep_file).read()) if os.path.exists(sleep_file) else 0)
with open(os.path.join(work_dir, "done-" + ichunk), "w") as file:
    file.write(ichunk)
"""

FAST_POLICY = commands.RetryPolicy(timeout=5.0, max_outage=30.0, first_backoff=0.01)


@pytest.fixture
def work_dir(tmp_path):
    path = tmp_path / "work"
    path.mkdir()
    (path / "tiny_worker.py").write_text(TINY_WORKER)
    return str(path)


def max_concurrently_executing(event_log_path: str) -> int:
    """The most procs the event log shows between their 001 and their end."""
    with open(event_log_path, "rb") as file:
        events, _ = eventlog.parse_events(file.read())
    running, most = set(), 0
    for event in events:
        key = (event.cluster, event.proc)
        if event.code == eventlog.EXECUTING:
            running.add(key)
        elif event.code in (eventlog.TERMINATED, eventlog.ABORTED, eventlog.HELD):
            running.discard(key)
        most = max(most, len(running))
    return most


def make_scheduler(policy=FAST_POLICY, submit_path=None, **options):
    paths = CommandPaths(
        condor_submit=submit_path or DummyHTCondor.path("condor_submit"),
        condor_q=DummyHTCondor.path("condor_q"),
        condor_rm=DummyHTCondor.path("condor_rm"),
    )
    return HTCondorScheduler(ClusterOptions(**options), policy, paths)


def make_submission(work_dir, chunks, name="ppp-test-1", throttle=None, python=sys.executable):
    directory = os.path.join(work_dir, name)
    os.makedirs(directory, mode=0o700)
    worker = WorkerCall(python, os.path.join(work_dir, "tiny_worker.py"), work_dir)
    return Submission(list(chunks), name, worker, directory, throttle)


def wait_until_final(scheduler, jobs, timeout=60.0):
    """Poll like the session does until every job ended or left the queue."""
    final = {}

    def all_final():
        for jobid, status in scheduler.query(jobs).items():
            final[jobid] = status
        answer = scheduler.query(jobs)
        return all(
            job.jobid not in answer
            or answer[job.jobid].state is not JobState.PENDING
            and answer[job.jobid].state is not JobState.RUNNING
            for job in jobs
        )

    wait_for(all_final, timeout=timeout)
    return final


def test_one_cluster_whose_procs_run_the_chunks(dummy_htcondor, work_dir):
    scheduler = make_scheduler()
    jobs = scheduler.submit(make_submission(work_dir, [3, 5, 7]))
    cluster = jobs[0].jobid.split(".")[0]
    assert [(j.jobid, j.ichunk) for j in jobs] == [
        (f"{cluster}.0", 3),
        (f"{cluster}.1", 5),
        (f"{cluster}.2", 7),
    ]
    wait_for(lambda: all(os.path.exists(os.path.join(work_dir, f"done-{i}")) for i in (3, 5, 7)))
    statuses = wait_until_final(scheduler, jobs)
    assert {s.state for s in statuses.values()} <= {JobState.ENDED, JobState.RUNNING}
    assert dummy_htcondor.state()["next_cluster"] == int(cluster) + 1  # one cluster only
    assert os.path.exists(os.path.join(work_dir, "ppp-test-1", "events.log"))


def test_the_event_log_is_private_like_every_file_of_the_session(dummy_htcondor, work_dir):
    scheduler = make_scheduler()
    jobs = scheduler.submit(make_submission(work_dir, [0]))
    wait_until_final(scheduler, jobs)
    log_path = os.path.join(work_dir, "ppp-test-1", "events.log")
    assert os.path.getsize(log_path) > 0  # HTCondor (here the dummy) wrote to it
    assert stat.S_IMODE(os.stat(log_path).st_mode) == 0o600
    # The proc's output files too (HTCondor would make them 0644).
    for path in submitfile.job_output_paths(os.path.dirname(log_path), 0):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path


def test_throttle_keeps_procs_materialized_below_the_limit(dummy_htcondor, work_dir):
    dummy_htcondor.set_faults(slots=4)
    scheduler = make_scheduler()
    submission = make_submission(work_dir, range(6), throttle=2)
    jobs = scheduler.submit(submission)
    wait_for(lambda: all(os.path.exists(os.path.join(work_dir, f"done-{i}")) for i in range(6)))
    wait_until_final(scheduler, jobs)
    log = submitfile.event_log_path(submission.directory)
    assert max_concurrently_executing(log) <= 2
    with open(os.path.join(submission.directory, submitfile.SUBMIT_FILE_NAME)) as file:
        assert "max_materialize = 2\n" in file.read()


def test_held_procs_are_errors_with_hold_reason_and_cancel_leaves_nothing(dummy_htcondor, work_dir):
    dummy_htcondor.set_faults(
        error_probability=1.0,
        error_states=[{"HoldReason": "Transfer input files failure", "HoldReasonCode": 13}],
    )
    scheduler = make_scheduler()
    jobs = scheduler.submit(make_submission(work_dir, [0, 1]))
    statuses = wait_for(
        lambda: (
            (a := scheduler.query(jobs))
            and all(a.get(j.jobid) and a[j.jobid].state is JobState.ERROR for j in jobs)
            and a
        )
    )
    assert "Transfer input files failure" in statuses[jobs[0].jobid].reason
    assert "HoldReasonCode 13" in statuses[jobs[0].jobid].reason
    scheduler.cancel(jobs)
    assert dummy_htcondor.listed_jobs() == []
    scheduler.cancel(jobs)  # already gone: fine


def test_a_users_hold_is_reported_as_held(dummy_htcondor, work_dir):
    me = pwd.getpwuid(os.getuid()).pw_name  # another user's condor_hold is an admin's: an error
    dummy_htcondor.set_faults(
        error_probability=1.0,
        error_states=[{"HoldReason": f"via condor_hold (by user {me})", "HoldReasonCode": 1}],
    )
    scheduler = make_scheduler()
    jobs = scheduler.submit(make_submission(work_dir, [0]))
    status = wait_for(lambda: scheduler.query(jobs).get(jobs[0].jobid))
    status = wait_for(
        lambda: (s := scheduler.query(jobs)[jobs[0].jobid]).state is not JobState.PENDING and s
    )
    assert status.state is JobState.HELD
    assert f"via condor_hold (by user {me})" in status.reason


def test_a_vanished_proc_leaves_the_answer(dummy_htcondor, work_dir):
    dummy_htcondor.set_faults(vanish_probability=1.0)
    scheduler = make_scheduler()
    jobs = scheduler.submit(make_submission(work_dir, [0]))
    wait_for(lambda: jobs[0].jobid not in scheduler.query(jobs))
    assert not os.path.exists(os.path.join(work_dir, "done-0"))


def test_a_state_nobody_knows_is_unknown(dummy_htcondor, work_dir):
    with open(os.path.join(work_dir, "sleep_seconds"), "w") as file:
        file.write("30")
    dummy_htcondor.set_faults(unknown_state_probability=1.0)
    scheduler = make_scheduler()
    jobs = scheduler.submit(make_submission(work_dir, [0]))
    status = wait_for(
        lambda: (
            (s := scheduler.query(jobs).get(jobs[0].jobid)) and s.state is JobState.UNKNOWN and s
        )
    )
    assert status.scheduler_state == "8"


@pytest.mark.parametrize(
    "faults",
    [
        {"fail_commands": {"condor_submit": 2, "condor_q": 2}},
        {"garbage_commands": {"condor_submit": 1, "condor_q": 2}},
        {"hang_commands": {"condor_q": 1}},
    ],
)
def test_failing_commands_are_retried_without_duplicate_clusters(dummy_htcondor, work_dir, faults):
    dummy_htcondor.set_faults(**faults)
    scheduler = make_scheduler(policy=commands.RetryPolicy(timeout=2.0, first_backoff=0.01))
    jobs = scheduler.submit(make_submission(work_dir, [0, 1]))
    wait_for(lambda: all(os.path.exists(os.path.join(work_dir, f"done-{i}")) for i in (0, 1)))
    wait_until_final(scheduler, jobs)
    state = dummy_htcondor.state()
    assert state["next_cluster"] == 2
    assert state["faults_used"] == faults  # every injected fault was hit


def test_a_submission_that_times_out_after_queueing_is_not_repeated(
    dummy_htcondor, work_dir, tmp_path
):
    # condor_submit that queues the cluster and then hangs, the first time.
    wrapper = tmp_path / "slow_condor_submit"
    marker = tmp_path / "hung-once"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'{DummyHTCondor.path("condor_submit")} "$@"\n'
        f"if [ ! -e {marker} ]; then touch {marker}; exec sleep 600; fi\n"
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    policy = commands.RetryPolicy(timeout=1.0, first_backoff=0.01)
    scheduler = make_scheduler(policy=policy, submit_path=str(wrapper))
    jobs = scheduler.submit(make_submission(work_dir, [4, 2]))
    assert [j.ichunk for j in jobs] == [4, 2]
    assert marker.exists()
    wait_for(lambda: all(os.path.exists(os.path.join(work_dir, f"done-{i}")) for i in (4, 2)))
    assert dummy_htcondor.state()["next_cluster"] == 2  # exactly one cluster


def test_recovery_by_job_name_finds_only_jobs_that_log_into_its_own_directory(
    dummy_htcondor, work_dir, tmp_path
):
    # Issue 17, item 1: the look-up after a failed condor_submit never adopts a
    # job of the same name that is not this submission's (another user's or
    # another copy's of the work_dir).
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for directory in (elsewhere, tmp_path / "work"):
        (directory / "tiny_worker.py").write_text(TINY_WORKER)
        (directory / "sleep_seconds").write_text("60")  # stay in the queue
    scheduler = make_scheduler()
    foreign = scheduler.submit(make_submission(str(elsewhere), [0], name="ppp-same"))
    ours = make_submission(work_dir, [0], name="ppp-same")
    try:
        assert scheduler.recover(ours) == []
        mine = scheduler.submit(ours)
        # Without its event log, only the queue can tell.
        os.remove(submitfile.event_log_path(ours.directory))
        assert [job.jobid for job in scheduler.recover(ours)] == [job.jobid for job in mine]
    finally:
        scheduler.cancel(foreign + scheduler.recover(ours))


def test_a_rejected_submission_says_what_condor_submit_said(dummy_htcondor, work_dir):
    scheduler = make_scheduler()
    with pytest.raises(SubmissionRejected, match="Executable file /no/such/python does not exist"):
        scheduler.submit(make_submission(work_dir, [0], python="/no/such/python"))


def test_a_new_adapter_rebuilds_state_from_the_event_log(dummy_htcondor, work_dir):
    first = make_scheduler()
    jobs = first.submit(make_submission(work_dir, [0, 1]))
    wait_for(lambda: all(os.path.exists(os.path.join(work_dir, f"done-{i}")) for i in (0, 1)))
    wait_until_final(first, jobs)
    restarted = make_scheduler()
    statuses = restarted.query(jobs)
    assert {statuses[j.jobid].state for j in jobs} == {JobState.ENDED}
    assert {statuses[j.jobid].reason for j in jobs} == {"exit code 0"}


def test_cancelling_part_of_a_throttled_cluster_removes_unmaterialized_procs(
    dummy_htcondor, work_dir, monkeypatch
):
    with open(os.path.join(work_dir, "sleep_seconds"), "w") as file:
        file.write("30")
    scheduler = make_scheduler()
    jobs = scheduler.submit(make_submission(work_dir, range(5), throttle=1))
    wait_for(lambda: dummy_htcondor.listed_jobs())
    scheduler.cancel(jobs[1:])  # the Ctrl-C of a map whose chunk 0 is done
    assert dummy_htcondor.listed_jobs() == []
    assert str(jobs[0].jobid.split(".")[0]) not in dummy_htcondor.state()["clusters"]
