"""Every pool, on the dummy queues: how fast a map reacts to jobs that failed.

- A map continued after Ctrl-C submits the chunks whose jobs the interrupted
  call cancelled at once, as first submissions: it never adopts those jobs,
  never waits ``missing_result_grace_period`` for them, and counts no
  resubmission for them (issue 17, item 2).
- A job the scheduler reports as failed (a non-zero exit) is resubmitted at
  once, without the grace period for late result files (issue 17, item 22).

The grace period is an hour in these tests: a map that waited for it would
not end, and the subprocess's timeout would fail the test.
"""

from __future__ import annotations

import signal
import subprocess

import pytest
from failing_maps import (
    HOUR_OF_GRACE_WOULD_HANG,
    events_after_resume,
    map_arguments,
    running_jobs_logged,
)
from session_logs import session_events
from waiting import wait_for

from dummy_queues import POOL_KINDS, POOLS, make_pool, pool_paths
from pypoolparty.errors import ResubmissionsExhausted


@pytest.fixture
def dummy(pool_kind, dummy_queue):
    return dummy_queue(pool_kind)


def arguments(tmp_path, pool_kind: str, scenario: str, **options) -> list[str]:
    options = {**pool_paths(pool_kind), **options}
    return map_arguments(tmp_path, POOLS[pool_kind][0], options, scenario)


@pytest.mark.parametrize("pool_kind", sorted(POOL_KINDS))
def test_continuing_after_ctrl_c_submits_the_cancelled_chunks_at_once(pool_kind, dummy, tmp_path):
    (tmp_path / "gate").touch()
    args = arguments(tmp_path, pool_kind, "gate")
    interrupted = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: running_jobs_logged(tmp_path / "work"), timeout=60)
        interrupted.send_signal(signal.SIGINT)
        _, stderr = interrupted.communicate(timeout=HOUR_OF_GRACE_WOULD_HANG)
    finally:
        interrupted.kill()
    assert "KeyboardInterrupt" in stderr
    (aborted,) = [e for e in session_events(tmp_path / "work") if e["event"] == "session_aborted"]
    assert aborted["cancelled_jobs"] > 0

    (tmp_path / "gate").unlink()
    again = subprocess.run(args, capture_output=True, text=True, timeout=HOUR_OF_GRACE_WOULD_HANG)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == str([x + 100 for x in range(6)])

    continued = events_after_resume(tmp_path / "work")
    assert continued[0]["adopted_jobs"] == 0  # no cancelled job is adopted ...
    submitted_now = {row[0] for e in continued if e["event"] == "submitted" for row in e["jobs"]}
    queried = {e["jobid"] for e in continued if e["event"] == "job_state"}
    assert queried <= submitted_now  # ... or even looked at
    submissions = [e for e in continued if e["event"] == "submitting"]
    # At once, in one submission: the lowest chunks, a job per slot; those
    # jobs claim the other chunks.
    assert submissions[0]["chunks"][0][0] == 0
    assert len(submissions) == 1
    assert not [e for e in continued if e["event"] == "job_failed"]  # no resubmission counted


@pytest.mark.parametrize("slots", [None, 1])
@pytest.mark.parametrize("pool_kind", sorted(set(POOL_KINDS) - {"sge"}))
def test_a_job_the_scheduler_reports_failed_is_resubmitted_at_once(
    pool_kind, slots, dummy, tmp_path
):
    # Grid Engine forgets a finished job at once; only its accounting (qacct,
    # which the dummy lacks) tells how it ended: see tests/sge/test_sge_real.py.
    # With one slot, one job claims every chunk: it fails in chunk 1, the
    # second chunk it ran, not the one it was submitted for.
    options = {} if slots is None else {"num_simultaneously_running_tasks": slots}
    args = arguments(tmp_path, pool_kind, "dies", **options)
    done = subprocess.run(args, capture_output=True, text=True, timeout=HOUR_OF_GRACE_WOULD_HANG)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str([x + 100 for x in range(6)])
    events = session_events(tmp_path / "work")
    (failure,) = [e for e in events if e["event"] == "job_failed"]
    assert failure["ichunk"] == 1 and failure["attempt"] == 1
    assert "without a result" not in failure["reason"]  # the scheduler said how
    # The scheduler's own word for it, seen before the resubmission.
    states = [
        e["state"]
        for e in events[: events.index(failure)]
        if e["event"] == "job_state" and e.get("jobid") == failure["jobid"]
    ]
    assert states[-1] == "error"


class ExitsOnOne:
    """Notes each run; the worker exits with code 3, without a result, on task 1."""

    def __init__(self, runs_dir: str):
        self.runs_dir = runs_dir

    def __call__(self, x):
        import os

        with open(os.path.join(self.runs_dir, f"ran-{x}"), "a") as file:
            file.write("ran\n")
        if x == 1:
            os._exit(3)
        return x


@pytest.mark.parametrize("pool_kind", ["local", "slurm_array"])
def test_a_chunk_that_fails_in_a_job_that_claimed_it_is_run_max_num_resubmissions_more(
    pool_kind, dummy, tmp_path
):
    # One slot: the job of chunk 0 claims chunk 1 and fails in it. That run is
    # the chunk's first attempt, as a run in a job of its own would be.
    runs = tmp_path / "runs"
    runs.mkdir()
    pool = make_pool(
        pool_kind,
        1,
        work_dir=str(tmp_path / "work"),
        polling_interval=0.05,
        max_num_resubmissions=1,
        missing_result_grace_period=3600,
    )
    try:
        result = pool.map_async(ExitsOnOne(str(runs)), range(3), chunksize=1)
        with pytest.raises(ResubmissionsExhausted, match="after 1 resubmission"):
            result.get(timeout=HOUR_OF_GRACE_WOULD_HANG)
    finally:
        pool.terminate()
    assert (runs / "ran-1").read_text().count("ran") == 2
    events = session_events(tmp_path / "work")
    claimed = [e["ichunk"] for e in events if e["event"] == "chunk_claimed"]
    assert 1 in claimed
    assert [e["attempt"] for e in events if e["event"] == "job_failed"] == [1, 2]
