"""pypoolparty.htcondor.Pool from map to results, against the dummy HTCondor."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from interpreters import skip_the_submitters_check
from waiting import wait_for

import pypoolparty
import pypoolparty.htcondor
from dummy_queues import DummyHTCondor

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "htcondor_driver.py")


def make_pool(tmp_path, num_simultaneously_running_tasks=None, **options):
    settings = {
        "work_dir": str(tmp_path / "work"),
        "polling_interval": 0.1,
        "missing_result_grace_period": 0.5,
        "command_timeout": 5.0,
        "outage_timeout": 60.0,
        **DummyHTCondor.pool_paths(),
        **options,
    }
    return pypoolparty.htcondor.Pool(num_simultaneously_running_tasks, **settings)


def square(x):
    return x * x


def test_map_returns_results_in_order(dummy_htcondor, tmp_path):
    assert make_pool(tmp_path).map(square, range(200)) == [x * x for x in range(200)]
    assert dummy_htcondor.listed_jobs() == []
    assert dummy_htcondor.state()["next_cluster"] == 2  # one condor_submit


def test_starmap_with_a_lambda_and_throttle(dummy_htcondor, tmp_path):
    pool = make_pool(tmp_path, 2)
    assert pool.starmap(lambda a, b: a - b, [(i, 1) for i in range(50)]) == list(range(-1, 49))


def test_the_work_of_held_procs_is_done_until_the_map_completes(dummy_htcondor, tmp_path):
    # A proc per chunk: the holds hit many of them.
    dummy_htcondor.set_faults(seed=3, error_probability=0.4, slots=20)
    results = make_pool(tmp_path, max_num_resubmissions=10).map(square, range(40), chunksize=2)
    assert results == [x * x for x in range(40)]
    # Holds did happen; their chunks were claimed by other procs, or resubmitted.
    assert dummy_htcondor.faults_used()["job_faults"]["error"] > 0
    assert dummy_htcondor.listed_jobs() == []


def test_a_hold_no_resubmission_cures_ends_the_map_at_once(dummy_htcondor, tmp_path):
    reason = "Error from slot1_1@dummy: Failed to open '/scratch/out' as standard output"
    dummy_htcondor.set_faults(
        error_probability=1.0,
        error_states=[{"HoldReason": reason, "HoldReasonCode": 7, "HoldReasonSubCode": 2}],
    )
    with pytest.raises(pypoolparty.JobCannotRun) as raised:
        make_pool(tmp_path, max_num_resubmissions=5).map(square, range(4), chunksize=2)
    message = str(raised.value)
    assert reason in message and "HoldReasonCode 7" in message
    # The fix, for who submits: root's jobs run as another user, whom no
    # work_dir of root's lets in (pypoolparty/htcondor/states.py).
    assert ("shared_file_system=False" if os.geteuid() == 0 else "pass a work_dir") in message
    assert "call the same map" not in message  # continuing would fail the same way
    assert str(tmp_path / "work") in message
    assert dummy_htcondor.state()["next_cluster"] == 2  # one submission, never resubmitted
    assert dummy_htcondor.listed_jobs() == []  # the other jobs were cancelled


def test_exhausted_resubmissions_name_chunks_hold_reason_and_work_dir(dummy_htcondor, tmp_path):
    reason = "Error from slot1_1@dummy: STARTER failed to receive file(s): (errno 5) I/O error"
    dummy_htcondor.set_faults(
        error_probability=1.0,
        error_states=[{"HoldReason": reason, "HoldReasonCode": 13, "HoldReasonSubCode": 5}],
    )
    # One chunk: with two, the dummy may hold one proc a poll later than the
    # other, and the map ends when the first chunk has used up its resubmissions.
    with pytest.raises(pypoolparty.ResubmissionsExhausted) as raised:
        make_pool(tmp_path, max_num_resubmissions=1).map(square, range(2), chunksize=2)
    # The session names the work_dir in a note of the exception.
    message = "\n".join([str(raised.value), *getattr(raised.value, "__notes__", [])])
    assert reason in message and "HoldReasonCode 13" in message
    assert "chunk 0 (tasks 0..1)" in message
    assert str(tmp_path / "work") in message
    assert dummy_htcondor.state()["next_cluster"] == 3  # first try and one resubmission
    assert dummy_htcondor.listed_jobs() == []


def test_vanished_procs_are_resubmitted(dummy_htcondor, tmp_path):
    dummy_htcondor.set_faults(seed=5, vanish_probability=0.3)
    results = make_pool(tmp_path, max_num_resubmissions=10).map(square, range(20), chunksize=2)
    assert results == [x * x for x in range(20)]
    assert dummy_htcondor.state()["next_cluster"] > 2


def test_unknown_states_are_waited_out(dummy_htcondor, tmp_path):
    dummy_htcondor.set_faults(seed=1, unknown_state_probability=0.5)
    assert make_pool(tmp_path).map(square, range(30)) == [x * x for x in range(30)]
    assert dummy_htcondor.state()["next_cluster"] == 2  # nothing resubmitted


def test_failing_hanging_and_garbled_commands_do_not_end_the_map(dummy_htcondor, tmp_path):
    dummy_htcondor.set_faults(
        fail_commands={"condor_submit": 1, "condor_q": 1, "condor_rm": 1},
        hang_commands={"condor_q": 1},
        garbage_commands={"condor_q": 1, "condor_submit": 1},
    )
    pool = make_pool(tmp_path, command_timeout=1.0)
    assert pool.map(square, range(10)) == [x * x for x in range(10)]
    state = dummy_htcondor.state()
    assert state["next_cluster"] == 2  # no duplicate cluster from the retries
    assert state["faults_used"]["hang_commands"]["condor_q"] == 1


def test_an_interpreter_gone_before_the_jobs_start_is_a_clear_error(
    dummy_htcondor, tmp_path, monkeypatch
):
    # The job's executable is bash, which execs the interpreter: its exit
    # code 127 says the interpreter is gone; no resubmission would help.
    skip_the_submitters_check(monkeypatch)
    python = tmp_path / "python-removed-later"
    python.write_text("")
    python.chmod(0o755)
    pool = make_pool(tmp_path, python_path=str(python))
    os.remove(python)
    with pytest.raises(pypoolparty.JobCannotRun, match="exit code 127") as info:
        pool.map(square, range(3))
    assert "could not run the interpreter" in str(info.value)
    assert "python-removed-later: No such file or directory" in str(info.value)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupting_the_map_leaves_nothing_in_the_queue(dummy_htcondor, tmp_path, signum):
    options = {**DummyHTCondor.pool_paths(), "polling_interval": 0.1}
    process = subprocess.Popen(
        [sys.executable, DRIVER, "sleep_long", str(tmp_path / "work"), json.dumps(options)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    wait_for(lambda: len(dummy_htcondor.listed_jobs()) >= 2, timeout=60)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)
    outcome = json.loads(stdout.splitlines()[-1])
    assert outcome["error"] in ("KeyboardInterrupt", "Terminated"), stderr
    assert "cancelled" in outcome["message"]
    assert dummy_htcondor.listed_jobs() == []


@pytest.mark.parametrize(
    "options, words",
    [
        ({"request_memory": "lots"}, "request_memory"),
        ({"request_disk": "-3GB"}, "request_disk"),
        ({"request_cpus": 0}, "request_cpus"),
        ({"request_gpus": -1}, "request_gpus"),
        ({"universe": "grid-of-dreams"}, "universe"),
        ({"submit_directives": {"executable": "/bin/sh"}}, "executable"),
        ({"submit_directives": {"requirements": "a\nqueue 100"}}, "one non-empty line"),
        ({"submit_directives": {"bad name": "1"}}, "bad name"),
        ({"batch_name": 'say "hi"'}, "batch_name"),
    ],
)
def test_options_condor_submit_would_not_check_are_refused(tmp_path, options, words):
    with pytest.raises(ValueError, match=words):
        make_pool(tmp_path, **options)


def test_resources_and_directives_reach_the_job_ad(dummy_htcondor, tmp_path):
    pool = make_pool(
        tmp_path,
        request_cpus=1,
        request_memory="256MB",
        request_disk="1GB",
        request_gpus=0,
        batch_name="my-analysis",
        submit_directives={"+ProjectName": '"astro"', "requirements": "True"},
        keep_work_dir=True,
    )
    assert pool.map(square, [3]) == [9]
    submit_files = [
        os.path.join(root, name)
        for root, _dirs, names in os.walk(tmp_path / "work")
        for name in names
        if name == "cluster.sub"
    ]
    with open(submit_files[0]) as file:
        text = file.read()
    for line in (
        "request_memory = 256MB",
        "request_disk = 1GB",
        "request_gpus = 0",
        '+JobBatchName = "my-analysis"',
        '+ProjectName = "astro"',
        "requirements = True",
        "getenv = False",
        "universe = vanilla",
    ):
        assert line in text.splitlines()
