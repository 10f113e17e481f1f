"""A task that crashes the Python process of its job (a segfault) ends the map.

One crash may be a bad node, so the chunk runs once more; when the same task
crashes its job again with the same signal, the map ends with
:class:`pypoolparty.TaskCrashed`, which names the task, its chunk, the job
and the signal, shows faulthandler's traceback from the job's stderr, and
does not advise calling the map again unchanged. The tasks finished before
it are kept.
"""

from __future__ import annotations

import pytest
from crashing_tasks import crash_at_one
from killing_tasks import counts, logged

import pypoolparty
from dummy_queues import POOL_KINDS, make_pool
from pypoolparty import crashes


@pytest.fixture
def dummy(pool_kind, dummy_queue):
    return dummy_queue(pool_kind)


@pytest.mark.parametrize("pool_kind", sorted(POOL_KINDS))
def test_a_task_that_segfaults_twice_ends_the_map_naming_it(pool_kind, dummy, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    work_dir = str(tmp_path / "work")
    pool = make_pool(
        pool_kind,
        work_dir=work_dir,
        polling_interval=0.05,
        missing_result_grace_period=1.0,
        max_num_resubmissions=5,
    )
    tasks = [(str(marks), x) for x in range(3)]
    with pytest.raises(pypoolparty.TaskCrashed) as info:
        pool.starmap(crash_at_one, tasks, chunksize=3)
    error = info.value
    message = str(error)
    assert (error.itask, error.ichunk, error.signal) == (1, 0, "SIGSEGV")
    assert f"task 1 (chunk 0, tasks 0..2, job {error.jobid})" in message
    assert "crashed the Python process with SIGSEGV" in message
    assert "not a scheduler failure" in message
    # faulthandler's traceback in the job's stderr shows where the task crashed
    assert "Fatal Python error: Segmentation fault" in message
    assert "crash_at_one" in message
    assert "Fix task 1" in message and "continue it" not in message
    # one resubmission for a possible node fault, not max_num_resubmissions of them
    assert len(logged(tmp_path, "job_failed")) == 2
    assert counts(marks, range(3), "started") == {0: 1, 1: 2, 2: 0}
    # the finished task is kept: the session directory stays, with its record
    (session,) = (tmp_path / "work").glob("map-*")
    assert str(session) in message and "keeps the results of 1 of 3 tasks" in message


@pytest.mark.parametrize(
    ("reason", "stderr", "expected"),
    [
        ("FAILED; JobLaunchFailure; ExitCode=0:11", "", "SIGSEGV"),
        ("exit_status 139                  (Segmentation fault)", "", "SIGSEGV"),
        ("Job was aborted: signal 7", "", "SIGBUS"),
        ("killed by signal SIGABRT", "", "SIGABRT"),
        (
            "the job left the queue without writing a result",
            "Fatal Python error: Aborted\n",
            "SIGABRT",
        ),
        # a scheduler's kill or a plain failure is no crash of the task's own
        ("killed by signal SIGKILL", "", ""),
        ("CANCELLED; ExitCode=0:15", "", ""),
        ("NODE_FAIL; started 2026-01-01T05:30:11", "", ""),
        ("exit_status 137", "", ""),
    ],
)
def test_what_counts_as_a_crash_of_the_jobs_own(reason, stderr, expected):
    assert crashes.crash_signal(reason, stderr) == expected


def test_the_error_shows_faulthandlers_report_from_its_first_line():
    frames = [f'  File "deep.py", line {n} in level_{n}' for n in range(60)]
    stderr = "\n".join(
        ["setup noise", "Fatal Python error: Segmentation fault", "", "Current thread:"]
        + frames
        + ["", "Extension modules: numpy.core (total: 1)"]
    )
    shown = crashes.where_it_crashed(stderr, tail="the last lines")
    assert shown.splitlines()[0] == "Fatal Python error: Segmentation fault"
    # the innermost frames, the task's own, come first and are kept
    assert frames[0] in shown and shown.endswith("...")
    assert crashes.where_it_crashed("no report here", tail="the last lines") == "the last lines"


def test_without_resubmissions_a_crash_is_named_in_the_exhausted_error(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    pool = make_pool(
        "local",
        work_dir=str(tmp_path / "work"),
        polling_interval=0.05,
        missing_result_grace_period=1.0,
        max_num_resubmissions=0,
    )
    with pytest.raises(pypoolparty.ResubmissionsExhausted) as info:
        pool.starmap(crash_at_one, [(str(marks), x) for x in range(3)], chunksize=3)
    assert "died of SIGSEGV in task 1" in str(info.value)
    assert counts(marks, range(3), "started") == {0: 1, 1: 1, 2: 0}
