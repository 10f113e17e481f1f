"""Both SLURM pools, whole chain, against the dummy SLURM: maps, faults, holds, errors."""

from __future__ import annotations

import json
import os
import threading

import pytest
from waiting import wait_for

import pypoolparty.slurm
import pypoolparty.slurm.array
from pypoolparty.errors import ResubmissionsExhausted
from pypoolparty.scheduler import SubmissionRejected

POOLS = [pypoolparty.slurm.array.Pool, pypoolparty.slurm.Pool]
# TIMEOUT is no random fault: a time limit is the jobs' own (test_slurm_dummy_time_limits.py).
HARD_ERRORS = ["NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "PREEMPTED"]


def make_pool(pool_class, dummy_slurm, tmp_path, **options):
    defaults = dict(
        work_dir=str(tmp_path / "work"),
        polling_interval=0.05,
        command_timeout=2.0,
        outage_timeout=120.0,
        missing_result_grace_period=0.5,
        max_num_resubmissions=10,
    )
    return pool_class(**{**defaults, **dummy_slurm.paths, **options})


def ended_states(dummy_slurm) -> list[str]:
    return [job["state"] for job in dummy_slurm.jobs()]


def num_sbatch_calls(dummy_slurm) -> int:
    return dummy_slurm.state()["next_jobid"] - 1


def arrays_submitted(dummy_slurm) -> list[str]:
    seen = {}
    for job in dummy_slurm.jobs():
        seen[job["array_job_id"]] = job["options"].get("array")
    return list(seen.values())


@pytest.mark.parametrize("pool_class", POOLS)
def test_map_and_starmap(pool_class, dummy_slurm, tmp_path):
    pool = make_pool(pool_class, dummy_slurm, tmp_path)
    assert pool.map(lambda x: x * x, range(300), chunksize=30) == [x * x for x in range(300)]
    assert pool.starmap(pow, [(x, 3) for x in range(50)], chunksize=7) == [x**3 for x in range(50)]
    assert set(ended_states(dummy_slurm)) == {"COMPLETED"}


def test_the_array_pool_submits_one_array_per_map(dummy_slurm, tmp_path):
    dummy_slurm.set_faults(slots=3)
    pool = make_pool(pypoolparty.slurm.array.Pool, dummy_slurm, tmp_path)
    assert pool.map(str, range(40), chunksize=4) == [str(x) for x in range(40)]
    # A job per slot (sinfo's CPUs) for the first chunks; they claim the others.
    assert arrays_submitted(dummy_slurm) == ["0-2"]


def test_the_throttle_reaches_the_array(dummy_slurm, tmp_path):
    pool = make_pool(
        pypoolparty.slurm.array.Pool, dummy_slurm, tmp_path, num_simultaneously_running_tasks=3
    )
    assert pool.map(abs, range(-6, 6), chunksize=1) == [abs(x) for x in range(-6, 6)]
    # A job per running task at most, the throttle on their array.
    assert arrays_submitted(dummy_slurm) == ["0-2%3"]


def test_maps_beyond_max_array_size_are_split(dummy_slurm, tmp_path):
    # max_array_size is read with the scontrol beside sbatch; a job per slot.
    dummy_slurm.set_faults(max_array_size=4, slots=10)
    pool = make_pool(pypoolparty.slurm.array.Pool, dummy_slurm, tmp_path)
    assert pool.map(lambda x: 2 * x, range(10), chunksize=1) == [2 * x for x in range(10)]
    assert arrays_submitted(dummy_slurm) == ["0-3", "1-3", "1-3"]


@pytest.mark.parametrize("pool_class", POOLS)
def test_jobs_in_error_states_are_resubmitted(pool_class, dummy_slurm, tmp_path):
    dummy_slurm.set_faults(seed=7, error_probability=0.3, error_states=HARD_ERRORS, slots=30)
    pool = make_pool(pool_class, dummy_slurm, tmp_path)
    assert pool.map(lambda x: x + 1, range(60), chunksize=2) == list(range(1, 61))
    assert set(ended_states(dummy_slurm)) & set(HARD_ERRORS)  # faults did happen
    if pool_class is pypoolparty.slurm.array.Pool:
        first, *resubmissions = arrays_submitted(dummy_slurm)
        assert first == "0-29"
        # A failed job's chunk is submitted again, unless a job claimed it first.
        assert "0-29" not in resubmissions  # only the failed indices


@pytest.mark.parametrize("pool_class", POOLS)
def test_the_work_of_vanished_jobs_is_done(pool_class, dummy_slurm, tmp_path):
    dummy_slurm.set_faults(seed=3, vanish_probability=0.3, slots=20)
    pool = make_pool(pool_class, dummy_slurm, tmp_path, missing_result_grace_period=0.2)
    assert pool.map(lambda x: -x, range(40), chunksize=2) == [-x for x in range(40)]
    # Jobs did vanish; their chunks were claimed by other jobs, or submitted again.
    assert dummy_slurm.faults_used()["job_faults"]["vanish"] > 0


@pytest.mark.parametrize(
    "faults",
    [
        {"fail_commands": {"squeue": 2, "sbatch": 1}},
        {"hang_commands": {"squeue": 1, "scancel": 1}},
        {"garbage_commands": {"squeue": 2, "sbatch": 1}},
    ],
    ids=["failing", "hanging", "garbage"],
)
def test_misbehaving_commands_are_retried(faults, dummy_slurm, tmp_path):
    dummy_slurm.set_faults(**faults)
    pool = make_pool(pypoolparty.slurm.array.Pool, dummy_slurm, tmp_path, command_timeout=1.0)
    assert pool.map(lambda x: x * 2, range(20), chunksize=5) == [x * 2 for x in range(20)]
    kind = next(iter(faults))
    assert dummy_slurm.faults_used()[kind]["squeue"] == faults[kind]["squeue"]
    assert len(arrays_submitted(dummy_slurm)) == 1  # never submitted twice


def test_unknown_states_keep_the_map_waiting(dummy_slurm, tmp_path):
    dummy_slurm.set_faults(seed=1, unknown_state_probability=1.0)
    pool = make_pool(pypoolparty.slurm.array.Pool, dummy_slurm, tmp_path, keep_work_dir=True)
    assert pool.map(lambda x: x, range(8), chunksize=1) == list(range(8))
    assert "unknown" in _states_logged(tmp_path)
    assert len(arrays_submitted(dummy_slurm)) == 1  # nothing resubmitted


@pytest.mark.parametrize("pool_class", POOLS)
def test_exhausted_resubmissions_raise(pool_class, dummy_slurm, tmp_path):
    # Not NODE_FAIL or PREEMPTED: those are the cluster's doing, not counted.
    dummy_slurm.set_faults(seed=5, error_probability=1.0, error_states=["OUT_OF_MEMORY"])
    pool = make_pool(pool_class, dummy_slurm, tmp_path, max_num_resubmissions=2)
    with pytest.raises(ResubmissionsExhausted, match="OUT_OF_MEMORY"):
        pool.map(lambda x: x, range(4), chunksize=2)
    attempts = [
        job["task"] if job["task"] is not None else job["comment"] for job in dummy_slurm.jobs()
    ]
    # The map ends when the first chunk has failed 1 + 2 times.
    assert max(attempts.count(chunk) for chunk in set(attempts)) == 3
    assert not {"PENDING", "RUNNING"} & set(ended_states(dummy_slurm))


@pytest.mark.parametrize("pool_class", POOLS)
def test_jobs_held_by_the_user_wait_until_released(pool_class, dummy_slurm, tmp_path):
    pool = make_pool(pool_class, dummy_slurm, tmp_path, sbatch_arguments=["--hold"])
    outcome = {}
    thread = threading.Thread(
        target=lambda: outcome.update(results=pool.map(lambda x: x + 10, range(6), chunksize=3))
    )
    thread.start()
    try:
        wait_for(lambda: "held" in _states_logged(tmp_path))
        assert "results" not in outcome
        assert {job["reason"] for job in dummy_slurm.jobs()} == {"JobHeldUser"}
    finally:
        for job in dummy_slurm.jobs():
            task = "" if job["task"] is None else f"_{job['task']}"
            dummy_slurm.run("scontrol", "release", f"{job['array_job_id']}{task}")
        thread.join(timeout=60)
    assert outcome["results"] == list(range(10, 16))


def _states_logged(tmp_path) -> set[str]:
    """The job states the session wrote into its event log so far."""
    states = set()
    for path in (tmp_path / "work").glob("map-*/log.jsonl"):
        for line in path.read_text().splitlines():
            event = json.loads(line)
            if event.get("event") == "job_state":
                states.add(event["state"])
    return states


@pytest.mark.parametrize("pool_class", POOLS)
def test_a_value_sbatch_rejects_ends_the_map_with_its_message(pool_class, dummy_slurm, tmp_path):
    pool = make_pool(pool_class, dummy_slurm, tmp_path, partition="gpu-nonexistent")
    with pytest.raises(SubmissionRejected, match="Invalid partition name specified"):
        pool.map(abs, range(3))


@pytest.mark.parametrize("pool_class", POOLS)
@pytest.mark.parametrize(
    "options, error",
    [
        ({"cpus_per_task": -1}, ValueError),
        ({"time": "two hours"}, ValueError),
        ({"mem": "lots"}, ValueError),
        ({"sbatch_arguments": "--nice=10"}, TypeError),
        ({"partitoin": "debug"}, TypeError),
        ({"time": 1, "time_limit_warning": 60}, ValueError),  # not shorter than the limit
        ({"time_limit_warning": -5}, ValueError),
        ({"time_limit_warning": 70000}, ValueError),
    ],
)
def test_bad_options_are_refused_before_submitting(pool_class, options, error, dummy_slurm):
    with pytest.raises(error):
        pool_class(**dummy_slurm.paths, **options)
    assert dummy_slurm.jobs() == []


CRASHING_MAP = """
import sys
import pypoolparty.slurm.array

paths, work_dir = eval(sys.argv[1]), sys.argv[2]
pool = pypoolparty.slurm.array.Pool(
    work_dir=work_dir, polling_interval=0.05, missing_result_grace_period=0.5, **paths
)
print(pool.map(lambda x: -x, range(6), chunksize=2))
"""


def test_jobs_submitted_by_a_process_killed_before_logging_them_are_adopted(dummy_slurm, tmp_path):
    import glob
    import signal
    import subprocess
    import sys

    from pypoolparty import crash_points, event_log

    def start_map(**env):
        return subprocess.Popen(
            [sys.executable, "-c", CRASHING_MAP, repr(dummy_slurm.paths), str(tmp_path / "work")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **env},
        )

    def logged_events():
        paths = glob.glob(str(tmp_path / "work" / "map-*" / "log.jsonl"))
        return [e["event"] for path in paths for e in event_log.read(path)]

    dummy_slurm.set_faults(slots=0)  # nothing runs until the orphans are dealt with
    killed = start_map(**{crash_points.VARIABLE: "during_submit"})
    _, stderr = killed.communicate(timeout=120)
    assert killed.returncode == -signal.SIGKILL, stderr
    (orphan_array,) = {job["array_job_id"] for job in dummy_slurm.jobs()}
    resumed = start_map()
    try:
        wait_for(lambda: logged_events().count("session_resumed") == 1, 60)
        dummy_slurm.set_faults(slots=2)
        stdout, stderr = resumed.communicate(timeout=120)
    finally:
        resumed.kill()
    assert resumed.returncode == 0, stderr
    assert stdout.strip() == str([-x for x in range(6)])
    # The orphan array ran every chunk; nothing was submitted a second time.
    assert {job["array_job_id"] for job in dummy_slurm.jobs()} == {orphan_array}
    # Its first jobs claimed the other chunks; those still waiting were cancelled.
    assert "COMPLETED" in {job["state"] for job in dummy_slurm.jobs()}
    assert {job["state"] for job in dummy_slurm.jobs()} <= {"COMPLETED", "CANCELLED"}
