"""The whole chain -- Pool, session, adapter, worker -- against the dummy Grid Engine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest
from session_logs import session_events
from waiting import wait_for

import pypoolparty
from pypoolparty.scheduler import SubmissionRejected


def make_pool(dummy_sge, tmp_path, **options):
    from pypoolparty import sge

    settings = dict(
        work_dir=str(tmp_path / "work"),
        polling_interval=0.1,
        missing_result_grace_period=0.5,
        command_timeout=3.0,
        outage_timeout=60.0,
    )
    settings.update(options)
    return sge.Pool(**dummy_sge.paths, **settings)


def square(x):
    return x * x


def test_map_returns_results_in_order(dummy_sge, tmp_path):
    pool = make_pool(dummy_sge, tmp_path)
    assert pool.map(square, range(300)) == [x * x for x in range(300)]
    # tasks that wrote their results may still be exiting, or be cancelled (dr)
    wait_for(lambda: dummy_sge.jobs() == {}, 10)


def test_starmap_and_lambdas(dummy_sge, tmp_path):
    pool = make_pool(dummy_sge, tmp_path, num_simultaneously_running_tasks=3)
    tasks = [(x, 2 * x) for x in range(50)]
    assert pool.starmap(lambda a, b: a + b, tasks) == [3 * x for x in range(50)]


def test_the_sun_grid_engine_and_sge_pools_are_one():
    from pypoolparty import sge, sun_grid_engine

    assert sge.Pool is sun_grid_engine.Pool


@pytest.mark.chaos
def test_a_map_survives_errors_vanished_jobs_unknown_states_and_failing_commands(
    dummy_sge, tmp_path
):
    dummy_sge.set_faults(
        seed=7,
        slots=24,  # a job per chunk: the faults hit many jobs
        error_probability=0.2,
        vanish_probability=0.15,
        unknown_state_probability=0.2,
        fail_commands={"qsub": 1, "qstat": 1, "qdel": 1},
        hang_commands={"qstat": 1},
        garbage_commands={"qstat": 1, "qsub": 1},
    )
    pool = make_pool(
        dummy_sge, tmp_path, max_num_resubmissions=30, keep_work_dir=True, command_timeout=1.0
    )
    assert pool.map(square, range(120), chunksize=5) == [x * x for x in range(120)]
    # The faults did hit jobs; their chunks were claimed by other jobs, or
    # resubmitted, and then the log says why.
    assert set(dummy_sge.faults_used()["job_faults"]) == {"error", "vanish"}
    failures = [e for e in session_events(tmp_path / "work") if e["event"] == "job_failed"]
    for failure in failures:
        assert "Eqw" in failure["reason"] or "without writing a result" in failure["reason"]
    # tasks that wrote their results may still be exiting, or be cancelled (dr)
    wait_for(lambda: dummy_sge.jobs() == {}, 10)


def test_exhausted_resubmissions_raise_with_chunks_reason_and_work_dir(dummy_sge, tmp_path):
    dummy_sge.set_faults(error_probability=1.0)
    pool = make_pool(dummy_sge, tmp_path, max_num_resubmissions=2)
    with pytest.raises(pypoolparty.ResubmissionsExhausted) as raised:
        pool.map(square, range(4), chunksize=2)
    message = str(raised.value) + " ".join(getattr(raised.value, "__notes__", []))
    assert "chunk 0 (tasks 0..1)" in message and "chunk 1 (tasks 2..3)" in message
    assert "Eqw" in message and "Stale file handle" in message
    assert str(tmp_path / "work") in message
    assert len([e for e in session_events(tmp_path / "work") if e["event"] == "submitting"]) == 3
    wait_for(lambda: dummy_sge.jobs() == {}, 10)


def test_a_task_that_raises_is_reraised_not_resubmitted(dummy_sge, tmp_path):
    def fail_on_three(x):
        if x == 3:
            raise KeyError("three")
        return x

    pool = make_pool(dummy_sge, tmp_path)
    with pytest.raises(KeyError, match="three"):
        pool.map(fail_on_three, range(8))
    assert not [e for e in session_events(tmp_path / "work") if e["event"] == "job_failed"]


def test_a_refused_option_gives_qsubs_message(dummy_sge, tmp_path):
    pool = make_pool(dummy_sge, tmp_path, resources={"h_rt": "soon"})
    with pytest.raises(SubmissionRejected, match='attribute "h_rt" is not a time value'):
        pool.map(square, range(3))
    assert dummy_sge.jobs() == {}


def test_a_held_job_is_left_alone_until_released(dummy_sge, tmp_path):
    pool = make_pool(dummy_sge, tmp_path, qsub_arguments=["-h"], keep_work_dir=True)
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(results=pool.map(square, range(6))))
    thread.start()
    try:
        wait_for(
            lambda: any(
                e["event"] == "job_state" and e["state"] == "held"
                for e in session_events(tmp_path / "work")
            ),
            30,
        )
        assert set(dummy_sge.task_states()) == {"hqw"}
    finally:
        dummy_sge.run("qrls", *dummy_sge.jobs())
        thread.join(60)
    assert outcome["results"] == [x * x for x in range(6)]
    assert not [e for e in session_events(tmp_path / "work") if e["event"] == "job_failed"]


CTRL_C_SCRIPT = """
import sys, time
from pypoolparty import sge
pool = sge.Pool(work_dir=sys.argv[1], polling_interval=0.1, qsub_path=sys.argv[2],
                qstat_path=sys.argv[3], qdel_path=sys.argv[4])
pool.map(time.sleep, [60] * 4)
"""


def test_ctrl_c_cancels_every_job(dummy_sge, tmp_path):
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CTRL_C_SCRIPT,
            str(tmp_path / "work"),
            dummy_sge.path("qsub"),
            dummy_sge.path("qstat"),
            dummy_sge.path("qdel"),
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        wait_for(lambda: "r" in dummy_sge.task_states(), 30)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode != 0
    assert "KeyboardInterrupt" in stderr and "map interrupted" in stderr
    # a killed task shows "dr" until the dummy reaps it, as in Grid Engine
    wait_for(lambda: dummy_sge.jobs() == {}, 10)
